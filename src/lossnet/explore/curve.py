"""Loss curves drawn with Pillow: one line per group of terms, on a log scale."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from lossnet.terms.registry import is_style_key

_COLOURS = {"total": (0, 0, 0), "content": (31, 119, 180), "style": (214, 39, 40), "tv": (44, 160, 44)}


def group_terms(row: dict[str, float]) -> dict[str, float]:
    """Sum the terms of one step into ``content``, ``style``, ``tv`` and ``total``.

    A term counts as style when its family compares with the style image (Gram, MRF, sliced
    Wasserstein, ...: :func:`lossnet.terms.registry.style_families`), as content otherwise.

    >>> group_terms({"feature.relu2_2": 1.0, "style.relu1_2": 2.0, "mean_std.relu2_2": 3.0, "total": 6.0, "step": 1})
    {'total': 6.0, 'content': 1.0, 'style': 5.0}
    """
    out = {"total": row["total"]}
    terms = {k: v for k, v in row.items() if k not in ("total", "tv", "step", "level")}
    style = [v for k, v in terms.items() if is_style_key(k)]
    content = [v for k, v in terms.items() if not is_style_key(k)]
    for name, parts in (("content", content), ("style", style)):
        if parts:
            out[name] = sum(parts)
    if "tv" in row:
        out["tv"] = row["tv"]
    return out


def loss_curve(
    history: Sequence[dict[str, float]], title: str = "loss", size: tuple[int, int] = (640, 360)
) -> Image.Image:
    """Plot an optimisation's history (as :class:`~lossnet.explore.optimize.OptimizeResult` keeps it).

    The y axis is logarithmic (decades labelled); values <= 0 are left out; dotted vertical
    lines mark the start of each pyramid level.

    Example:
        >>> loss_curve([{"step": 1.0, "level": 0.0, "total": 10.0}, {"step": 2.0, "level": 0.0, "total": 1.0}]).size
        (640, 360)
    """
    width, height = size
    left, right, top, bottom = 64, 110, 28, 36
    im = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=12)
    draw.text((left, 6), title, fill="black", font=font)
    series: dict[str, list[tuple[float, float]]] = {}
    for row in history:
        for name, value in group_terms(row).items():
            if value > 0 and math.isfinite(value):
                series.setdefault(name, []).append((row["step"], math.log10(value)))
    x0, y0, x1, y1 = left, top, width - right, height - bottom
    draw.rectangle((x0, y0, x1, y1), outline="black")
    if not series:
        return im
    steps = [row["step"] for row in history]
    smin, smax = min(steps), max(max(steps), min(steps) + 1)
    lo = math.floor(min(v for s in series.values() for _, v in s))
    hi = math.ceil(max(v for s in series.values() for _, v in s))
    hi = max(hi, lo + 1)

    def px(step: float, logv: float) -> tuple[float, float]:
        return x0 + (step - smin) / (smax - smin) * (x1 - x0), y1 - (logv - lo) / (hi - lo) * (y1 - y0)

    for decade in range(lo, hi + 1):
        _, y = px(smin, decade)
        draw.line((x0, y, x1, y), fill=(225, 225, 225))
        draw.text((4, y - 7), f"1e{decade}", fill="black", font=font)
    for a, b in zip(history, history[1:]):
        if b.get("level") != a.get("level"):
            x, _ = px(b["step"], lo)
            for yy in range(int(y0), int(y1), 6):
                draw.line((x, yy, x, yy + 2), fill=(150, 150, 150))
    draw.text((x0, y1 + 6), f"step {int(smin)}", fill="black", font=font)
    draw.text((x1 - 50, y1 + 6), f"step {int(smax)}", fill="black", font=font)
    for i, (name, points) in enumerate(series.items()):
        colour = _COLOURS.get(name, (120, 120, 120))
        if len(points) > 1:
            draw.line([px(s, v) for s, v in points], fill=colour, width=2)
        draw.line((x1 + 10, y0 + 10 + 18 * i, x1 + 30, y0 + 10 + 18 * i), fill=colour, width=3)
        draw.text((x1 + 36, y0 + 3 + 18 * i), name, fill="black", font=font)
    return im
