from __future__ import annotations

import pytest
import torch

from lossnet.errors import CheckpointError
from lossnet.explore.optimize import OptimizeConfig
from lossnet.explore.stylize import StylizeConfig
from lossnet.explore.sweep import sweep, sweep_models, sweep_sheet
from lossnet.models import TransformerNet
from lossnet.models.registry import model_spec
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
    assert sheet.size[1] == 24 + 3 * (120 + 18 + 42 + 6) + 6  # inputs row + 2 rows, 4-line captions


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
    pad = torch.nn.functional.pad(content, (0, 24, 0, 28), mode="reflect")
    with torch.no_grad():
        torch.testing.assert_close(cell.image, net.eval()(pad)[..., :36, :40])

    bare = save_checkpoint(tmp_path / "bare.safetensors", net.state_dict(), {})
    with pytest.raises(CheckpointError, match="which network"):
        sweep_models(content, style, [bare], None, _config())
