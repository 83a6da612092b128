"""Training images from a folder (or a list of files), randomly cropped and flipped, reproducibly.

:class:`ImageFolder` scans a folder recursively, skips files it cannot read instead of
crashing the run, and draws every crop and flip from a generator seeded with
``(seed, epoch, index)``, so two datasets with the same seed give the same items in any
order, in any worker. :func:`default_dataset` is the same over the embedded default
images, with a fixed train/validation split.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lossnet.data.defaults import default_image_path
from lossnet.data.io import IMAGE_SUFFIXES, UNREADABLE, load_image, probe_image, unreadable_reason
from lossnet.data.walk import find_images
from lossnet.errors import InputError, InputTypeError
from lossnet.validation import check_choice, check_positive_int

#: The fixed split of the natural default images (textures ``brick``, ``grass``, ``gravel``
#: and the grayscale ``camera`` are left out). ``astronaut``, the demo's image, and
#: ``chelsea`` are held out; the stereo pair ``motorcycle_left``/``motorcycle_right`` stays
#: together in train so that no near-duplicate leaks into validation.
DEFAULT_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("coffee", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field", "ihc", "retina"),
    "val": ("astronaut", "chelsea"),
}

#: The trainer redraws an instance-norm network's crops whose every channel has a std under this (about 5/255).
FLAT_CROP_STD = 0.02
#: Draws of a crop before a flat one is kept (an image that is one colour everywhere).
CROP_TRIES = 10

#: How files are checked when the dataset is built: see :class:`ImageFolder`.
PROBES = ("verify", "decode")

# Errors that mean "this file is not a readable image" (never a bug in lossnet).

log = logging.getLogger("lossnet")

# Separate random streams for the crop/flip here and for task pairing (lossnet.data.tasks).
CROP_STREAM = 0
PAIR_STREAM = 1


def item_generator(seed: int, epoch: int, index: int, stream: int = CROP_STREAM) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, index, stream)`` alone.

    The four numbers are mixed with :class:`numpy.random.SeedSequence`, so nearby
    seeds, epochs and indices give unrelated streams, and no global RNG is touched:
    the result is the same in the main process and in every DataLoader worker.

    >>> a = torch.rand(3, generator=item_generator(0, 1, 2))
    >>> torch.equal(a, torch.rand(3, generator=item_generator(0, 1, 2)))
    True
    """
    state = np.random.SeedSequence([seed, epoch, index, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state))


class ImageFolder(torch.utils.data.Dataset):
    """Images from a folder tree (or a list of files) as ``(3, H, W)`` float tensors in [0, 1].

    **Discovery.** A folder is scanned recursively (symlinked folders followed once),
    in sorted order, for files whose suffix is in ``extensions`` (case-insensitive:
    ``.JPG`` counts). Hidden files and folders (names starting with ``.``) are not
    looked at. Other files are listed in :attr:`ignored`. ``root`` may instead be a
    list of files (kept in the given order) and folders (scanned as above).

    **Unreadable files never crash a run**; they are listed in :attr:`skipped` as
    ``(path, reason)``. Every file is probed when the dataset is built:

    - ``probe="verify"`` (default, cheap): Pillow opens the file and runs
      ``Image.verify()``. This catches non-images, random bytes and broken PNG chunks
      without decoding pixels. ``verify`` does not read a JPEG's body, so a JPEG whose
      data does not end with the end-of-image marker (a truncated download or copy) is
      also decoded at 1/8 scale; a complete JPEG costs a 2-byte read. A file that
      passes but fails to decode later (a damaged WebP, TIFF or BMP, say) is skipped at load time:
      it is added to :attr:`skipped` and the next readable file (index + 1, + 2, ...)
      is returned in its place, with the crop drawn for the requested index. Those
      late skips are recorded in the process that loaded the file, so with
      ``num_workers > 0`` the main process's count misses them.
    - ``probe="decode"``: every file is fully decoded once, with the same code that
      loads it later, so :attr:`skipped` is complete as soon as the dataset exists (in
      every worker too). It costs one decode per file up front.

    **Images are read** with :func:`lossnet.data.io.load_image`: EXIF orientation
    applied, 16-bit kept, grayscale and palette made RGB, transparent pixels composited
    over white (:data:`lossnet.data.io.BACKGROUND`), a GIF's first frame. ``size`` first
    resizes the longer side.

    **Crops.** With ``crop_size``, a random ``(h, w)`` window is cut. An image smaller
    than the crop is first upscaled (antialiased bicubic, aspect ratio kept) until it
    covers the crop, rather than reflect-padded: padding shows mirrored seams, and
    fails outright (torch's reflect mode) when the image is less than half the crop.
    Upscaled images are blurrier than real ones, so keep ``crop_size`` at or below
    your smallest images when training super-resolution; the first time an image is
    upscaled, a warning names it (once per dataset, so once per worker). Without ``crop_size`` items
    keep their own sizes, which a DataLoader can only batch with ``batch_size=1``.
    With ``min_std``, a crop that is almost one colour (every channel's std under it, e.g. the
    black sky of ``hubble_deep_field``) is redrawn, up to :data:`CROP_TRIES` times. An
    instance-norm network (``TransformerNet``) divides such a crop's activations by their tiny
    std in every layer, so its gradient explodes: a 64 px crop of std 0.003 gave an infinite one
    and diverged the style recipe. The trainer sets it (:data:`FLAT_CROP_STD`) for such networks
    only: flat regions are where JPEG blocking shows, so restoration needs them.
    With ``flip``, half the items are mirrored left-right.

    **Randomness** comes only from :func:`item_generator` seeded with ``(seed,
    epoch, index)``: the same seed gives the same crops in any order and in any
    worker, and :meth:`set_epoch` gives new ones. Call ``set_epoch`` before each
    epoch's ``for batch in loader``; with ``persistent_workers=True`` the workers
    keep the epoch they started with.

    Args:
        root: a folder, or a list of image files and folders.
        crop_size: ``int`` for square crops, ``(h, w)``, or ``None`` for whole images.
        flip: mirror half the items left-right.
        extensions: the suffixes to load, with their dot.
        seed: the base seed, an int >= 0.
        size: resize the longer side to ``size`` before cropping (``None`` keeps it).
        probe: ``"verify"`` or ``"decode"``, see above.
        min_std: redraw crops whose every channel's std is under this ([0, 1] units; 0: never).
        cache: keep each decoded (and resized) image in memory after its first load, so
            later epochs skip the decode. Worth it for small folders (the default
            images); it costs ``3 * 4 * H * W`` bytes per image, in every worker.

    Attributes:
        files: the readable files found, in order (``len(dataset) == len(files)``).
        skipped: ``(path, reason)`` for each unreadable file.
        ignored: the files with other suffixes.

    Raises:
        FileNotFoundError: ``root`` (or a file in the list) does not exist.
        InputError: no readable image was found; bad options.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        crop_size: int | tuple[int, int] | None = None,
        flip: bool = True,
        extensions: Sequence[str] = IMAGE_SUFFIXES,
        seed: int = 0,
        *,
        size: int | None = None,
        probe: str = "verify",
        cache: bool = False,
        min_std: float = 0.0,
    ) -> None:
        self.crop_size = _check_crop_size(crop_size)
        self.min_std = float(min_std)
        self.flip = bool(flip)
        self.extensions = _check_extensions(extensions)
        self.seed = check_index(seed, "seed")
        self.size = None if size is None else check_positive_int(size, "size")
        self.probe = check_choice(probe, PROBES, "probe")
        self.epoch = 0
        self.root = root if isinstance(root, (list, tuple)) else Path(root)

        candidates, self.ignored = find_images(root, self.extensions)
        self.skipped: list[tuple[Path, str]] = []
        self.files: list[Path] = []
        for path in candidates:
            reason = probe_image(path, decode=self.probe == "decode")
            if reason is None:
                self.files.append(path)
            else:
                self.skipped.append((path, reason))
        self._num_candidates = len(candidates)
        self._failed: set[int] = set()  # indices of files that passed the probe but failed to load
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None
        self._warned_upscale = False
        if not self.files:
            raise InputError(self._nothing_readable(candidates))

    @property
    def num_skipped(self) -> int:
        """How many unreadable files were skipped so far (see the class docstring)."""
        return len(self.skipped)

    @property
    def num_ignored(self) -> int:
        """How many files were left out for their suffix."""
        return len(self.ignored)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's crops and flips (an int >= 0); call it before iterating a DataLoader."""
        self.epoch = check_index(epoch, "epoch")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        """The item ``index`` as ``(3, h, w)`` in [0, 1], cropped and flipped for this epoch."""
        n = len(self.files)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for an ImageFolder of {n} images")
        index %= n
        image = self._load_readable(index)
        g = item_generator(self.seed, self.epoch, index, CROP_STREAM)
        if self.crop_size is not None:
            self._warn_if_upscaled(index, image)
            image = _textured_crop(image, self.crop_size, g, self.min_std)
        elif self._cache is not None:
            image = image.clone()  # never hand out the cached tensor itself
        if self.flip and bool(torch.rand((), generator=g) < 0.5):
            image = image.flip(-1)
        return image.contiguous()

    def _warn_if_upscaled(self, index: int, image: torch.Tensor) -> None:
        """Warn (once per dataset) that an image smaller than the crop is being upscaled."""
        (h, w), (ch, cw) = image.shape[-2:], self.crop_size  # type: ignore[misc]
        if self._warned_upscale or (h >= ch and w >= cw):
            return
        self._warned_upscale = True
        name = self.files[index] if index not in self._failed else "an image"
        log.warning(
            "%s is %dx%d pixels%s, smaller than the %dx%d crop: it is upscaled (bicubic) before cropping, so its "
            "crops are blurrier than real pixels. Use a smaller crop size (--crop-size) or larger images. "
            "(Said once; other images may be upscaled too.)",
            name,
            w,
            h,
            f" after resizing to {self.size}" if self.size is not None else "",
            cw,
            ch,
        )

    def _load_readable(self, index: int) -> torch.Tensor:
        """Load file ``index``, or the next one that loads, recording the ones that fail."""
        n = len(self.files)
        for step in range(n):
            i = (index + step) % n
            if i in self._failed:
                continue
            if self._cache is not None and i in self._cache:
                return self._cache[i]
            try:
                image = load_image(self.files[i], size=self.size)[0]
            except UNREADABLE as err:  # a missing file is an OSError too: it was deleted mid-run
                self._failed.add(i)
                self.skipped.append((self.files[i], unreadable_reason(err)))
                continue
            if self._cache is not None:
                self._cache[i] = image
            return image
        raise InputError(
            f"none of the {self._num_candidates} image files in {self._where()} could be read: "
            f"{_list_skipped(self.skipped)}. Check that they are images and not truncated."
        )

    def _where(self) -> str:
        return f"the folder {self.root}" if isinstance(self.root, Path) else f"the list of {len(self.root)} paths"

    def _nothing_readable(self, candidates: list[Path]) -> str:
        suffixes = " ".join(self.extensions)
        if not candidates:
            other = f" ({len(self.ignored)} other files were ignored)" if self.ignored else ""
            return (
                f"no images in {self._where()}: looked (recursively) for files ending in {suffixes}{other}. "
                "Point root at the folder that holds the images, or pass extensions=... for other suffixes."
            )
        return (
            f"no readable images in {self._where()}: all {len(candidates)} files ending in {suffixes} "
            f"failed to open: {_list_skipped(self.skipped)}. Check that they are images and not truncated."
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root) if isinstance(self.root, Path) else f'<{len(self.root)} paths>'!r}, "
            f"{len(self)} images, {self.num_skipped} skipped, {self.num_ignored} ignored, "
            f"crop_size={self.crop_size}, flip={self.flip}, seed={self.seed}, epoch={self.epoch})"
        )


def _textured_crop(image: torch.Tensor, size: tuple[int, int], g: torch.Generator, min_std: float) -> torch.Tensor:
    """A random crop with a channel std of at least ``min_std``, if :data:`CROP_TRIES` draws find one (else the last)."""
    for _ in range(CROP_TRIES if min_std > 0 else 1):
        crop = random_crop(image, size, g)
        if min_std <= 0 or float(crop.flatten(1).std(dim=1).max()) >= min_std:
            break
    return crop


def random_crop(image: torch.Tensor, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """A random ``size`` window of ``image`` ``(C, H, W)``; a smaller image is upscaled to cover it first.

    The upscale is antialiased bicubic, keeps the aspect ratio and is clamped to [0, 1].

    >>> g = torch.Generator().manual_seed(0)
    >>> random_crop(torch.rand(3, 10, 20), (8, 8), g).shape
    torch.Size([3, 8, 8])
    >>> random_crop(torch.rand(3, 4, 6), (8, 8), g).shape  # upscaled to 8 x 12, then cropped
    torch.Size([3, 8, 8])
    """
    ch, cw = size
    h, w = image.shape[-2:]
    if h < ch or w < cw:
        scale = max(ch / h, cw / w)
        h, w = max(ch, math.ceil(h * scale - 1e-6)), max(cw, math.ceil(w * scale - 1e-6))
        image = F.interpolate(image[None], size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        image = image[0].clamp_(0.0, 1.0)
    top = int(torch.randint(0, h - ch + 1, (), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (), generator=generator))
    return image[..., top : top + ch, left : left + cw]


def default_dataset(
    split: str = "train",
    crop_size: int | tuple[int, int] | None = None,
    flip: bool = True,
    seed: int = 0,
    *,
    size: int | None = None,
    cache: bool = False,
    min_std: float = 0.0,
) -> ImageFolder:
    """An :class:`ImageFolder` over the natural default images, split as :data:`DEFAULT_SPLITS` says.

    Train has 7 images and val 2 (``astronaut``, ``chelsea``); the split never changes.
    The images range from 300 x 451 to 1411 x 1411 pixels: ``size`` resizes their
    longer side first, so that a crop sees more than a corner of the large ones.

    Args:
        split: ``"train"`` or ``"val"``.
        crop_size, flip, seed, size, cache: as for :class:`ImageFolder`.

    Raises:
        DataUnavailableError: scikit-image, which ships the images, is not installed.

    >>> val = default_dataset("val", crop_size=64, size=128)
    >>> len(val), val[0].shape
    (2, torch.Size([3, 64, 64]))
    """
    names = DEFAULT_SPLITS[check_choice(split, list(DEFAULT_SPLITS), "split")]
    files = [default_image_path(n) for n in names]
    return ImageFolder(files, crop_size, flip, seed=seed, size=size, cache=cache, min_std=min_std)


def _list_skipped(skipped: Sequence[tuple[Path, str]], limit: int = 5) -> str:
    """``a.png (reason); b.jpg (reason); ... and 3 more`` for an error message."""
    shown = "; ".join(f"{p.name} ({r})" for p, r in skipped[:limit])
    return shown + (f"; and {len(skipped) - limit} more" if len(skipped) > limit else "")


def _check_crop_size(crop_size: object) -> tuple[int, int] | None:
    if crop_size is None:
        return None
    if isinstance(crop_size, int) and not isinstance(crop_size, bool):
        crop_size = (crop_size, crop_size)
    if not (isinstance(crop_size, (tuple, list)) and len(crop_size) == 2):
        raise InputTypeError(f"crop_size must be an int, an (h, w) pair or None; got {crop_size!r}")
    h, w = (check_positive_int(v, "crop_size") for v in crop_size)
    return h, w


def _check_extensions(extensions: object) -> tuple[str, ...]:
    if isinstance(extensions, str) or not isinstance(extensions, Sequence) or not extensions:
        raise InputTypeError(f"extensions must be a non-empty list of suffixes such as ['.png']; got {extensions!r}")
    out = []
    for ext in extensions:
        if not (isinstance(ext, str) and ext.startswith(".") and len(ext) > 1):
            raise InputError(f"extensions must be suffixes with their dot, such as '.png'; got {ext!r}")
        out.append(ext.lower())
    return tuple(out)


def check_index(value: object, what: str) -> int:
    """Return ``value`` if it is an ``int >= 0`` (a seed, an epoch), else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{what} must be an int >= 0; got {value!r} ({type(value).__name__})")
    if value < 0:
        raise InputError(f"{what} must be an int >= 0; got {value}")
    return value
