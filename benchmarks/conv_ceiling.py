"""Benchmark h: what one 3x3 convolution reaches on this CPU, the ceiling under the step roofline (benchmark g).

Benchmark g sets a whole training step against the best square matmul of its dtype. Here single convolutions of
the shapes the trunk and the networks run are timed alone, forward and forward + backward (gradients of the input
and the weight), contiguous and channels-last, in fp32 and bf16. A step cannot run its convolutions faster than
these, so a step fraction far under them is time spent outside the convolutions; a convolution over the matmul
peak says the peak is a matmul's, not the machine's.

Run as ``python -m benchmarks.conv_ceiling [--quick]`` (about 10 s on 2 cores); it joins ``make bench``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmarks.common import bench_dtypes, machine_line, matmul_peak, table, time_calls

#: ``(batch, channels in, channels out, side)``: VGG's and the networks' 3x3 layers at test and recipe sizes.
SHAPES = ((4, 64, 64, 64), (4, 128, 128, 32), (4, 256, 256, 16), (8, 64, 64, 128), (4, 3, 64, 64), (4, 512, 512, 8))
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def rates(shape: tuple[int, int, int, int], dtype: torch.dtype) -> tuple[float, float, float]:
    """GFLOP/s of ``(forward, forward + backward, forward channels-last)`` of one padded 3x3 convolution."""
    batch, c_in, c_out, side = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c_in, side, side, generator=gen).to(dtype).requires_grad_(True)
    w = torch.randn(c_out, c_in, 3, 3, generator=gen).to(dtype).requires_grad_(True)
    flop = 2 * batch * c_out * c_in * 9 * side * side
    grad = torch.randn(batch, c_out, side, side, generator=gen).to(dtype)

    def forward() -> object:
        with torch.no_grad():
            return F.conv2d(x, w, padding=1)

    def both() -> object:  # the backward computes both gradients: twice the forward's FLOPs
        return torch.autograd.grad(F.conv2d(x, w, padding=1), (x, w), grad)

    x_last = x.detach().contiguous(memory_format=torch.channels_last)

    def forward_last() -> object:
        with torch.no_grad():
            return F.conv2d(x_last, w, padding=1)

    best = [min(time_calls(fn, warmup=1, repeats=3, budget_s=0.3).seconds) for fn in (forward, both, forward_last)]
    return flop / best[0] / 1e9, 3 * flop / best[1] / 1e9, flop / best[2] / 1e9


@dataclass
class Row:
    dtype: str
    shape: tuple[int, int, int, int]
    forward: float
    both: float
    forward_last: float
    peak: float
    peak_n: int


def run(quick: bool = False, log: Callable[[str], None] = print) -> list[Row]:
    """Every shape (the first two if ``quick``) in each dtype ``make bench`` runs, with that dtype's matmul peak."""
    dtypes, left_out = bench_dtypes()
    if left_out:
        log(f"h. {left_out}")
    rows = []
    for name in dtypes:
        peak, n = matmul_peak(DTYPES[name], sizes=(1024,) if quick else (1024, 2048), budget_s=0.5)
        for shape in SHAPES[:2] if quick else SHAPES:
            row = Row(name, shape, *rates(shape, DTYPES[name]), peak / 1e9, n)
            log(f"h. {name} {shape}: forward {row.forward:.0f}, forward + backward {row.both:.0f} GFLOP/s")
            rows.append(row)
    return rows


def report(rows: list[Row]) -> str:
    """A Markdown table: each convolution's GFLOP/s beside its dtype's matmul peak."""
    header = ["dtype", "batch, channels, side", "forward", "forward + backward", "forward, channels-last",
              "matmul peak"]  # fmt: skip
    body = [
        [r.dtype, f"{r.shape[0]}, {r.shape[1]} -> {r.shape[2]}, {r.shape[3]} px", f"{r.forward:.0f}",
         f"{r.both:.0f}", f"{r.forward_last:.0f}", f"{r.peak:.0f} (n={r.peak_n})"]  # fmt: skip
        for r in rows
    ]
    return "\n".join(["### h. one 3x3 convolution (GFLOP/s)", "", table(header, body), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two shapes")
    args = parser.parse_args(argv)
    print(machine_line(torch.device("cpu")))
    print(report(run(args.quick, log=lambda _: None)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
