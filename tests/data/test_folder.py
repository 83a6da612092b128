from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lossnet
from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.folder import DEFAULT_SPLITS, ImageFolder, default_dataset, item_generator, random_crop

H, W = 24, 32


def noise_rgb(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_rgb(path: Path, seed: int = 0, h: int = H, w: int = W) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise_rgb(seed, h, w)).save(path)
    return path


def write_truncated_jpeg(path: Path) -> Path:
    write_rgb(path, seed=99, h=64, w=64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# Discovery


def test_recursive_discovery_with_mixed_case_extensions(tmp_path) -> None:
    write_rgb(tmp_path / "b" / "deep" / "x.PNG")
    write_rgb(tmp_path / "a.JpG")
    write_rgb(tmp_path / "b" / "y.tiff")
    write_rgb(tmp_path / "c" / "z.webp")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "b" / "labels.csv").write_text("1,2")
    ds = ImageFolder(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in ds.files]
    assert rel == ["a.JpG", "b/deep/x.PNG", "b/y.tiff", "c/z.webp"]  # sorted by path parts
    assert len(ds) == 4 and ds.num_skipped == 0
    assert sorted(p.name for p in ds.ignored) == ["labels.csv", "notes.txt"] and ds.num_ignored == 2


def test_hidden_files_and_folders_are_not_looked_at(tmp_path) -> None:
    write_rgb(tmp_path / "a.png")
    (tmp_path / "._a.png").write_bytes(b"\x00\x05AppleDouble")  # macOS metadata beside the image
    write_rgb(tmp_path / ".cache" / "b.png")
    ds = ImageFolder(tmp_path)
    assert [p.name for p in ds.files] == ["a.png"] and ds.num_skipped == 0


def test_custom_extensions(tmp_path) -> None:
    write_rgb(tmp_path / "a.png")
    write_rgb(tmp_path / "b.jpg")
    ds = ImageFolder(tmp_path, extensions=[".PNG"])
    assert [p.name for p in ds.files] == ["a.png"] and [p.name for p in ds.ignored] == ["b.jpg"]


def test_list_of_paths_keeps_its_order(tmp_path) -> None:
    a, b = write_rgb(tmp_path / "a.png", seed=1), write_rgb(tmp_path / "b.png", seed=2)
    ds = ImageFolder([b, str(a)], flip=False)
    assert ds.files == [b, a]
    expected = torch.from_numpy(noise_rgb(2)).permute(2, 0, 1).float() / 255
    assert torch.equal(ds[0], expected)


# Image kinds


def _grayscale(path: Path) -> None:
    Image.fromarray(noise_rgb()[..., 0]).save(path)


def _rgba(path: Path) -> None:
    # Mostly opaque: transparent pixels are composited over white (see test_transparent_pixels_...).
    Image.fromarray(np.dstack([noise_rgb(), np.full((H, W), 200, np.uint8)])).save(path)


def _palette(path: Path) -> None:
    Image.fromarray(noise_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path)


def gray16_values() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 65536, (H, W), dtype=np.uint16)


def _gray16(path: Path) -> None:
    Image.fromarray(gray16_values()).save(path)


@pytest.mark.parametrize("writer", [_grayscale, _rgba, _palette, _gray16], ids=["L", "RGBA", "P", "I;16"])
def test_image_kinds_load_as_rgb_in_unit_range(tmp_path, writer) -> None:
    writer(tmp_path / "im.png")
    ds = ImageFolder(tmp_path, flip=False)
    x = ds[0]
    assert x.shape == (3, H, W) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.1


def test_transparent_pixels_are_composited_over_white(tmp_path) -> None:
    alpha = np.random.default_rng(1).integers(0, 256, (H, W), dtype=np.uint8)
    alpha[:, : W // 2] = 0
    Image.fromarray(np.dstack([noise_rgb(), alpha])).save(tmp_path / "im.png")
    x = ImageFolder(tmp_path, flip=False)[0]
    a = torch.from_numpy(alpha).float() / 255
    rgb = torch.from_numpy(noise_rgb()).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(x, a * rgb + (1 - a) * 1.0)
    assert torch.equal(x[:, :, : W // 2], torch.ones(3, H, W // 2))  # the hidden colours never show


def test_a_gif_gives_its_first_frame(tmp_path) -> None:
    frames = [Image.new("RGB", (W, H), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    ds = ImageFolder(tmp_path, flip=False)
    assert [p.name for p in ds.files] == ["anim.gif"] and ds.num_ignored == 0
    x = ds[0]
    assert x.shape == (3, H, W)
    torch.testing.assert_close(x.mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]))


def test_16bit_keeps_its_precision(tmp_path) -> None:
    _gray16(tmp_path / "im.png")
    x = ImageFolder(tmp_path, flip=False)[0]
    expected = torch.from_numpy(gray16_values().astype(np.float32) / 65535)
    assert torch.allclose(x[0], expected, atol=1e-6) and torch.equal(x[0], x[2])
    assert not torch.allclose(x, (x * 255).round() / 255)  # more than 8 bits of precision survive


# Unreadable, ignored, empty, missing


@pytest.mark.parametrize("probe", ["verify", "decode"])
def test_corrupt_and_truncated_files_are_skipped_and_counted(tmp_path, probe) -> None:
    good = [write_rgb(tmp_path / f"good{i}.png", seed=i) for i in range(3)]
    (tmp_path / "corrupt.png").write_bytes(np.random.default_rng(0).bytes(500))
    write_truncated_jpeg(tmp_path / "truncated.jpg")
    ds = ImageFolder(tmp_path, flip=False, probe=probe)
    items = [ds[i] for i in range(len(ds))]  # must not raise
    assert sorted(p.name for p, _ in ds.skipped) == ["corrupt.png", "truncated.jpg"]
    assert ds.num_skipped == 2
    goods = [torch.from_numpy(noise_rgb(i)).permute(2, 0, 1).float() / 255 for i in range(3)]
    assert all(any(torch.equal(x, g) for g in goods) for x in items)  # every item is a good image
    assert {p.name for p in good} <= {p.name for p in ds.files}
    assert all(reason for _, reason in ds.skipped)


def test_decode_probe_counts_everything_at_construction(tmp_path) -> None:
    write_rgb(tmp_path / "good.png")
    write_truncated_jpeg(tmp_path / "truncated.jpg")
    ds = ImageFolder(tmp_path, probe="decode")
    assert ds.num_skipped == 1 and len(ds) == 1  # before any item was loaded


def write_truncated_bmp(path: Path) -> Path:
    write_rgb(path, seed=98, h=64, w=64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_verify_probe_finds_truncated_jpegs_and_keeps_trailing_data(tmp_path) -> None:
    """A truncated JPEG is caught when the dataset is built, so every run reports the same skipped files."""
    write_truncated_jpeg(tmp_path / "cut.jpg")
    write_rgb(tmp_path / "whole.jpg", seed=5)
    with (tmp_path / "whole.jpg").open("ab") as f:
        f.write(b"trailing data after the end-of-image marker, as some cameras append")
    ds = ImageFolder(tmp_path)
    assert [p.name for p, _ in ds.skipped] == ["cut.jpg"] and "truncated" in ds.skipped[0][1]
    assert [p.name for p in ds.files] == ["whole.jpg"]


def test_load_time_skip_is_counted_once_and_stays_deterministic(tmp_path) -> None:
    write_rgb(tmp_path / "a.png", seed=1)
    write_truncated_bmp(tmp_path / "b.bmp")  # passes verify (which does not read a BMP's pixels), fails to decode
    write_rgb(tmp_path / "c.png", seed=3)
    ds = ImageFolder(tmp_path, crop_size=8)
    assert len(ds) == 3 and ds.num_skipped == 0
    first = ds[1]  # b.bmp fails: c.png comes instead, with index 1's crop
    again = ds[1]
    assert ds.num_skipped == 1 and ds.skipped[0][0].name == "b.bmp"
    assert torch.equal(first, again)
    fresh = ImageFolder(tmp_path, crop_size=8)
    assert torch.equal(fresh[1], first)


def test_unsupported_files_only_is_an_input_error(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(lossnet.InputError, match=r"1 other files were ignored"):
        ImageFolder(tmp_path)


def test_empty_folder_names_folder_and_extensions(tmp_path) -> None:
    folder = tmp_path / "my_empty_images"
    folder.mkdir()
    with pytest.raises(lossnet.InputError, match="my_empty_images") as info:
        ImageFolder(folder)
    assert ".png" in str(info.value) and ".jpg" in str(info.value)


def test_folder_of_only_unreadable_images_is_an_input_error(tmp_path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(lossnet.InputError, match=r"no readable images in the folder .*bad\.png"):
        ImageFolder(tmp_path)


def test_missing_folder_and_missing_listed_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        ImageFolder([tmp_path / "gone.png"])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"crop_size": 0}, lossnet.InputError),
        ({"crop_size": (8, 8, 8)}, TypeError),
        ({"seed": -1}, lossnet.InputError),
        ({"extensions": ".png"}, TypeError),
        ({"extensions": ["png"]}, lossnet.InputError),
        ({"probe": "full"}, lossnet.InputError),
    ],
)
def test_bad_options_raise(tmp_path, kwargs, error) -> None:
    write_rgb(tmp_path / "a.png")
    with pytest.raises(error):
        ImageFolder(tmp_path, **kwargs)


# Crops, flips, reproducibility


def _same_image_folder(tmp_path: Path, n: int = 4) -> Path:
    for i in range(n):
        write_rgb(tmp_path / f"{i}.png", seed=0)  # identical content: only the crop tells items apart
    return tmp_path


def test_crops_have_the_requested_size(tmp_path) -> None:
    _same_image_folder(tmp_path)
    assert ImageFolder(tmp_path, crop_size=16)[0].shape == (3, 16, 16)
    assert ImageFolder(tmp_path, crop_size=(8, 20))[0].shape == (3, 8, 20)


def test_crop_is_a_window_of_the_image(tmp_path) -> None:
    _same_image_folder(tmp_path, n=1)
    full = ImageFolder(tmp_path, flip=False)[0]
    crop = ImageFolder(tmp_path, crop_size=(10, 12), flip=False)[0]
    windows = full.unfold(1, 10, 1).unfold(2, 12, 1)  # (3, H-9, W-11, 10, 12)
    assert (windows == crop[:, None, None]).all(-1).all(-1).all(0).any()


def test_images_smaller_than_the_crop_are_upscaled(tmp_path) -> None:
    write_rgb(tmp_path / "small.png", h=10, w=12)
    x = ImageFolder(tmp_path, crop_size=16)[0]
    assert x.shape == (3, 16, 16) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert random_crop(torch.rand(3, 3, 30), (16, 16), torch.Generator()).shape == (3, 16, 16)


def test_crops_are_reproducible_and_vary_with_index_epoch_and_seed(tmp_path) -> None:
    _same_image_folder(tmp_path)
    a, b = ImageFolder(tmp_path, crop_size=12), ImageFolder(tmp_path, crop_size=12)
    assert all(torch.equal(a[i], b[i]) for i in range(4))
    assert torch.equal(a[3], a[3]) and torch.equal(a[-1], a[3])
    assert len({a[i].numpy().tobytes() for i in range(4)}) == 4  # same image, different windows
    epoch0 = a[0]
    a.set_epoch(1)
    assert not torch.equal(a[0], epoch0)
    b.set_epoch(1)
    assert torch.equal(a[0], b[0])
    c = ImageFolder(tmp_path, crop_size=12, seed=1)
    assert not torch.equal(c[0], epoch0)


def test_order_of_access_does_not_matter(tmp_path) -> None:
    _same_image_folder(tmp_path)
    ds = ImageFolder(tmp_path, crop_size=12)
    forward = [ds[i] for i in range(4)]
    backward = [ds[i] for i in reversed(range(4))][::-1]
    assert all(torch.equal(f, b) for f, b in zip(forward, backward))


def test_global_rng_is_not_used(tmp_path) -> None:
    _same_image_folder(tmp_path, n=1)
    ds = ImageFolder(tmp_path, crop_size=12)
    torch.manual_seed(1)
    x = ds[0]
    state = torch.get_rng_state()
    torch.manual_seed(2)
    assert torch.equal(ds[0], x)
    torch.manual_seed(1)
    ds[0]
    assert torch.equal(torch.get_rng_state(), state)


def test_flip_mirrors_about_half_the_items(tmp_path) -> None:
    left_dark = np.zeros((H, W, 3), np.uint8)
    left_dark[:, W // 2 :] = 255
    Image.fromarray(left_dark).save(tmp_path / "half.png")
    ds = ImageFolder(tmp_path)
    flipped = 0
    for epoch in range(20):
        ds.set_epoch(epoch)
        x = ds[0]
        is_flipped = float(x[0, 0, 0]) == 1.0
        left, right = (1.0, 0.0) if is_flipped else (0.0, 1.0)  # exactly mirrored, never anything else
        assert torch.equal(x[..., : W // 2], torch.full((3, H, W // 2), left))
        assert torch.equal(x[..., W // 2 :], torch.full((3, H, W // 2), right))
        flipped += is_flipped
    assert 3 <= flipped <= 17
    no_flip = ImageFolder(tmp_path, flip=False)
    for epoch in range(20):
        no_flip.set_epoch(epoch)
        assert float(no_flip[0][0, 0, 0]) == 0.0


def test_item_generator_streams_differ() -> None:
    def draw(*key: int) -> torch.Tensor:
        return torch.rand(4, generator=item_generator(*key))

    assert torch.equal(draw(0, 0, 0), draw(0, 0, 0))
    outputs = [draw(0, 0, 0), draw(1, 0, 0), draw(0, 1, 0), draw(0, 0, 1), draw(0, 0, 0, 1)]
    assert len({o.numpy().tobytes() for o in outputs}) == 5


def test_set_epoch_checks_its_argument(tmp_path) -> None:
    _same_image_folder(tmp_path, n=1)
    with pytest.raises(lossnet.InputError, match="epoch"):
        ImageFolder(tmp_path).set_epoch(-1)


def test_repr_summarises(tmp_path) -> None:
    _same_image_folder(tmp_path, n=2)
    (tmp_path / "x.txt").write_text("x")
    assert "2 images, 0 skipped, 1 ignored" in repr(ImageFolder(tmp_path))


# DataLoader


def test_dataloader_batches(tmp_path) -> None:
    _same_image_folder(tmp_path, n=5)
    loader = torch.utils.data.DataLoader(ImageFolder(tmp_path, crop_size=16), batch_size=2, num_workers=0)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(2, 3, 16, 16), (2, 3, 16, 16), (1, 3, 16, 16)]


def test_workers_give_the_same_batches(tmp_path) -> None:
    _same_image_folder(tmp_path, n=4)
    ds = ImageFolder(tmp_path, crop_size=16)
    ds.set_epoch(3)
    single = torch.cat(list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=0)))
    multi = torch.cat(list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)))
    assert torch.equal(single, multi)


# The default images


NATURAL = set(DEFAULT_IMAGES) - {"brick", "grass", "gravel", "camera"}


def test_default_split_is_fixed_disjoint_and_covers_the_natural_images() -> None:
    train, val = set(DEFAULT_SPLITS["train"]), set(DEFAULT_SPLITS["val"])
    assert val == {"astronaut", "chelsea"}  # documented: changing it changes every reported val score
    assert train and val and not train & val
    assert train | val == NATURAL


def test_default_dataset_files_follow_the_split() -> None:
    train, val = default_dataset("train"), default_dataset("val")
    assert train.files == [default_image_path(n) for n in DEFAULT_SPLITS["train"]]
    assert val.files == [default_image_path(n) for n in DEFAULT_SPLITS["val"]]
    assert not set(train.files) & set(val.files)
    assert len(train) == 7 and len(val) == 2 and train.num_skipped == 0


def test_default_dataset_items_and_bad_split() -> None:
    x = default_dataset("val", crop_size=32, size=64, seed=5)[1]
    assert x.shape == (3, 32, 32) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    with pytest.raises(lossnet.InputError, match="Did you mean 'val'"):
        default_dataset("vall")


def test_cache_gives_the_same_items_and_skips_the_decode(tmp_path, monkeypatch):
    import lossnet.data.folder as folder_module
    from lossnet.data.io import save_image

    for i in range(2):
        save_image(torch.rand(3, 20, 24), tmp_path / f"{i}.png")
    plain = ImageFolder(tmp_path, crop_size=8, seed=1)
    cached = ImageFolder(tmp_path, crop_size=8, seed=1, cache=True)
    loads = []
    real = folder_module.load_image
    monkeypatch.setattr(folder_module, "load_image", lambda *a, **k: loads.append(a) or real(*a, **k))
    for epoch in range(3):
        plain.set_epoch(epoch), cached.set_epoch(epoch)
        assert all(torch.equal(plain[i], cached[i]) for i in range(2))
    assert len(loads) == 3 * 2 + 2  # plain decodes every time; cached once per file


def test_upscaling_a_small_image_is_warned_once(tmp_path, caplog) -> None:
    write_rgb(tmp_path / "big.png", h=40, w=40)
    write_rgb(tmp_path / "small1.png", h=10, w=30)
    write_rgb(tmp_path / "small2.png", h=12, w=12)
    ds = ImageFolder(tmp_path, crop_size=16)
    with caplog.at_level("WARNING", logger="lossnet"):
        _ = ds[0]  # big: no warning
        assert not caplog.records
        for _ in range(2):
            _ = [ds[i] for i in range(len(ds))]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "small1.png is 30x10 pixels, smaller than the 16x16 crop" in warnings[0] and "--crop-size" in warnings[0]


def test_flat_crops_are_redrawn_and_an_all_flat_image_still_gives_one(tmp_path):
    """Crops of a black region are redrawn (they blow up instance-norm gradients); a black image still crops."""
    from PIL import Image

    from lossnet.data.folder import FLAT_CROP_STD

    g = torch.Generator().manual_seed(0)
    image = torch.zeros(3, 64, 256)
    image[:, :, 128:] = torch.rand(3, 64, 128, generator=g)  # the right half textured, the left black
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype("uint8")).save(tmp_path / "night.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "black.png")
    night = ImageFolder([tmp_path / "night.png"], crop_size=32, flip=False, seed=0, min_std=FLAT_CROP_STD)
    stds = []
    for epoch in range(40):
        night.set_epoch(epoch)
        stds.append(float(night[0].flatten(1).std(dim=1).max()))
    assert min(stds) >= FLAT_CROP_STD
    plain = [float(random_crop(image, (32, 32), g).flatten(1).std(dim=1).max()) for _ in range(40)]
    assert sum(s < FLAT_CROP_STD for s in plain) > 10  # without the redraw, many crops are black
    black = ImageFolder([tmp_path / "black.png"], crop_size=32, flip=False, seed=0, min_std=FLAT_CROP_STD)
    assert black[0].shape == (3, 32, 32) and float(black[0].max()) == 0.0
