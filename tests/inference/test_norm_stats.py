"""Tiled instance norm: every tile normalised by the whole image's statistics (lossnet.inference.norm_stats)."""

from __future__ import annotations

import pytest
import torch

from lossnet.data.defaults import default_image_path
from lossnet.data.io import load_image
from lossnet.errors import InputError
from lossnet.inference import apply_model
from lossnet.inference.norm_stats import per_image_norms
from lossnet.inference.tiling import _plan_axis
from lossnet.models import build_model, model_spec
from tests.inference.checkpoints import perturbed


def colour_steps(y: torch.Tensor, cuts: tuple[int, ...], fade: int, width: int = 8) -> torch.Tensor:
    """``(cuts, C)``: the mean colour of a ``width``-column strip left of each cut's cross-fade minus the right's."""
    return torch.stack(
        [y[..., c - fade - width : c - fade].mean((0, 2, 3)) - y[..., c + fade : c + fade + width].mean((0, 2, 3))
         for c in cuts]  # fmt: skip
    )


@pytest.fixture(scope="module")
def style_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return perturbed(build_model(model_spec("TransformerNet", channels=8, num_residual=2)))


def test_default_tiling_leaves_no_seam_on_a_640px_photo(style_net) -> None:
    # `lossnet apply`'s defaults (tile 512, overlap 32) cut this 427x640 photo into two tiles side by side.
    image = load_image(default_image_path("coffee"), size=640)
    cuts = _plan_axis(image.shape[-1], 512, 32, 4, 8).cuts
    assert image.shape[-2:] == (427, 640) and cuts == (320,)
    whole = apply_model(style_net, image, tile=None)
    tiled = apply_model(style_net, image)
    own = apply_model(style_net, image, norm_stats="tile")
    # The step in mean colour across the border (fade = overlap / 4 = 8 px each side of the cut).
    step_whole, step_tiled, step_own = (colour_steps(y, cuts, fade=8) for y in (whole, tiled, own))
    # Measured (2-core AMD EPYC, fp32 and AVX2-emulated fp32): the steps differ from the whole image's by 4e-5
    # with the image's statistics, by 0.078 with each tile's own (the seam); mean |difference| 1.9e-4 against
    # 0.071; the largest difference, 0.14, is the tiles' context at the cut, not the norm.
    assert (step_tiled - step_whole).abs().max() < 1e-3
    assert (step_own - step_whole).abs().max() > 0.03  # the seam this fixes, so the measure can see one
    assert (tiled - whole).abs().mean() < 1e-3 < (own - whole).abs().mean() / 10
    far = torch.ones(640, dtype=torch.bool)
    far[320 - 24 : 320 + 24] = False  # away from the cut's cross-fade and context
    assert (tiled - whole)[..., far].abs().max() < 1e-3


@pytest.mark.parametrize("batch", [1, 2])
def test_tiled_equals_whole_when_the_overlap_covers_the_receptive_field(batch) -> None:
    # As test_tiling's batch-norm case: overlap / 4 = 24 px >= this TransformerNet's 22 px receptive-field radius.
    torch.manual_seed(1)
    net = perturbed(build_model(model_spec("TransformerNet", channels=4, num_residual=1)))
    image = torch.rand(batch, 3, 291, 257)
    image[-1, 0, :, 150:] = 1.0  # the images differ: each must keep its own statistics
    calls = []
    net.register_forward_pre_hook(lambda m, args: calls.append(tuple(args[0].shape)))
    whole = apply_model(net, image, tile=None)
    tiled = apply_model(net, image, tile=192, overlap=96)
    assert len(calls) - 1 >= 4 * (1 + len(per_image_norms(net)))  # 2x2 tiles: measuring passes, then the output
    assert max(max(c[-2:]) for c in calls[1:]) <= 192 and all(c[0] == batch for c in calls)
    assert (tiled - whole).abs().max() < 1e-5
    assert (apply_model(net, image, tile=192, overlap=96, norm_stats="tile") - whole).abs().max() > 1e-2


def test_bf16_tiles_stay_close_to_the_whole_image(style_net) -> None:
    image = load_image(default_image_path("coffee"), size=320)
    whole = apply_model(style_net, image, tile=None, precision="bf16")
    tiled = apply_model(style_net, image, tile=128, overlap=32, precision="bf16")
    own = apply_model(style_net, image, tile=128, overlap=32, precision="bf16", norm_stats="tile")
    assert (tiled - whole).abs().mean() < (own - whole).abs().mean() / 5


def test_progress_counts_the_measuring_passes() -> None:
    net = build_model(model_spec("TransformerNet", channels=4, num_residual=1)).eval()
    for norm_stats, passes in (("image", 1 + len(per_image_norms(net))), ("tile", 1)):
        seen: list[tuple[int, int]] = []
        apply_model(net, torch.rand(1, 3, 64, 96), tile=64, overlap=16, on_tile=lambda *a: seen.append(a),
                    norm_stats=norm_stats)  # fmt: skip
        assert seen == [(i, 2 * passes) for i in range(1, 2 * passes + 1)]
    seen = []
    apply_model(net, torch.rand(1, 3, 32, 32), tile=64, on_tile=lambda *a: seen.append(a))  # one tile: no passes
    assert seen == [(1, 1)]


def test_networks_without_instance_norm_are_untouched() -> None:
    net = perturbed(build_model(model_spec("TransformerNet", channels=4, num_residual=1, norm="batch")))
    assert per_image_norms(net) == []
    image = torch.rand(1, 3, 96, 96)
    assert torch.equal(apply_model(net, image, tile=64, overlap=16), apply_model(net, image, tile=64, overlap=16,
                                                                                 norm_stats="tile"))  # fmt: skip


def test_unknown_choice_suggests() -> None:
    net = build_model(model_spec("TransformerNet", channels=4, num_residual=1)).eval()
    with pytest.raises(InputError, match="Did you mean 'image'"):
        apply_model(net, torch.rand(1, 3, 32, 32), norm_stats="imag")


def test_lossnet_apply_of_a_style_model_at_its_defaults_has_no_seam(tmp_path, capsys) -> None:
    from lossnet.cli import main
    from lossnet.data.io import save_image
    from tests.inference.checkpoints import make_checkpoint

    torch.manual_seed(0)
    net = make_checkpoint(tmp_path / "style.safetensors", "style")
    save_image(load_image(default_image_path("coffee"), size=640), tmp_path / "in" / "coffee.png")
    image = load_image(tmp_path / "in" / "coffee.png")
    argv = ["apply", "--model", str(tmp_path / "style.safetensors"), "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "out"), "--device", "cpu", "--precision", "fp32"]  # fmt: skip
    assert main(argv) == 0  # default --tile 512: two tiles side by side
    capsys.readouterr()
    written = load_image(tmp_path / "out" / "coffee.png")
    whole = apply_model(net, image, tile=None)
    own = apply_model(net, image, norm_stats="tile")
    step = colour_steps(whole, (320,), fade=8)
    assert (colour_steps(written, (320,), fade=8) - step).abs().max() < 2e-3  # 8-bit rounding and context
    assert (colour_steps(own, (320,), fade=8) - step).abs().max() > 1e-2
