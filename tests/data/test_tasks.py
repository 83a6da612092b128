from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import lossnet
from lossnet.data.degradations import downscale, jpeg_compress
from lossnet.data.folder import ImageFolder
from lossnet.data.tasks import TASKS, PairDataset, luminance, make_pair


def smooth_image(h: int = 24, w: int = 32) -> torch.Tensor:
    """A smooth colour image (3, h, w) in [0, 1]: JPEG keeps it close but not exact."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([x, y, (x + y) / 2 * (1 + 0.2 * torch.sin(8 * x))]).clamp(0, 1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# superres


def test_superres_shapes_and_input_is_the_downscaled_target() -> None:
    image = torch.rand(3, 26, 35)
    inp, target = make_pair("superres", image, scale=4)
    assert target.shape == (3, 24, 32) and inp.shape == (3, 6, 8)
    assert torch.equal(target, image[:, :24, :32])  # top-left crop to a multiple of the scale
    assert torch.equal(inp, downscale(target[None], 4)[0])


def test_superres_batched_equals_per_sample() -> None:
    batch = torch.rand(2, 3, 16, 16)
    inp, target = make_pair("superres", batch, scale=2)
    assert inp.shape == (2, 3, 8, 8) and torch.equal(target, batch)
    assert torch.allclose(inp[1], make_pair("superres", batch[1], scale=2)[0])


def test_superres_too_small_raises() -> None:
    with pytest.raises(lossnet.InputError, match="at least 4x4"):
        make_pair("superres", torch.rand(3, 3, 8), scale=4)


# restore


def test_restore_degrades_and_stays_in_range() -> None:
    image = smooth_image()
    inp, target = make_pair("restore", image, generator=gen())
    assert inp.shape == image.shape and torch.equal(target, image)
    assert not torch.equal(inp, image) and float((inp - image).abs().mean()) > 1e-3
    assert 0.0 <= float(inp.min()) and float(inp.max()) <= 1.0


def test_restore_fixed_quality_equals_jpeg_compress() -> None:
    image = smooth_image()
    inp, _ = make_pair("restore", image, jpeg_quality=30, generator=gen())
    assert torch.equal(inp, jpeg_compress(image[None], 30)[0])


def test_restore_quality_is_drawn_from_the_range() -> None:
    image = torch.rand(3, 16, 16)
    candidates = {q: jpeg_compress(image[None], q)[0] for q in (20, 21, 22)}
    seen = set()
    for seed in range(12):
        inp, _ = make_pair("restore", image, jpeg_quality=(20, 22), generator=gen(seed))
        seen |= {q for q, c in candidates.items() if torch.equal(inp, c)}
    assert seen == {20, 21, 22}  # both ends included


def test_restore_text_overlays_something() -> None:
    image = torch.zeros(3, 32, 48)  # black: white digits cannot hide
    plain, _ = make_pair("restore", image, jpeg_quality=90, generator=gen())
    texted, target = make_pair("restore", image, jpeg_quality=90, text=True, generator=gen())
    assert float(plain.max()) < 0.05 and float(texted.max()) > 0.5
    assert 0.0 <= float(texted.min()) and torch.equal(target, image)
    again, _ = make_pair("restore", image, jpeg_quality=90, text=True, generator=gen())
    assert torch.equal(texted, again)


def test_restore_grayscale_and_batches() -> None:
    inp, _ = make_pair("restore", torch.rand(2, 1, 16, 16), text=True, generator=gen())
    assert inp.shape == (2, 1, 16, 16)


@pytest.mark.parametrize("quality", [0, 101, (70, 10), (10,), 1.5, True])
def test_bad_jpeg_quality_raises(quality) -> None:
    with pytest.raises((lossnet.InputError, TypeError), match="jpeg_quality"):
        make_pair("restore", torch.rand(3, 8, 8), jpeg_quality=quality)


# colorize and style


def test_colorize_input_is_bt601_luma() -> None:
    image = torch.rand(3, 24, 32)
    inp, target = make_pair("colorize", image)
    assert inp.shape == (1, 24, 32) and torch.equal(target, image)
    expected = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    assert torch.allclose(inp[0], expected, atol=1e-6)


def test_luminance_known_values_and_pil_agreement() -> None:
    primaries = torch.eye(3).view(3, 3, 1, 1)  # pure red, green, blue
    assert torch.allclose(luminance(primaries).flatten(), torch.tensor([0.299, 0.587, 0.114]))
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    pil_l = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)  # PIL's L is BT.601 too
    ours = luminance(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0, 0] * 255
    assert float((ours - torch.from_numpy(pil_l)).abs().max()) <= 1.0


def test_colorize_needs_rgb() -> None:
    with pytest.raises(lossnet.InputError, match="RGB"):
        make_pair("colorize", torch.rand(1, 8, 8))


def test_style_returns_the_image_twice() -> None:
    image = torch.rand(3, 8, 8)
    inp, target = make_pair("style", image)
    assert torch.equal(inp, image) and torch.equal(target, image)


# errors


def test_unknown_task_lists_the_valid_ones() -> None:
    with pytest.raises(lossnet.InputError, match="Did you mean 'superres'") as info:
        make_pair("super_res", torch.rand(3, 8, 8))
    assert all(t in str(info.value) for t in TASKS)


def test_image_must_be_3d_or_4d() -> None:
    with pytest.raises(lossnet.InputError, match=r"\(C, H, W\)"):
        make_pair("style", torch.rand(8, 8))


# PairDataset


@pytest.fixture
def folder(tmp_path):
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    return tmp_path


@pytest.mark.parametrize(
    ("task", "input_shape"),
    [("superres", (2, 3, 4, 4)), ("restore", (2, 3, 16, 16)), ("colorize", (2, 1, 16, 16)), ("style", (2, 3, 16, 16))],
)
def test_pair_dataset_batches_for_every_task(folder, task, input_shape) -> None:
    pairs = PairDataset(ImageFolder(folder, crop_size=16), task, text=True)
    inp, target = next(iter(torch.utils.data.DataLoader(pairs, batch_size=2)))
    assert tuple(inp.shape) == input_shape and tuple(target.shape) == (2, 3, 16, 16)
    assert 0.0 <= float(inp.min()) and float(inp.max()) <= 1.0


def test_pair_dataset_is_reproducible_and_epochs_differ(folder) -> None:
    a = PairDataset(ImageFolder(folder, crop_size=16), "restore")
    b = PairDataset(ImageFolder(folder, crop_size=16), "restore")
    assert all(torch.equal(x, y) for i in range(3) for x, y in zip(a[i], b[i]))
    first = a[0]
    a.set_epoch(1)
    assert a.dataset.epoch == 1  # forwarded to the wrapped dataset
    assert not torch.equal(a[0][1], first[1])  # a new crop
    b.set_epoch(1)
    assert all(torch.equal(x, y) for x, y in zip(a[0], b[0]))


def test_pair_dataset_seed_changes_the_degradation_only(folder) -> None:
    images = ImageFolder(folder, crop_size=16)
    a, b = PairDataset(images, "restore", seed=1), PairDataset(images, "restore", seed=2)
    assert torch.equal(a[0][1], b[0][1])  # same crop: the image dataset's seed decides it
    assert any(not torch.equal(a[i][0], b[i][0]) for i in range(3))  # qualities drawn differently


def test_pair_dataset_checks_options_up_front(folder) -> None:
    images = ImageFolder(folder)
    with pytest.raises(lossnet.InputError, match="Did you mean 'colorize'"):
        PairDataset(images, "colourize")
    with pytest.raises(lossnet.InputError, match="jpeg_quality"):
        PairDataset(images, "restore", jpeg_quality=(0, 50))
    with pytest.raises(lossnet.InputError, match="scale"):
        PairDataset(images, "superres", scale=0)


def test_pair_dataset_rejects_non_tensor_items() -> None:
    with pytest.raises(TypeError, match="tensors"):
        PairDataset([(torch.rand(3, 8, 8), 0)], "style")[0]
