"""Images for people to look at: tensor to PIL, heat maps, and labelled contact sheets (grids with captions).

Training, the demo and the explore commands all draw their sheets with these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from lossnet.errors import InputError
from lossnet.validation import check_tensor

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


@dataclass
class Cell:
    """One tile of a contact sheet: an image ``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] and its caption."""

    image: torch.Tensor
    label: str = ""


def heatmap(values: torch.Tensor, size: tuple[int, int] | None = None, vmax: float | None = None) -> torch.Tensor:
    """Colour-map a ``(1, 1, h, w)`` or ``(h, w)`` array of non-negative values to ``(1, 3, H, W)``.

    Values are scaled to [0, 1] by ``vmax`` (default: their own maximum) and drawn with a
    black-red-yellow-white ramp; ``size`` resizes with nearest neighbours so the layer's
    grid stays visible.
    """
    v = values.detach().float().reshape(1, 1, *values.shape[-2:])
    top = float(v.max()) if vmax is None else vmax
    v = (v / top).clamp(0, 1) if top > 0 else torch.zeros_like(v)
    if size is not None:
        v = F.interpolate(v, size=size, mode="nearest")
    # "hot" ramp: red rises first, then green, then blue.
    rgb = torch.cat([(3 * v).clamp(0, 1), (3 * v - 1).clamp(0, 1), (3 * v - 2).clamp(0, 1)], dim=1)
    return rgb


def contact_sheet(rows: Sequence[Sequence[Cell]], cell_size: int = 160, title: str = "") -> Image.Image:
    """Lay out rows of captioned images on a white sheet.

    Every image is fitted into a ``cell_size`` square (aspect kept, never enlarged) and centred in its column;
    captions go under it, wrapped at word boundaries to the cell's width so that neighbouring captions never
    overlap (a caption may also have several lines, separated by ``"\\n"``). Each row is as tall as its own
    tallest image and longest caption: landscape images and one-line captions leave no empty band, and one long
    caption does not space out every row.
    """
    font = ImageFont.load_default(size=12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [[_wrap(cell.label, font, cell_size, measure) for cell in row] for row in rows]
    images = [[_fit(cell.image, cell_size) for cell in row] for row in rows]
    pad = 6
    heights = [max((im.height for im in row), default=0) for row in images]
    captions = [18 + 14 * max((label.count("\n") for label in row), default=0) for row in labels]
    top = 24 if title else 0
    ncols = max(len(r) for r in rows)
    width = ncols * (cell_size + pad) + pad
    height = top + sum(h + c + pad for h, c in zip(heights, captions, strict=True)) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill="black", font=ImageFont.load_default(size=14))
    y = top + pad
    for r, row in enumerate(images):
        for c, im in enumerate(row):
            x = pad + c * (cell_size + pad)
            sheet.paste(im, (x + (cell_size - im.width) // 2, y + (heights[r] - im.height) // 2))
            draw.multiline_text((x, y + heights[r] + 3), labels[r][c], fill="black", font=font, spacing=2)
        y += heights[r] + captions[r] + pad
    return sheet


def _fit(image: torch.Tensor, size: int) -> Image.Image:
    """``image`` as a PIL image no larger than ``size`` x ``size`` (aspect kept; a smaller one stays as it is)."""
    im = to_pil(image)
    im.thumbnail((size, size), Image.Resampling.BICUBIC)
    return im


def _wrap(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int, draw: ImageDraw.ImageDraw) -> str:
    """Break ``text`` into lines no wider than ``width`` pixels: at spaces, or inside a word longer than a line."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                out.append(line)
            while draw.textlength(word, font=font) > width and len(word) > 1:  # a word wider than the cell
                fits = (i for i in range(1, len(word)) if draw.textlength(word[:i], font=font) <= width)
                cut = max(fits, default=1)
                out.append(word[:cut])
                word = word[cut:]
            line = word
        out.append(line)
    return "\n".join(out)


def overlay(
    image: torch.Tensor, values: torch.Tensor, size: tuple[int, int] | None = None, alpha: float = 0.7
) -> torch.Tensor:
    """Draw a map over an image: the :func:`heatmap` of ``values`` blended onto the image in grey.

    ``out = (1 - alpha * v) * grey(image) + alpha * v * heat(v)`` with ``v`` the map scaled to
    [0, 1] by its maximum, so weak responses leave the image visible and strong ones cover it.

    Args:
        image: ``(1, 3, H, W)`` in [0, 1].
        values: ``(1, 1, h, w)`` non-negative; resized (nearest) to the image.
        size: the output size; default the image's.
        alpha: the strength of the colour where the map is at its maximum.

    Returns:
        ``(1, 3, H, W)`` in [0, 1].

    >>> out = overlay(torch.ones(1, 3, 4, 4), torch.zeros(1, 1, 2, 2))
    >>> out.shape, float(out.min())  # a zero map leaves the (grey) image
    (torch.Size([1, 3, 4, 4]), 1.0)
    """
    size = size or (image.shape[-2], image.shape[-1])
    base = F.interpolate(image.detach().float(), size=size, mode="bilinear", align_corners=False)
    grey = (0.299 * base[:, :1] + 0.587 * base[:, 1:2] + 0.114 * base[:, 2:3]).expand(-1, 3, -1, -1)
    heat = heatmap(values, size)
    v = values.detach().float().reshape(1, 1, *values.shape[-2:])
    top = float(v.max())
    v = F.interpolate((v / top).clamp(0, 1) if top > 0 else torch.zeros_like(v), size=size, mode="nearest")
    return ((1 - alpha * v) * grey + alpha * v * heat).clamp(0, 1)
