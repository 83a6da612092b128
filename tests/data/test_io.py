from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import lossnet
from lossnet.data.io import load_image, resize_longer_side, save_image, to_pil


def test_round_trip_png_is_exact_for_8bit_values(tmp_path) -> None:
    x = torch.randint(0, 256, (1, 3, 5, 7)).float() / 255
    path = save_image(x, tmp_path / "a.png")
    assert torch.equal(load_image(path), x)


def test_exif_orientation_is_applied(tmp_path) -> None:
    # A 2x3 landscape image tagged "rotate 90 CW" (orientation 6) must load as 3x2 portrait.
    im = Image.new("RGB", (3, 2))
    im.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(tmp_path / "r.png", exif=exif)
    x = load_image(tmp_path / "r.png")
    assert x.shape == (1, 3, 3, 2)
    # orientation 6: the top-left pixel moves to the top-right.
    assert x[0, 0, 0, 1] == 1.0 and x[0, 0, 0, 0] == 0.0


def test_16bit_grayscale_keeps_precision(tmp_path) -> None:
    values = np.array([[0, 1, 65535], [256, 32768, 65534]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    x = load_image(tmp_path / "g16.png")
    assert x.shape == (1, 3, 2, 3)
    expected = torch.from_numpy(values.astype(np.float32) / 65535)
    torch.testing.assert_close(x[0, 1], expected)
    assert x[0, 0, 0, 1] > 0  # 1/65535 survives: 8 bits would round it to 0


@pytest.mark.parametrize("mode", ["P", "RGBA", "L", "LA"])
def test_other_modes_become_rgb(tmp_path, mode: str) -> None:
    Image.new("RGB", (4, 4), (10, 200, 30)).convert(mode).save(tmp_path / "m.png")
    x = load_image(tmp_path / "m.png")
    assert x.shape == (1, 3, 4, 4) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_not_an_image_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(lossnet.InputError, match="cannot read .*bad.png"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="no such image file"):
        load_image(tmp_path / "missing.png")


def test_resize_longer_side() -> None:
    x = torch.rand(1, 3, 100, 50)
    assert resize_longer_side(x, 40).shape == (1, 3, 40, 20)
    assert resize_longer_side(x, 100) is x


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch) -> None:
    target = tmp_path / "out.png"
    save_image(torch.zeros(1, 3, 4, 4), target)
    before = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(torch.ones(1, 3, 4, 4), target)
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left


def test_saved_files_get_normal_permissions(tmp_path) -> None:
    path = save_image(torch.zeros(1, 3, 2, 2), tmp_path / "p.png")
    assert path.stat().st_mode & 0o044  # readable by group/others under a usual umask


def test_to_pil_rejects_batches_and_bad_channels() -> None:
    with pytest.raises(lossnet.InputError, match="one image"):
        to_pil(torch.zeros(2, 3, 4, 4))
    with pytest.raises(lossnet.InputError, match="C in"):
        to_pil(torch.zeros(4, 4, 4))
    assert to_pil(torch.ones(1, 1, 2, 2)).mode == "L"


def test_unknown_suffix_is_refused(tmp_path) -> None:
    with pytest.raises(lossnet.InputError, match="unknown image format"):
        save_image(torch.zeros(1, 3, 2, 2), tmp_path / "x.notanimage")


# Alpha, GIF, 16-bit colour


def _half_transparent(tmp_path):
    """An opaque RGB file and the same colours with alpha 0 on the left half: (rgb path, rgba path, rgb uint8)."""
    rgb = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    alpha = np.full((16, 20), 255, np.uint8)
    alpha[:, :10] = 0
    Image.fromarray(rgb).save(tmp_path / "opaque.png")
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "half.png")
    return tmp_path / "opaque.png", tmp_path / "half.png", rgb


def test_transparent_pixels_are_composited_over_the_background(tmp_path) -> None:
    from lossnet.data.io import BACKGROUND

    opaque, half, rgb = _half_transparent(tmp_path)
    x, hidden = load_image(half), load_image(opaque)
    assert BACKGROUND == (1.0, 1.0, 1.0)
    assert torch.equal(x[..., :10], torch.ones(1, 3, 16, 10))  # white, not the hidden colours
    assert torch.equal(x[..., 10:], hidden[..., 10:])  # opaque pixels as they are
    assert float((x - hidden).abs().max()) > 0.5


def test_compare_sees_what_transparency_hides(tmp_path, capsys) -> None:
    """Before, an image with half its alpha at 0 scored exactly 0 against the opaque original."""
    from lossnet.cli import main

    opaque, half, _ = _half_transparent(tmp_path)
    argv = ["compare", str(opaque), str(half), "--weights", "none", "--arch", "vgg11", "--pixel-weight", "1"]
    argv += ["--feature-layers", "relu2_1"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    terms = {line.split()[0]: float(line.split()[1]) for line in out if not line.startswith(("-", "term "))}
    assert terms["pixel"] > 0.01 and terms["feature.relu2_1"] > 0 and terms["total"] > 0


def test_read_image_keeps_grey_alpha_and_the_stored_colours(tmp_path) -> None:
    from lossnet.data.io import read_image

    _, half, rgb = _half_transparent(tmp_path)
    stored = read_image(half)
    assert stored.color.shape == (1, 3, 16, 20) and stored.alpha is not None and stored.bit_depth == 8
    assert torch.equal(stored.color, torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)
    assert torch.equal(stored.alpha[..., :10], torch.zeros(1, 1, 16, 10))
    Image.fromarray(rgb[..., 0]).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "opaque_rgba.png")
    grey = read_image(tmp_path / "la.png")
    assert grey.grey and grey.color.shape == (1, 1, 16, 20) and grey.alpha is None  # alpha all 255: opaque
    assert read_image(tmp_path / "opaque_rgba.png").alpha is None


def test_a_gif_gives_its_first_frame_and_its_transparency(tmp_path) -> None:
    frames = [Image.new("P", (6, 4), 0), Image.new("P", (6, 4), 1)]
    for f in frames:
        f.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    frames[0].putpixel((0, 0), 2)  # palette entry 2 (black) is transparent
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], transparency=2, duration=50)
    x = load_image(tmp_path / "a.gif")
    assert x.shape == (1, 3, 4, 6)
    assert x[0, :, 1, 1].tolist() == [1.0, 0.0, 0.0]  # red: the first frame, not the blue second
    assert x[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]  # the transparent pixel, over white


def _rgb16(h: int = 6, w: int = 5, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (h, w, channels), dtype=np.uint16)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_round_trip_keeps_all_bits(tmp_path, channels: int) -> None:
    from lossnet.data.io import read_image

    values = _rgb16(channels=channels)
    values[0, 0] = 1  # survives only with more than 8 bits
    save_image(values, tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as im:  # an independent reader: Pillow's own (high bytes for colour)
        assert im.size == (5, 6)
    stored = read_image(tmp_path / "x.png")
    assert stored.bit_depth == 16
    color = values[..., : 1 if channels <= 2 else 3]
    expected = torch.from_numpy(color.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    assert torch.equal(stored.color, expected)
    if channels in (2, 4):
        assert torch.equal(stored.alpha[0, 0], torch.from_numpy(values[..., -1].astype(np.float32) / 65535))
    assert stored.color[0, 0, 0, 0] == 1 / 65535


def test_16bit_png_written_here_is_what_pillow_reads(tmp_path) -> None:
    """Pillow decodes the Paeth-filtered 16-bit PNG to the same high bytes (RGB) and all 16 bits (grey)."""
    rgb = _rgb16(40, 300)  # more than one band of filtering state per row
    save_image(rgb, tmp_path / "rgb.png")
    with Image.open(tmp_path / "rgb.png") as im:
        assert np.array_equal(np.asarray(im), (rgb >> 8).astype(np.uint8))
    grey = _rgb16(300, 7, channels=1)
    save_image(grey, tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        assert np.array_equal(np.asarray(im), grey[..., 0])


def test_16bit_is_png_only(tmp_path) -> None:
    with pytest.raises(lossnet.InputError, match="16-bit images are written as PNG only"):
        save_image(_rgb16(), tmp_path / "x.jpg")


def test_image_size_reads_the_header_with_orientation(tmp_path) -> None:
    from lossnet.data.io import image_size

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (30, 20)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert image_size(tmp_path / "r.jpg") == (20, 30) == tuple(load_image(tmp_path / "r.jpg").shape[-1:-3:-1])


@pytest.mark.parametrize("options", [{}, {"compression": "zlib"}, {"byteorder": ">"}], ids=["raw", "zlib", "big"])
def test_16bit_colour_tiff_keeps_all_bits(tmp_path, options) -> None:
    tifffile = pytest.importorskip("tifffile")
    from lossnet.data.io import read_image

    values = _rgb16(12, 9)
    tifffile.imwrite(tmp_path / "x.tif", values, **options)
    stored = read_image(tmp_path / "x.tif")
    assert stored.bit_depth == 16
    assert torch.equal(stored.color, torch.from_numpy(values.astype(np.float32) / 65535).permute(2, 0, 1)[None])
