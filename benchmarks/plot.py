"""Throughput vs image size, one panel per batch size, drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks.loss_throughput import Row

COLOURS = {"lossnet": (31, 119, 180), "naive": (214, 39, 40), "hooks": (44, 160, 44)}
PANEL_W, PANEL_H, MARGIN = 320, 300, 56


def throughput_plot(rows: list[Row], path: Path) -> Path:
    """Write a PNG: img/s (log scale) against image size for every implementation and dtype.

    bf16 lines are thick with round markers, fp32 lines thin with square markers.
    """
    batches = sorted({r.batch for r in rows})
    sizes = sorted({r.size for r in rows})
    values = [r.img_per_s for r in rows]
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    hi = max(hi, lo + 1)
    width, height = MARGIN + len(batches) * (PANEL_W + MARGIN), PANEL_H + 2 * MARGIN + 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((MARGIN, 8), "johnson2016_style loss, forward+backward: images/s (log) vs image size", fill="black")

    def xy(panel: int, size: int, value: float) -> tuple[float, float]:
        x0 = MARGIN + panel * (PANEL_W + MARGIN)
        fx = sizes.index(size) / max(len(sizes) - 1, 1)
        fy = (math.log10(value) - lo) / (hi - lo)
        return x0 + 20 + fx * (PANEL_W - 40), MARGIN + (1 - fy) * PANEL_H

    for p, batch in enumerate(batches):
        x0 = MARGIN + p * (PANEL_W + MARGIN)
        draw.rectangle([x0, MARGIN, x0 + PANEL_W, MARGIN + PANEL_H], outline="black")
        draw.text((x0 + 4, MARGIN - 14), f"batch {batch}", fill="black")
        for decade in range(lo, hi + 1):
            _, y = xy(p, sizes[0], 10.0**decade)
            draw.line([x0, y, x0 + PANEL_W, y], fill=(225, 225, 225))
            draw.text((x0 - 40, y - 6), f"{10.0**decade:g}", fill="black")
        for size in sizes:
            x, _ = xy(p, size, 10.0**lo)
            draw.text((x - 10, MARGIN + PANEL_H + 4), f"{size}px", fill="black")
        for impl, colour in COLOURS.items():
            for dtype, thick in (("bf16", 3), ("fp32", 1)):
                pts = [xy(p, r.size, r.img_per_s) for r in rows if (r.impl, r.dtype, r.batch) == (impl, dtype, batch)]
                if len(pts) > 1:
                    draw.line(pts, fill=colour, width=thick)
                for x, y in pts:
                    box = [x - 4, y - 4, x + 4, y + 4]
                    (draw.ellipse if dtype == "bf16" else draw.rectangle)(box, fill=colour)
    legend_y = MARGIN + PANEL_H + 24
    x = MARGIN
    present = {(r.impl, r.dtype) for r in rows}
    for impl, colour in COLOURS.items():
        for dtype, thick in (("bf16", 3), ("fp32", 1)):
            if (impl, dtype) not in present:
                continue
            draw.line([x, legend_y + 6, x + 24, legend_y + 6], fill=colour, width=thick)
            draw.text((x + 28, legend_y), f"{impl} {dtype}", fill="black")
            x += 130
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
