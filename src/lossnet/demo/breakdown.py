"""Part 1 of the demo: what a perceptual loss sees in common degradations.

One default image is degraded several ways; for each degradation the perceptual-loss
breakdown is computed against the clean image, and a contact sheet shows where each
VGG layer's features differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from lossnet.atomic import write_text
from lossnet.backbones.weights import LoadedWeights
from lossnet.data.defaults import load_default_image
from lossnet.data.degradations import DEGRADATIONS
from lossnet.data.io import save_image
from lossnet.explore.maps import feature_difference_maps
from lossnet.viz import Cell, contact_sheet, heatmap
from lossnet.losses.perceptual import PerceptualLoss
from lossnet.metrics import psnr

#: The layers the demo looks at: the last ReLU of each VGG16 block.
DEMO_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


@dataclass
class BreakdownResult:
    """What the breakdown computed and wrote."""

    weights: str  # the id of the loaded weights
    rows: dict[str, dict[str, float]] = field(default_factory=dict)  # degradation -> term -> value
    psnr: dict[str, float] = field(default_factory=dict)  # degradation -> PSNR in dB
    sheet: Path | None = None
    table: Path | None = None


def run_breakdown(
    out_dir: Path,
    weights: LoadedWeights,
    image: str = "astronaut",
    size: int = 256,
    degradations: tuple[str, ...] = tuple(DEGRADATIONS),
) -> BreakdownResult:
    """Write ``feature_differences.png`` and ``breakdown.csv`` into ``out_dir``.

    Args:
        out_dir: the output folder.
        weights: the VGG16 weights of the loss network.
        image: one of ``lossnet.data.DEFAULT_IMAGES``.
        size: the image's longer side in pixels.
        degradations: names from ``lossnet.data.DEGRADATIONS``.
    """
    layers = {name: 1.0 for name in DEMO_LAYERS}
    loss = PerceptualLoss("vgg16", weights, feature_layers=layers, style_layers=layers, pixel_weight=1.0)
    clean = load_default_image(image, size=size)
    h, w = (s - s % 32 for s in clean.shape[-2:])  # whole pooling grids
    clean = clean[..., :h, :w]

    result = BreakdownResult(weights=loss.extractor.weights_id if loss.extractor else "none")
    rows: list[list[Cell]] = [[Cell(clean, f"clean {image}")]]
    with torch.no_grad():
        maps = {}
        for name in degradations:
            degraded = DEGRADATIONS[name][1](clean)
            terms = loss.terms(degraded, clean)
            result.rows[name] = {k: float(v) for k, v in terms.items()}
            result.psnr[name] = float(psnr(degraded, clean))
            maps[name] = (degraded, feature_difference_maps(loss.extractor, degraded, clean))
    # One colour scale per layer across degradations, so rows can be compared.
    vmax = {layer: max(float(m[layer].max()) for _, m in maps.values()) for layer in DEMO_LAYERS}
    for name, (degraded, layer_maps) in maps.items():
        row = [Cell(degraded, f"{DEGRADATIONS[name][0]}, {result.psnr[name]:.1f} dB")]
        for layer in DEMO_LAYERS:
            value = result.rows[name][f"feature.{layer}"]
            row.append(Cell(heatmap(layer_maps[layer], (h, w), vmax[layer]), f"{layer}  {value:.3g}"))
        rows.append(row)
    title = f"Squared VGG16 feature difference per layer (weights: {result.weights}); colour scale shared per column"
    result.sheet = save_image(contact_sheet(rows, title=title), out_dir / "feature_differences.png")
    result.table = _write_csv(result, out_dir / "breakdown.csv")
    return result


def _write_csv(result: BreakdownResult, path: Path) -> Path:
    terms = list(next(iter(result.rows.values())))
    lines = [",".join(["degradation", "psnr_db", *terms])]
    for name, row in result.rows.items():
        lines.append(",".join([name, f"{result.psnr[name]:.3f}", *(f"{row[t]:.6g}" for t in terms)]))
    return write_text(path, "\n".join(lines) + "\n")
