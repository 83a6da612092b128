"""Reading and writing images as tensors: EXIF orientation, 8/16-bit, palette and alpha, GIF, atomic writes.

Two ways in:

- :func:`load_image` is what losses, metrics, ``compare``, ``eval`` and training read: RGB
  ``(1, 3, H, W)`` in [0, 1], with transparent pixels composited over :data:`BACKGROUND`
  (white), so the colours hidden behind alpha 0 never count.
- :func:`read_image` is what ``apply`` reads: the stored colour (grey stays one channel),
  the alpha channel apart, and the bit depth, so they can be written back as they came.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lossnet.atomic import atomic_writer
from lossnet.data.png16 import write_png16
from lossnet.errors import InputError
from lossnet.validation import check_tensor
from lossnet.viz import to_pil

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

#: The colour (RGB in [0, 1]) that :func:`load_image` composites transparent pixels over: white.
#: A pixel with alpha ``a`` becomes ``a * colour + (1 - a) * BACKGROUND`` (straight, not
#: premultiplied, alpha), so two files that look the same on a white page load the same,
#: whatever colours their transparent pixels hide.
BACKGROUND: tuple[float, float, float] = (1.0, 1.0, 1.0)

#: BT.601 luma weights, for the grey value of :data:`BACKGROUND` (as lossnet.data.tasks.BT601).
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class StoredImage:
    """An image file's pixels as stored: colour and alpha apart, and the samples' bit depth.

    Attributes:
        color: ``(1, C, H, W)`` float32 in [0, 1], ``C = 1`` for a grey image and 3 for a
            colour one (palette images are colour). Transparent pixels keep whatever colour
            the file stores behind them.
        alpha: ``(1, 1, H, W)`` float32 in [0, 1] (straight alpha), or ``None`` when the image is opaque.
        bit_depth: 8, or 16 for files with 16-bit samples (PNG, TIFF), whose precision ``color``
            and ``alpha`` keep (values ``k / 65535``).
    """

    color: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int

    @property
    def grey(self) -> bool:
        """True for a one-channel (grey) image."""
        return self.color.shape[1] == 1

    def composite(self, background: tuple[float, float, float] = BACKGROUND) -> torch.Tensor:
        """The colour composited over ``background`` (RGB in [0, 1]): ``a * color + (1 - a) * background``.

        Returns ``(1, C, H, W)`` like :attr:`color` (a grey image over the background's BT.601 luma);
        the colour itself when the image is opaque.

        >>> s = StoredImage(torch.zeros(1, 3, 1, 2), torch.tensor([[[[1.0, 0.0]]]]), 8)
        >>> s.composite()[0, 0].tolist()
        [[0.0, 1.0]]
        """
        if self.alpha is None:
            return self.color
        if self.grey:
            bg = torch.tensor([sum(w * v for w, v in zip(_LUMA, background, strict=True))])
        else:
            bg = torch.tensor(background, dtype=torch.float32)
        bg = bg.view(1, -1, 1, 1)
        return (self.alpha * self.color + (1.0 - self.alpha) * bg).clamp_(0.0, 1.0)


def load_image(path: str | os.PathLike[str], size: int | None = None) -> torch.Tensor:
    """Read an image file as an RGB float tensor ``(1, 3, H, W)`` in [0, 1].

    EXIF orientation is applied; 16-bit images keep their precision (divided by 65535);
    palette and grayscale images become RGB; a GIF gives its first frame. Transparent
    pixels are composited over :data:`BACKGROUND` (white): ``a * colour + (1 - a) * white``,
    so the colours a file hides behind alpha 0 never reach a loss or a metric.

    Args:
        path: the image file.
        size: if given, resize (antialiased bicubic) so that the longer side is ``size``.

    Raises:
        FileNotFoundError: no such file.
        InputError: the file is not a readable image, or it has more pixels than Pillow's
            decompression-bomb limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 megapixels).
    """
    x = read_image(path).composite()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x.contiguous()
    if size is not None:
        x = resize_longer_side(x, size)
    return x


def read_image(path: str | os.PathLike[str]) -> StoredImage:
    """Read an image file as stored: grey or colour, alpha apart, 8 or 16 bits (see :class:`StoredImage`).

    EXIF orientation is applied and a GIF gives its first frame. 16-bit PNGs keep all 16
    bits, in colour too (Pillow alone keeps only the high byte of 16-bit colour samples).

    Raises:
        FileNotFoundError: no such file.
        InputError: the file is not a readable image.
    """
    path = Path(path)
    with _opened(path) as im:
        low = _low_bytes(im, path)
        im = ImageOps.exif_transpose(im)
        array, bits = _to_float(im, low)
    x = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    has_alpha = x.shape[1] in (2, 4)
    color, alpha = (x[:, :-1], x[:, -1:]) if has_alpha else (x, None)
    if alpha is not None and bool((alpha == 1.0).all()):
        alpha = None  # an alpha channel that hides nothing
    return StoredImage(color.contiguous(), None if alpha is None else alpha.contiguous(), bits)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """Pillow's ``Image.open``, with a missing file, a non-image and a decompression bomb (also while
    the caller decodes inside the ``with``) turned into :class:`FileNotFoundError` / :class:`InputError`."""
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with Image.open(path) as im:
            yield im
    except Image.DecompressionBombError as err:
        raise InputError(_bomb_message(path, err)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"cannot read {path} as an image: {err}") from None


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


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file as :func:`load_image` gives it (EXIF orientation applied), from its header.

    Raises:
        FileNotFoundError: no such file.
        InputError: the file is not a readable image.
    """
    with _opened(Path(path)) as im:
        w, h = im.size
        rotated = im.getexif().get(0x0112) in (5, 6, 7, 8)
    return (h, w) if rotated else (w, h)


# Pillow decodes 16-bit colour samples to 8 bits (the high byte). Decoding the same data a second time with
# the byte order swapped gives the low bytes; grey + alpha (LA;16B, 32 bits a pixel) decodes whole as 8-bit RGBA.
_NATIVE = "L" if sys.byteorder == "little" else "B"
_SWAPPED = {
    **{f"{m};16{a}": f"{m};16{b}" for m in ("RGB", "RGBA") for a, b in (("B", "L"), ("L", "B"))},
    **{f"{m};16N": f"{m};16{'B' if _NATIVE == 'L' else 'L'}" for m in ("RGB", "RGBA")},
    "LA;16B": "RGBA",
}


def _rawmode(args: object) -> object:
    return args[0] if isinstance(args, tuple) and args else args


def _low_bytes(im: Image.Image, path: Path) -> tuple[str, Image.Image] | None:
    """For a 16-bit colour (or grey + alpha) file, ``(rawmode, image)``: the file decoded again with that
    rawmode (EXIF orientation applied) to recover the low bytes. ``None`` for other files."""
    tiles = getattr(im, "tile", None) or []
    rawmodes = {_rawmode(t.args) for t in tiles}
    if im.mode not in ("RGB", "RGBA") or len(rawmodes) != 1:
        return None
    swapped = _SWAPPED.get(rawmodes.pop())  # type: ignore[arg-type]
    if swapped is None:
        return None
    try:
        with Image.open(path) as other:
            other.tile = [
                t._replace(args=(swapped, *t.args[1:]) if isinstance(t.args, tuple) else swapped) for t in other.tile
            ]
            other.load()
            return swapped, ImageOps.exif_transpose(other)
    except (OSError, ValueError, IndexError, AttributeError, TypeError):  # a Pillow that decodes otherwise: 8 bits
        return None


def _to_float(im: Image.Image, low: tuple[str, Image.Image] | None) -> tuple[np.ndarray, int]:
    """``(H, W, C)`` float32 in [0, 1] with C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA; and the bit depth."""
    transparency = "transparency" in im.info
    if low is not None:
        rawmode, other = low
        lo = np.asarray(other, dtype=np.uint16)
        if rawmode == "RGBA":  # grey + alpha: the bytes L high, L low, A high, A low came as R, G, B, A
            samples = (lo[..., [0, 2]] << 8) | lo[..., [1, 3]]
        else:
            samples = (np.asarray(im, dtype=np.uint16) << 8) | lo
        return samples.astype(np.float32) / 65535.0, 16
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return (np.asarray(im, dtype=np.float32)[..., None] / 65535.0).clip(0.0, 1.0), 16
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)[..., None].clip(0.0, 1.0), 16
    if im.mode in ("1", "L", "LA", "La"):
        target = "LA" if im.mode in ("LA", "La") or transparency else "L"
    elif im.mode in ("RGBA", "RGBa", "PA") or transparency:
        target = "RGBA"
    else:
        target = "RGB"
    array = np.asarray(im if im.mode == target else im.convert(target), dtype=np.float32) / 255.0
    return (array[..., None] if array.ndim == 2 else array), 8


def resize_longer_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(B, C, H, W)`` so that ``max(H, W) == size`` (antialiased bicubic), clamped to [0, 1]."""
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    if new == (h, w):
        return x
    out = torch.nn.functional.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0)



def read_icc_profile(path: str | os.PathLike[str]) -> bytes | None:
    """The ICC colour profile embedded in an image file, or ``None`` (none, or not readable)."""
    try:
        with Image.open(path) as im:
            profile = im.info.get("icc_profile")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return profile or None


#: The ICC colour-space signature (bytes 16-19 of a profile's header) that fits each PIL mode written here.
_ICC_SPACE = {"RGB": b"RGB ", "RGBA": b"RGB ", "L": b"GRAY", "LA": b"GRAY", "I;16": b"GRAY"}
_ICC_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")
#: PIL modes of 8-bit arrays by channel count.
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def save_image(
    image: torch.Tensor | Image.Image | np.ndarray,
    path: str | os.PathLike[str],
    quality: int = 95,
    icc_profile: bytes | None = None,
) -> Path:
    """Write an image atomically: to a temporary file beside ``path``, then renamed over it.

    A crash mid-write leaves either the old file or nothing, never a truncated image.

    Args:
        image: a PIL image, a tensor ``(1, C, H, W)``/``(C, H, W)`` in [0, 1] (written with 8
            bits), or an array ``(H, W, C)`` of ``uint8`` or ``uint16`` samples with C = 1 (grey),
            2 (grey + alpha), 3 (RGB) or 4 (RGBA). ``uint16`` arrays are written as 16-bit PNGs
            (``.png`` only).
        path: destination; the format follows the suffix (``.png``, ``.jpg``, ...).
        quality: JPEG/WebP quality.
        icc_profile: an ICC profile to embed (e.g. the source image's, from :func:`read_icc_profile`).
            It is embedded only where it fits: its colour space must match the image (an RGB
            profile for RGB, a gray one for grayscale) and the format must carry one (PNG, JPEG,
            WebP, TIFF). Otherwise it is left out.

    Raises:
        InputError: an unknown suffix, an array of another shape or type, or 16 bits for a format other than PNG.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"unknown image format {path.suffix!r} for {path}; use one of {IMAGE_SUFFIXES}")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] not in _MODES or image.dtype not in (np.uint8, np.uint16):
            raise InputError(
                f"expected an (H, W, C) uint8 or uint16 array with C in 1-4; got {image.shape} {image.dtype}"
            )
        if image.dtype == np.uint16:
            if fmt != "PNG":
                raise InputError(f"16-bit images are written as PNG only; got {path.name}: use a .png name or 8 bits")
            space = b"GRAY" if image.shape[2] <= 2 else b"RGB "
            fits = icc_profile if icc_profile and icc_profile[16:20] == space else None
            with atomic_writer(path) as f:
                write_png16(f, image, icc_profile=fits)
            return path
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image, mode=_MODES[image.shape[2]])
    else:
        pil = image if isinstance(image, Image.Image) else to_pil(image)
    options: dict[str, object] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if icc_profile and fmt in _ICC_FORMATS and icc_profile[16:20] == _ICC_SPACE.get(pil.mode):
        options["icc_profile"] = icc_profile
    with atomic_writer(path) as f:
        pil.save(f, format=fmt, **options)
    return path


#: What reading a broken or hostile image file can raise.
UNREADABLE = (InputError, UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def probe_image(path: Path, decode: bool) -> str | None:
    """``None`` if ``path`` looks like a readable image, else why not (``verify``: header and JPEG end checks; ``decode``: a full read)."""
    try:
        if decode:
            load_image(path)
        else:
            with Image.open(path) as im:
                jpeg = im.format == "JPEG"
                im.verify()
            if jpeg and not _ends_with_jpeg_eoi(path):
                with Image.open(path) as im:  # maybe truncated: decode at 1/8 scale to find out
                    im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
                    im.load()
    except UNREADABLE as err:
        return unreadable_reason(err)
    return None


def _ends_with_jpeg_eoi(path: Path) -> bool:
    """Whether the file's last bytes (trailing zero padding aside) are a JPEG end-of-image marker."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 64))
        return f.read().rstrip(b"\x00").endswith(b"\xff\xd9")


def unreadable_reason(err: BaseException) -> str:
    """``TypeName: message``, as lossnet lists unreadable files."""
    return f"{type(err).__name__}: {err}"
