"""Content and style pairs: the style images, a reproducible style crop, and the pair maker that stacks them."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from lossnet.data.content_style import DEFAULT_STYLES, STYLE_TO_CROP, style_crop, style_images
from lossnet.data.pairs import StyleAnyOptions, content_style_pair
from lossnet.errors import InputError


def test_the_default_styles_hold_out_grass() -> None:
    styles = style_images(size=32)
    assert DEFAULT_STYLES == ("brick", "gravel", "ihc", "retina") and len(styles) == 4
    assert [p.stem for p in styles.files] == list(DEFAULT_STYLES)
    assert all(styles[i].shape[0] == 3 and max(styles[i].shape[-2:]) == 32 for i in range(4))  # grey textures as RGB


def test_names_and_folders(tmp_path) -> None:
    assert [p.stem for p in style_images("ihc, grass").files] == ["ihc", "grass"]
    Image.new("RGB", (20, 10), (200, 10, 10)).save(tmp_path / "red.png")
    folder = style_images(str(tmp_path))
    assert len(folder) == 1 and torch.allclose(folder[0][0], torch.full((10, 20), 200 / 255))
    with pytest.raises(InputError, match="no such folder, and 'nope' is no default image name"):
        style_images("brick,nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        style_images(str(tmp_path / "empty"))


def test_a_style_crop_is_drawn_reproducibly_at_twice_the_crop() -> None:
    styles = style_images("brick,ihc")
    crop = style_crop(styles, (16, 24), torch.Generator().manual_seed(3))
    assert crop.shape == (3, 16, 24) and 0.0 <= float(crop.min()) and float(crop.max()) <= 1.0
    assert torch.equal(crop, style_crop(styles, (16, 24), torch.Generator().manual_seed(3)))
    # the crop is a window of the style resized so that its shorter side is STYLE_TO_CROP times the crop's longer
    # side (ihc, 512 x 512 -> 32 x 32 for a 16 px crop)
    ihc = style_images("ihc")
    crop = style_crop(ihc, (16, 16), torch.Generator().manual_seed(0), flip=False)
    resized = torch.nn.functional.interpolate(
        ihc[0][None], size=(32, 32), mode="bicubic", antialias=True, align_corners=False
    )[0].clamp(0, 1)
    windows = [resized[:, i : i + 16, j : j + 16] for i in range(17) for j in range(17)]
    assert STYLE_TO_CROP == 2 and sum(torch.equal(crop, w) for w in windows) == 1


def test_styles_are_drawn_from_all_of_them() -> None:
    styles = style_images("brick,ihc")
    g = torch.Generator().manual_seed(0)
    colour = {bool(style_crop(styles, (16, 16), g).std(0).mean() > 1e-3) for _ in range(20)}  # ihc colour, brick grey
    assert colour == {True, False}


def test_the_pair_maker_stacks_content_and_style() -> None:
    x = torch.rand(3, 3, 8, 8)
    inp, target = content_style_pair(x, StyleAnyOptions("ihc"), torch.Generator().manual_seed(0))
    assert inp is target and inp.shape == (3, 6, 8, 8) and torch.equal(inp[:, :3], x)
    with pytest.raises(InputError, match="C = 3"):
        content_style_pair(torch.rand(1, 1, 8, 8), StyleAnyOptions(), None)
    with pytest.raises(InputError, match="no such folder"):
        StyleAnyOptions("nope")
