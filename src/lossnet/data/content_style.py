"""Style images for arbitrary style transfer (``style_any``), and a style crop drawn for a content crop.

AdaIN (Huang & Belongie 2017) trains on two folders, MS-COCO's photographs as contents and WikiArt's
paintings as styles, and pairs every content crop with a random style crop: both images resized so
that their shorter side is 512, then cropped to 256. :func:`style_crop` draws such a crop for a
content of any size, with the same ratio (:data:`STYLE_TO_CROP`); the pair maker
(:func:`lossnet.data.pairs.content_style_pair`) stacks it on the content's channels.

Offline, :data:`DEFAULT_STYLES` are the styles: scikit-image's textures and its two painting-like
colour images. ``grass`` is left out, so that a style never seen in training is at hand.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.folder import ImageFolder, random_crop
from lossnet.errors import InputError, InputTypeError

#: The default style images: two grey textures and two painting-like colour images (``grass`` is held out).
DEFAULT_STYLES: tuple[str, ...] = ("brick", "gravel", "ihc", "retina")
#: The style image's shorter side, as a multiple of the crop's longer side (the paper's 512 px for 256 px crops).
STYLE_TO_CROP = 2


def style_images(spec: str | None = None, size: int | None = None, *, cache: bool | None = None) -> ImageFolder:
    """The style images: whole (no crop), the longer side resized to ``size``.

    Args:
        spec: ``None`` (the :data:`DEFAULT_STYLES`), a folder (searched recursively), or default image
            names joined by commas (``'brick,ihc'``; see :data:`lossnet.data.DEFAULT_IMAGES`).
        size: the longer side of each style image (``None`` keeps the file's).
        cache: keep the decoded images in memory; ``None``: only for default images.

    Raises:
        InputError: an unknown name, a missing folder, or no readable image in it.

    >>> styles = style_images("brick,ihc", size=64)
    >>> len(styles), styles[1].shape
    (2, torch.Size([3, 64, 64]))
    """
    check_style_data(spec)
    names = list(DEFAULT_STYLES) if spec is None else [n.strip() for n in spec.split(",") if n.strip()]
    defaults = spec is None or not Path(spec).exists()
    root = [default_image_path(n) for n in names] if defaults else Path(spec)  # type: ignore[arg-type]
    keep = defaults if cache is None else cache
    return ImageFolder(root, crop_size=None, flip=False, size=size, cache=keep)


def check_style_data(spec: str | None) -> str | None:
    """``spec`` (as :func:`style_images` takes it) when it names a folder or default images, checked without
    reading any image.

    Raises:
        InputTypeError: not a string.
        InputError: no such folder, and a name that is no default image.
    """
    if spec is not None and not isinstance(spec, str):
        raise InputTypeError(f"the style images are a folder or default names joined by commas; got {spec!r}")
    if spec is None or Path(spec).exists():
        return spec
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in DEFAULT_IMAGES]
    if unknown or not names:
        raise InputError(
            f"style images {spec!r}: no such folder, and {unknown[0] if unknown else spec!r} is no default image "
            f"name; give a folder of style images, or names among {', '.join(DEFAULT_IMAGES)} joined by commas"
        )
    return spec


@lru_cache(maxsize=4)
def cached_style_images(spec: str | None) -> ImageFolder:
    """:func:`style_images` ``(spec)`` at the files' own size, built once per process (default images are kept
    decoded in memory; a folder's are read per draw, as a content folder's are)."""
    return style_images(spec)


def style_crop(
    styles: torch.utils.data.Dataset, size: tuple[int, int], generator: torch.Generator, flip: bool = True
) -> torch.Tensor:
    """A style crop ``(3, H, W)`` in [0, 1] for a content of ``size`` ``(H, W)``, drawn with ``generator``.

    One of ``styles`` (``(3, H', W')`` images in [0, 1]) is picked, resized (antialiased bicubic, clamped)
    so that its shorter side is :data:`STYLE_TO_CROP` times the crop's longer side, cropped at random and,
    with ``flip``, mirrored half the time.

    >>> g = torch.Generator().manual_seed(0)
    >>> style_crop(style_images("brick,ihc"), (32, 48), g).shape
    torch.Size([3, 32, 48])
    """
    if len(styles) == 0:  # type: ignore[arg-type]
        raise InputError("no style images: give at least one")
    image = styles[int(torch.randint(len(styles), (), generator=generator))]  # type: ignore[arg-type]
    h, w = image.shape[-2:]
    scale = STYLE_TO_CROP * max(size) / min(h, w)
    shape = (max(size[0], round(h * scale)), max(size[1], round(w * scale)))
    image = F.interpolate(image[None], size=shape, mode="bicubic", antialias=True, align_corners=False)[0]
    crop = random_crop(image.clamp_(0.0, 1.0), size, generator)
    if flip and bool(torch.rand((), generator=generator) < 0.5):
        crop = crop.flip(-1)
    return crop
