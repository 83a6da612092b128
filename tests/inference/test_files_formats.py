"""``apply`` keeps images as users have them: transparency, 16 bits, grey, GIF."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lossnet.inference import apply_files
from lossnet.inference.files import _alpha_bands
from lossnet.cli import main
from lossnet.data.io import read_image, save_image
from lossnet.data.tasks import luminance
from lossnet.errors import InputError
from lossnet.models import model_spec
from tests.inference.checkpoints import MULTIPLE, ONE_PIXEL, make_checkpoint, reference

SR4 = model_spec("SuperResNet", scale=4, channels=4, num_residual=1, head_kernel_size=3)
ONE_16BIT = 1 / 65535


def _rgba(h: int = 20, w: int = 28, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[:, : w // 2, 3] = 0  # the left half transparent
    rgba[:, w // 2 :, 3] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]  # a ramp on the right
    return rgba


def _chw(array: np.ndarray, top: float = 255.0) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.float32) / top).permute(2, 0, 1)[None]


def test_superres_upscales_alpha_with_bicubic(tmp_path) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", "superres", SR4)
    rgba = _rgba()
    Image.fromarray(rgba).save(tmp_path / "in.png")
    assert apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", device="cpu").ok
    with Image.open(tmp_path / "out" / "in.png") as out:
        assert out.mode == "RGBA" and out.size == (28 * 4, 20 * 4)
        written = _chw(np.asarray(out))
    alpha = _chw(rgba[..., 3:])
    expected_alpha = F.interpolate(alpha, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    assert written[:, 3:].shape == (1, 1, 80, 112)
    assert (written[:, 3:] - expected_alpha).abs().max() <= ONE_PIXEL / 2 + 1e-6
    # The colour channels are the network on the stored colours, as Real-ESRGAN does.
    expected = reference(model, _chw(rgba[..., :3]), "superres", MULTIPLE["superres"]).clamp(0, 1)
    assert (written[:, :3] - expected).abs().max() <= ONE_PIXEL


@pytest.mark.parametrize("task", ["restore", "style", "colorize"])
def test_alpha_is_kept_as_it_is(tmp_path, task: str) -> None:
    make_checkpoint(tmp_path / "m.safetensors", task)
    rgba = _rgba()
    Image.fromarray(rgba).save(tmp_path / "in.png")
    assert apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", device="cpu").ok
    with Image.open(tmp_path / "out" / "in.png") as out:
        assert out.mode == "RGBA" and out.size == (28, 20)
        assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])


def test_jpeg_output_is_composited_over_white_and_says_so(tmp_path, caplog) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", "restore")
    rgba = _rgba()
    Image.fromarray(rgba).save(tmp_path / "in.png")
    with caplog.at_level(logging.WARNING, logger="lossnet"):
        summary = apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", format="jpg")
    assert summary.ok
    assert any("transparency" in r.message and "white" in r.message for r in caplog.records)
    with Image.open(tmp_path / "out" / "in.jpg") as out:
        assert out.mode == "RGB"
        written = _chw(np.asarray(out))
    a = _chw(rgba[..., 3:])
    expected = a * reference(model, _chw(rgba[..., :3]), "restore", 4).clamp(0, 1) + (1 - a)
    assert float((written - expected).abs().mean()) < 0.02  # JPEG at quality 95
    assert float(written[..., :14].min()) > 0.9  # the transparent half is white, whatever it hides


def _rgb16(h: int = 20, w: int = 28, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 65536, (h, w, channels), dtype=np.uint16)


def test_16bit_png_in_gives_16bit_png_out_with_16bit_precision(tmp_path) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", "restore")
    values = _rgb16()
    save_image(values, tmp_path / "in.png")
    assert apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", device="cpu").ok
    out = read_image(tmp_path / "out" / "in.png")
    assert out.bit_depth == 16 and out.color.shape == (1, 3, 20, 28) and out.alpha is None
    samples = (out.color * 65535).round().to(torch.int64)
    assert bool((samples % 257 != 0).any())  # not 8-bit values scaled up (k * 257)
    # The network saw the 16-bit values, not an 8-bit rounding of them.
    expected = reference(model, _chw(values, 65535.0), "restore", 4).clamp(0, 1)
    assert (out.color - expected).abs().max() <= ONE_16BIT
    rounded_input = reference(model, (_chw(values, 65535.0) * 255).round() / 255, "restore", 4).clamp(0, 1)
    assert (out.color - rounded_input).abs().max() > ONE_16BIT


@pytest.mark.parametrize(("bit_depth", "mode"), [(8, "RGB"), (16, "RGB"), ("match", "RGB")])
def test_bit_depth_overrides(tmp_path, bit_depth, mode: str) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "restore")
    save_image(_rgb16(), tmp_path / "deep.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "flat.png")
    assert apply_files(tmp_path / "m.safetensors", tmp_path, tmp_path / "out", bit_depth=bit_depth).ok
    depth = {name: read_image(tmp_path / "out" / name).bit_depth for name in ("deep.png", "flat.png")}
    assert depth == ({"deep.png": 16, "flat.png": 8} if bit_depth == "match" else dict.fromkeys(depth, bit_depth))


def test_bit_depth_is_checked_up_front(tmp_path) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "restore")
    save_image(_rgb16(), tmp_path / "in.png")
    with pytest.raises(InputError, match="16-bit output needs format 'png'"):
        apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", format="jpg", bit_depth=16)
    with pytest.raises(InputError, match="bit_depth must be 'match', 8 or 16"):
        apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", bit_depth=12)
    assert not (tmp_path / "out").exists()


def test_cli_bit_depth(tmp_path, capsys) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "restore")
    save_image(_rgb16(), tmp_path / "in.png")
    argv = ["apply", "--model", str(tmp_path / "m.safetensors"), "--input", str(tmp_path / "in.png")]
    assert main([*argv, "--output", str(tmp_path / "o8"), "--bit-depth", "8"]) == 0
    assert read_image(tmp_path / "o8" / "in.png").bit_depth == 8
    assert main([*argv, "--output", str(tmp_path / "o16"), "--format", "jpg", "--bit-depth", "16"]) == 2
    assert "16-bit output needs format 'png'" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["restore", "superres"])
def test_grey_stays_grey(tmp_path, task: str) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", task)
    grey = np.random.default_rng(0).integers(0, 256, (20, 28), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(_rgb16(channels=1)[..., 0]).save(tmp_path / "g16.png")  # Pillow writes I;16 as 16-bit grey
    assert apply_files(tmp_path / "m.safetensors", tmp_path, tmp_path / "out").ok
    scale = 2 if task == "superres" else 1
    with Image.open(tmp_path / "out" / "g.png") as out:
        assert out.mode == "L" and out.size == (28 * scale, 20 * scale)
        written = torch.from_numpy(np.asarray(out).astype(np.float32) / 255)
    x = torch.from_numpy(grey.astype(np.float32) / 255)[None, None].expand(1, 3, -1, -1)
    expected = luminance(reference(model, x, task, MULTIPLE[task]).clamp(0, 1))[0, 0]
    assert (written - expected).abs().max() <= ONE_PIXEL
    deep = read_image(tmp_path / "out" / "g16.png")
    assert deep.grey and deep.bit_depth == 16
    with Image.open(tmp_path / "out" / "g16.png") as out:
        assert out.mode.startswith("I")


@pytest.mark.parametrize("task", ["style", "colorize"])
def test_tasks_that_add_colour_write_rgb_from_grey(tmp_path, task: str) -> None:
    make_checkpoint(tmp_path / "m.safetensors", task)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / "g.png")
    assert apply_files(tmp_path / "m.safetensors", tmp_path / "g.png", tmp_path / "out").ok
    with Image.open(tmp_path / "out" / "g.png") as out:
        assert out.mode == "RGB"


def test_a_gif_is_applied_to_its_first_frame(tmp_path) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", "restore")
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).convert("P") for _ in range(2)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    summary = apply_files(tmp_path / "m.safetensors", tmp_path, tmp_path / "out")
    assert summary.ok and [t.name for _, t in summary.written] == ["a.png"]
    first = _chw(np.asarray(frames[0].convert("RGB")))
    written = _chw(np.asarray(Image.open(tmp_path / "out" / "a.png")))
    assert (written - reference(model, first, "restore", 4).clamp(0, 1)).abs().max() <= ONE_PIXEL


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_alpha_bands_equal_the_whole_image_upscaled(scale: int) -> None:
    alpha = torch.rand(1, 1, 23, 9, generator=torch.Generator().manual_seed(0))
    whole = F.interpolate(alpha, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)[0, 0]
    bands = list(_alpha_bands(alpha, scale, band=4))
    assert [y0 for y0, _ in bands] == ([0] if scale == 1 else list(range(0, 23 * scale, 4 * scale)))
    torch.testing.assert_close(torch.cat([rows for _, rows in bands]), whole, rtol=0, atol=1e-6)
