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
