"""Content and style pairs: the style images, and each content crop with a reproducible style crop."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from lossnet.data.content_style import DEFAULT_STYLES, ContentStyleDataset, style_images
from lossnet.data.folder import default_dataset
from lossnet.data.tasks import make_pair
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


def test_items_are_the_content_with_a_style_crop_reproducibly() -> None:
    contents = default_dataset("val", crop_size=32, size=64, seed=3)
    pairs = ContentStyleDataset(contents, style_images(size=64))
    x = pairs[1]
    assert x.shape == (6, 32, 32) and torch.equal(x, pairs[1])
    assert torch.equal(x[:3], contents[1])  # the style draws leave the content's crops alone
    assert not torch.equal(x[3:], x[:3])
    first = [pairs[i][3:] for i in range(2)]
    pairs.set_epoch(1)
    assert contents.epoch == 1 and any(not torch.equal(a, pairs[i][3:]) for i, a in enumerate(first))


def test_styles_are_drawn_from_all_of_them() -> None:
    contents = default_dataset("train", crop_size=16, size=32)
    styles = style_images("brick,ihc", size=32)
    pairs = ContentStyleDataset(contents, styles, flip=False)
    means = set()
    for epoch in range(6):
        pairs.set_epoch(epoch)
        means |= {round(float(pairs[i][3:].std(0).mean()), 1) for i in range(len(pairs))}  # ihc is colour, brick grey
    assert 0.0 in means and len(means) > 1


def test_make_pair_passes_a_content_and_style_through() -> None:
    x = torch.rand(2, 6, 8, 8)
    inp, target = make_pair("style_any", x)
    assert inp is x and target is x
