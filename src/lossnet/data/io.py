"""Reading and writing images as tensors: EXIF orientation, 8/16-bit, palette and alpha, atomic writes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lossnet.atomic import atomic_writer
from lossnet.errors import InputError
from lossnet.validation import check_tensor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def load_image(path: str | os.PathLike[str], size: int | None = None) -> torch.Tensor:
    """Read an image file as an RGB float tensor ``(1, 3, H, W)`` in [0, 1].

    EXIF orientation is applied; 16-bit images keep their precision (divided by 65535);
    palette, grayscale and alpha images become RGB (alpha is dropped).

    Args:
        path: the image file.
        size: if given, resize (antialiased bicubic) so that the longer side is ``size``.

    Raises:
        FileNotFoundError: no such file.
        InputError: the file is not a readable image, or it has more pixels than Pillow's
            decompression-bomb limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 megapixels).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            array = _to_float_rgb(im)
    except Image.DecompressionBombError as err:
        raise InputError(_bomb_message(path, err)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"cannot read {path} as an image: {err}") from None
    x = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    if size is not None:
        x = resize_longer_side(x, size)
    return x


def _bomb_message(path: Path, err: Exception) -> str:
    """Name the file, its size and the limit for Pillow's ``DecompressionBombError``."""
    match = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(err))
    if match is None:
        return f"cannot read {path}: {err}"
    pixels, limit = int(match[1]), int(match[2])
    side = int(limit**0.5)
    return (
        f"{path} has {pixels / 1e6:.0f} megapixels, more than the {limit / 1e6:.0f}-megapixel limit that guards "
        f"against decompression bombs (small files that expand to gigabytes); if the image is genuine, "
        f"shrink it below {limit} pixels (about {side}x{side}) with an image editor first"
    )


def _to_float_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = np.asarray(im, dtype=np.float32) / 65535.0
        return np.repeat(gray[..., None], 3, axis=2).clip(0.0, 1.0)
    if im.mode == "F":
        gray = np.asarray(im, dtype=np.float32)
        return np.repeat(gray[..., None], 3, axis=2).clip(0.0, 1.0)
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def resize_longer_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(B, C, H, W)`` so that ``max(H, W) == size`` (antialiased bicubic), clamped to [0, 1]."""
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    if new == (h, w):
        return x
    out = torch.nn.functional.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0)


def to_pil(x: torch.Tensor) -> Image.Image:
    """Convert ``(1, C, H, W)`` or ``(C, H, W)`` in [0, 1] (C in {1, 3}) to an 8-bit PIL image."""
    check_tensor(x, "image", ndim=(3, 4))
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise InputError(f"to_pil takes one image; got a batch of {x.shape[0]}: index it, e.g. x[i]")
        x = x[0]
    if x.shape[0] not in (1, 3):
        raise InputError(f"expected (C, H, W) with C in {{1, 3}}; got {tuple(x.shape)}")
    array = (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu()
    array = array.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def read_icc_profile(path: str | os.PathLike[str]) -> bytes | None:
    """The ICC colour profile embedded in an image file, or ``None`` (none, or not readable)."""
    try:
        with Image.open(path) as im:
            profile = im.info.get("icc_profile")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return profile or None


#: The ICC colour-space signature (bytes 16-19 of a profile's header) that fits each PIL mode written here.
_ICC_SPACE = {"RGB": b"RGB ", "L": b"GRAY"}
_ICC_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")


def save_image(
    image: torch.Tensor | Image.Image,
    path: str | os.PathLike[str],
    quality: int = 95,
    icc_profile: bytes | None = None,
) -> Path:
    """Write an image atomically: to a temporary file beside ``path``, then renamed over it.

    A crash mid-write leaves either the old file or nothing, never a truncated image.

    Args:
        image: a PIL image, or a tensor ``(1, C, H, W)``/``(C, H, W)`` in [0, 1].
        path: destination; the format follows the suffix (``.png``, ``.jpg``, ...).
        quality: JPEG/WebP quality.
        icc_profile: an ICC profile to embed (e.g. the source image's, from :func:`read_icc_profile`).
            It is embedded only where it fits: its colour space must match the image (an RGB
            profile for RGB, a gray one for grayscale) and the format must carry one (PNG, JPEG,
            WebP, TIFF). Otherwise it is left out.
    """
    path = Path(path)
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"unknown image format {path.suffix!r} for {path}; use one of {IMAGE_SUFFIXES}")
    options: dict[str, object] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if icc_profile and fmt in _ICC_FORMATS and icc_profile[16:20] == _ICC_SPACE.get(pil.mode):
        options["icc_profile"] = icc_profile
    with atomic_writer(path) as f:
        pil.save(f, format=fmt, **options)
    return path
