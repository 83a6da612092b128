"""Benchmark f: LPIPS as a training loss, and feature + Gram + LPIPS on one trunk pass.

Every figure is one forward and backward (gradients with respect to the prediction; the trunk is
frozen; the target under ``no_grad``) at ``size`` px, batch ``batch`` (256 px, batch 4 in the full
run), on VGG16 with random weights registered under torchvision's ImageNet id, so that the
published-metric check lets LPIPS through: the time of a convolution does not depend on its values.

Two comparisons, each measured in one process in interleaved rounds (one call of every
implementation per round, the median over rounds), so their ratios are fair:

1. LPIPS-VGG as a loss:
   - ``lossnet``: :class:`lossnet.losses.LPIPSLoss`;
   - ``reference``: an LPIPS-style loss written here independently of lossnet (under the caller's
     ``torch.autocast`` in bf16, as such code would run): ImageNet
     normalisation, a VGG16 ``features`` stack run to relu5_3 once per image, each tapped layer
     divided by its channel norm plus 1e-10, squared difference, a 1x1 convolution head per
     layer, spatial mean, summed over layers;
   - ``feature``: lossnet's feature loss (MSE) on the same five layers: the time LPIPS is
     compared with (target: LPIPS within 10% of it).
2. Feature (relu2_2) + Gram (relu1_2, relu2_2, relu3_3, relu4_3) + LPIPS:
   - ``shared``: one :class:`~lossnet.PerceptualLoss` with all of them: one pass over the
     prediction and one over the target;
   - ``separate``: a feature loss, a style loss and an LPIPS loss, each with its own passes, as
     three libraries would run them (target: shared at least 1.7x the separate passes' rate).

Run as ``python -m benchmarks.shared_pass [--quick]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from benchmarks.common import Timing, bench_dtypes, machine_line, table, time_calls
from lossnet.backbones.calibration import lpips_calibration
from lossnet.backbones.preprocessing import TORCH
from lossnet.backbones.vgg import VGG, layer_index
from lossnet.backbones.weights import LoadedWeights
from lossnet.losses import LPIPSLoss, PerceptualLoss
from lossnet.runtime import resolve

FULL = {"size": 256, "batch": 4, "warmup": 1, "repeats": 5}
QUICK = {"size": 64, "batch": 2, "warmup": 1, "repeats": 2}
#: Issue 12's targets: shared pass over separate passes; LPIPS over the feature loss on its layers.
SHARED_TARGET, LPIPS_OVERHEAD = 1.7, 1.10
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
STYLE_LAYERS = {"relu1_2": 5.0, "relu2_2": 5.0, "relu3_3": 5.0, "relu4_3": 5.0}


@dataclass
class Row:
    comparison: str  # "lpips" or "shared"
    impl: str
    dtype: str  # "fp32" or "bf16"
    size: int
    batch: int
    timing: Timing

    @property
    def calls_per_s(self) -> float:
        return 1.0 / self.timing.median


class ReferenceLPIPS(nn.Module):
    """An LPIPS-style loss written plainly, for timing against (see the module docstring)."""

    def __init__(self, features: nn.Sequential, heads: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.taps = {layer_index("vgg16", name): name for name in heads}
        self.features = features[: max(self.taps) + 1]
        self.heads = nn.ModuleDict()
        for name, w in heads.items():
            conv = nn.Conv2d(w.numel(), 1, 1, bias=False)
            conv.weight.data.copy_(w.view(1, -1, 1, 1))
            self.heads[name] = conv
        self.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def taps_of(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, out = (x - self.mean) / self.std, {}
        for i, module in enumerate(self.features):
            h = module(h)
            if i in self.taps:
                out[self.taps[i]] = h / (h.norm(dim=1, keepdim=True) + 1e-10)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.taps_of(x)
        with torch.no_grad():
            fy = self.taps_of(y)
        return sum(self.heads[n]((fx[n] - fy[n]) ** 2).mean() for n in fx)  # type: ignore[return-value]


def _weights() -> LoadedWeights:
    torch.manual_seed(0)
    sd = dict(VGG("vgg16").state_dict())
    return LoadedWeights("imagenet:vgg16-397923af", "random VGG16 under the ImageNet id (timing only)", TORCH, sd)


def _step(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], pred: torch.Tensor, y: torch.Tensor) -> None:
    p = pred.detach().requires_grad_(True)
    loss(p, y).backward()


def measure(grid: dict[str, int], dtype: str, weights: LoadedWeights) -> list[Row]:
    size, batch = grid["size"], grid["batch"]
    g = torch.Generator().manual_seed(1)
    pred, y = torch.rand(batch, 3, size, size, generator=g), torch.rand(batch, 3, size, size, generator=g)
    compute = "bf16" if dtype == "bf16" else None
    lpips = LPIPSLoss(weights=weights, compute_dtype=compute)
    feature = PerceptualLoss("vgg16", weights, feature_layers=list(LPIPS_LAYERS), compute_dtype=compute)
    shared = PerceptualLoss(
        "vgg16", weights, feature_layers=["relu2_2"], style_layers=STYLE_LAYERS, lpips_weight=1.0, compute_dtype=compute
    )
    parts = [
        PerceptualLoss("vgg16", weights, feature_layers=["relu2_2"], compute_dtype=compute),
        PerceptualLoss("vgg16", weights, style_layers=STYLE_LAYERS, compute_dtype=compute),
        LPIPSLoss(weights=weights, compute_dtype=compute),
    ]

    def separate(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return sum(part(p, t) for part in parts)  # type: ignore[return-value]

    jobs: list[tuple[str, str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = [
        ("lpips", "lossnet", lpips),
        ("lpips", "feature", feature),
        ("shared", "shared", shared),
        ("shared", "separate", separate),
    ]
    features = VGG("vgg16").features
    features.load_state_dict({k.removeprefix("features."): v for k, v in weights.state_dict.items()})  # type: ignore[union-attr]
    reference = ReferenceLPIPS(features.eval(), lpips_calibration("vgg16").heads)
    if dtype == "bf16":  # the plain reference under the caller's autocast, as such code would run it
        plain = reference

        def reference(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # type: ignore[misc]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return plain(p, t).float()

    jobs.insert(1, ("lpips", "reference", reference))
    # Interleaved rounds (one call of each job per round), so that a slow minute of a shared machine
    # falls on every job alike and the ratios stay fair.
    timings = {impl: Timing() for _, impl, _ in jobs}
    for _ in range(grid["warmup"]):
        for _, _, fn in jobs:
            _step(fn, pred, y)
    for _ in range(grid["repeats"]):
        for _, impl, fn in jobs:
            timings[impl].seconds += time_calls(lambda fn=fn: _step(fn, pred, y), warmup=0, repeats=1).seconds
    return [Row(comparison, impl, dtype, size, batch, timings[impl]) for comparison, impl, _ in jobs]


def run(quick: bool = False, log: Callable[[str], None] = print, all_dtypes: bool = False) -> list[Row]:
    """Both comparisons in the precision ``auto`` picks here (``make bench``: it keeps the suite within its
    15 minutes), or in fp32 and, where this CPU runs it natively, bf16 (``all_dtypes``)."""
    grid = QUICK if quick else FULL
    if all_dtypes:
        dtypes, left_out = bench_dtypes()
        if left_out:
            log(f"f. {left_out}")
    else:
        dtypes = [resolve("auto", "cpu").precision]
    weights = _weights()
    rows: list[Row] = []
    for dtype in dtypes:
        new = measure(grid, dtype, weights)
        for r in new:
            log(f"f. {r.comparison:6s} {r.impl:9s} {r.dtype}: {r.timing.median:.3f} s per forward+backward")
        rows += new
    return rows


def _find(rows: list[Row], impl: str, dtype: str) -> Row | None:
    return next((r for r in rows if (r.impl, r.dtype) == (impl, dtype)), None)


def verdict_lines(rows: list[Row]) -> list[str]:
    lines = []
    for dtype in dict.fromkeys(r.dtype for r in rows):
        lpips, feature = _find(rows, "lossnet", dtype), _find(rows, "feature", dtype)
        shared, separate = _find(rows, "shared", dtype), _find(rows, "separate", dtype)
        reference = _find(rows, "reference", dtype)
        if not (lpips and feature and shared and separate):
            continue  # a partial run (one of the four was not measured in this dtype): no ratio to state
        over = lpips.timing.median / feature.timing.median
        ok = "**met**" if over <= LPIPS_OVERHEAD else f"**missed** by {over - LPIPS_OVERHEAD:.0%} of the feature loss's time"
        lines.append(
            f"- {dtype}: LPIPS loss {over:.2f}x the feature loss's time on the same five layers "
            f"(target <= {LPIPS_OVERHEAD:.2f}x): {ok}"
            + (f"; {reference.timing.median / lpips.timing.median:.2f}x the plain reference's rate" if reference else "")
        )
        ratio = shared.calls_per_s / separate.calls_per_s
        ok = "**met**" if ratio >= SHARED_TARGET else f"**missed** ({ratio / SHARED_TARGET:.0%} of the target)"
        lines.append(
            f"- {dtype}: feature + Gram + LPIPS on one pass {ratio:.2f}x the separate passes' rate "
            f"(target >= {SHARED_TARGET}x): {ok}"
        )
    return lines


def report(rows: list[Row]) -> str:
    """A Markdown table of the timings and the target lines."""
    header = ["comparison", "implementation", "dtype", "size", "batch", "s per fwd+bwd (median)", "min-max", "calls/s"]
    body = [
        [
            r.comparison,
            r.impl,
            r.dtype,
            str(r.size),
            str(r.batch),
            f"{r.timing.median:.3f}",
            f"{r.timing.spread[0]:.3f}-{r.timing.spread[1]:.3f}",
            f"{r.calls_per_s:.2f}",
        ]
        for r in rows
    ]
    return "\n".join([table(header, body), "", *verdict_lines(rows)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['size']} px, batch {QUICK['batch']}")
    parser.add_argument("--all-dtypes", action="store_true", help="fp32 and, where native, bf16 (default: what auto picks)")
    args = parser.parse_args(argv)
    print(f"machine: {machine_line(torch.device('cpu'))}", flush=True)
    print(report(run(args.quick, all_dtypes=args.all_dtypes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
