from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lossnet.errors import CheckpointError, InputError
from lossnet.explore.optimize import OptimizeConfig
from lossnet.explore.stylize import StylizeConfig
from lossnet.explore.sweep import sweep, sweep_models, sweep_sheet
from lossnet.models import TransformerNet
from lossnet.models.registry import build_model, model_spec
from lossnet.checkpoint import save_checkpoint


def _config(steps: int = 3) -> StylizeConfig:
    return StylizeConfig(
        arch="vgg11", content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0}, tv_weight=0.0,
        optimize=OptimizeConfig(steps=steps),
    )  # fmt: skip


def test_grid_of_ratios_and_layer_sets_and_more_style_weight_gives_less_style_loss() -> None:
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    result = sweep(
        content,
        style,
        None,
        _config(steps=15),
        ratios=(1e-3, 1e3),
        style_layer_sets=[["relu1_1"], ["relu1_1", "relu2_1"]],
    )
    assert [[c.label for c in row] for row in result.rows] == [
        ["style/content 0.001\nrelu1_1", "style/content 1000\nrelu1_1"],
        ["style/content 0.001\nrelu1_1..relu2_1", "style/content 1000\nrelu1_1..relu2_1"],
    ]
    for low, high in result.rows:
        assert high.style_loss < low.style_loss and high.content_loss > low.content_loss
    sheet = sweep_sheet(result, cell_size=120)  # wide enough for "style/content 0.001" on one line
    assert sheet.size[1] == 24 + (32 + 18 + 6) + 2 * (32 + 18 + 42 + 6) + 6  # 32 px: inputs (1 line), 2 rows of 4 lines


def test_trained_models_are_applied_and_scored(tmp_path) -> None:
    content, style = torch.rand(1, 3, 36, 40), torch.rand(1, 3, 32, 32)
    net = TransformerNet(channels=4, num_residual=1)
    path = save_checkpoint(
        tmp_path / "tiny.safetensors",
        net.state_dict(),
        {"model": model_spec("TransformerNet", channels=4, num_residual=1)},
    )
    result = sweep_models(content, style, [path], None, _config())
    (cell,) = result.rows[0]
    assert cell.label == "tiny" and cell.image.shape == content.shape
    with torch.no_grad():  # 36 x 40 is a size the network takes: applied as it is (lossnet.inference.apply_model)
        torch.testing.assert_close(cell.image, net.eval()(content))
    odd = content[..., :35, :38]  # padded to 36 x 40 for the network, and cropped back
    (cell,) = sweep_models(odd, style, [path], None, _config()).rows[0]
    with torch.no_grad():
        torch.testing.assert_close(cell.image, net(F.pad(odd, (0, 2, 0, 1), mode="reflect"))[..., :35, :38])


def test_checkpoints_the_sweep_cannot_compare_are_refused(tmp_path) -> None:
    content, style = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    net = TransformerNet(channels=4, num_residual=1)
    bare = save_checkpoint(tmp_path / "bare.safetensors", net.state_dict(), {})
    with pytest.raises(CheckpointError, match="holds no network"):
        sweep_models(content, style, [bare], None, _config())
    other = model_spec("TransformerNet", channels=8, num_residual=1)
    misfit = save_checkpoint(tmp_path / "misfit.safetensors", net.state_dict(), {"model": other})
    with pytest.raises(CheckpointError, match="do not fit"):
        sweep_models(content, style, [misfit], None, _config())
    sr = model_spec("SuperResNet", scale=2, channels=4, num_residual=1, head_kernel_size=3)
    upscaler = save_checkpoint(tmp_path / "sr.safetensors", build_model(sr).state_dict(), {"model": sr, "scale": 2})
    with pytest.raises(InputError, match="x2 super-resolution network.*not super-resolution ones"):
        sweep_models(content, style, [upscaler], None, _config())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content_name", "ratios"),
    [
        # The span in 3 cells (5 took 65-105 s of the suite's 10 minutes); the losses at these
        # three ratios were 4.33, 9.24 and 13.7, which the first assertion refuses.
        ("chelsea", (10, 1000, 100000)),
        ("astronaut", (10, 1000, 100000)),
    ],
)
def test_more_style_weight_never_leaves_more_style_loss_on_the_embedded_images(
    hed_weights, content_name: str, ratios: tuple[float, ...]
) -> None:
    # Issue 20: `lossnet sweep chelsea ihc --ratios 10,...,100000` gave style loss 4.33, 4.22, 9.24, 13.6, 13.7:
    # L-BFGS drove pixels far outside [0, 1] and the final clamp undid the result. The settings (128 px,
    # the sweep's 100 steps; at 64 px and 40 steps the two largest ratios, where the content term is all but
    # gone, ended 1.23 and 1.37: unconverged noise), in the CLI's precision (auto: bf16 on a CPU that runs it,
    # fp32 as an AVX2 CPU runs it).
    from lossnet.data import load_default_image
    from lossnet.explore.stylize import build_extractor
    from lossnet.runtime import resolve

    content, style = load_default_image(content_name, 128), load_default_image("ihc", 128)
    config = StylizeConfig(optimize=OptimizeConfig(steps=100))
    fx = build_extractor("vgg16", config.layers, hed_weights, precision=resolve("auto", "cpu"))
    result = sweep(content, style, None, config, ratios=ratios, extractor=fx)
    losses = [cell.style_loss for cell in result.rows[0]]
    assert all(b <= a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.2 * losses[0]
