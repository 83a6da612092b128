"""Writing 16-bit PNGs with more than one channel, which Pillow cannot do.

Pillow holds 16 bits per sample only for single-channel images (mode ``I;16``); it reads
a 16-bit RGB(A) PNG as 8 bits (see :func:`lossnet.data.io.read_image` for how lossnet
gets the low bytes back) and cannot write one. :func:`write_png16` encodes the PNG here,
band by band, with zlib: PNG's Paeth filter on every row (the filter that suits
photographs best), so memory stays at a band of rows whatever the image size.
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

import numpy as np

#: PNG colour types by channel count: grey, grey + alpha, RGB, RGBA.
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BAND = 256  # rows filtered and compressed at a time


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth_filter(raw: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """Paeth-filter rows ``raw`` ``(n, bytes)`` given the row above them: ``(n, 1 + bytes)``, each row led by type 4."""
    up = np.concatenate([previous[None], raw[:-1]]).astype(np.int16)
    cur = raw.astype(np.int16)
    left = np.zeros_like(cur)
    left[:, bpp:] = cur[:, :-bpp]
    upleft = np.zeros_like(up)
    upleft[:, bpp:] = up[:, :-bpp]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    out = np.empty((raw.shape[0], raw.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = 4
    out[:, 1:] = ((cur - pred) & 0xFF).astype(np.uint8)
    return out


def write_png16(f: IO[bytes], array: np.ndarray, icc_profile: bytes | None = None) -> None:
    """Write ``array`` ``(H, W, C)`` uint16 (C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) to ``f`` as a 16-bit PNG.

    Args:
        f: a binary file open for writing.
        array: the samples, 0-65535.
        icc_profile: an ICC profile to embed (an ``iCCP`` chunk), or ``None``.

    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> write_png16(buf, np.array([[[0], [65535]]], dtype=np.uint16))
    >>> im = Image.open(buf); im.mode, im.size, np.asarray(im).tolist()
    ('I;16', (2, 1), [[0, 65535]])
    """
    if array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] not in _COLOUR_TYPES:
        raise ValueError(f"expected (H, W, C) uint16 with C in 1-4; got {array.shape} {array.dtype}")
    h, w, c = array.shape
    f.write(_SIGNATURE)
    f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, _COLOUR_TYPES[c], 0, 0, 0)))
    if icc_profile:
        f.write(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    z = zlib.compressobj(6)
    bpp = 2 * c
    previous = np.zeros(w * bpp, dtype=np.uint8)
    for y0 in range(0, h, _BAND):
        raw = array[y0 : y0 + _BAND].astype(">u2").reshape(-1, w * c).view(np.uint8)
        data = z.compress(_paeth_filter(raw, previous, bpp).tobytes())
        if data:
            f.write(_chunk(b"IDAT", data))
        previous = raw[-1].copy()
    f.write(_chunk(b"IDAT", z.flush()))
    f.write(_chunk(b"IEND", b""))
