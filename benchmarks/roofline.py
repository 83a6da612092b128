"""Benchmark b: the achieved GFLOP/s of the loss against the machine's matmul peak (the roofline fraction).

The FLOPs are counted from the convolution shapes of lossnet's network (VGG16 cut after
relu4_3): a forward pass on the prediction, one on the target, and the input-gradient pass
of the prediction, which costs what its forward costs (no weight gradients are taken).
Grams, pooling, ReLUs and the distances are not counted, so the fraction is a lower bound
of how busy the arithmetic units are. The peak is the best square matmul of the same dtype,
measured in the same process just before.

A ``torch.profiler`` table of the target configuration says where the rest of the time goes.

Run as ``python -m benchmarks.roofline [--quick]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch.profiler import ProfilerActivity, profile

from benchmarks import loss_throughput as lt
from benchmarks.common import matmul_peak, time_calls
from lossnet.runtime import resolve


@dataclass
class Roofline:
    dtype: str
    size: int
    batch: int
    gflop: float
    seconds: float
    peak_gflops: float
    peak_n: int

    @property
    def gflops(self) -> float:
        return self.gflop / self.seconds

    @property
    def fraction(self) -> float:
        return self.gflops / self.peak_gflops


def peaks(quick: bool = False, dtypes: Iterable[str] = tuple(lt.DTYPES)) -> dict[str, tuple[float, int]]:
    """``{dtype: (GFLOP/s, n)}``: the best square matmul of each of ``dtypes``."""
    sizes = (512, 1024) if quick else (1024, 2048, 4096)
    out = {}
    for name in dtypes:
        dtype = lt.DTYPES[name]
        flops, n = matmul_peak(dtype, sizes=sizes, budget_s=0.2 if quick else 2.0)
        out[name] = (flops / 1e9, n)
    return out


def from_rows(rows: list[lt.Row], matmul: dict[str, tuple[float, int]]) -> list[Roofline]:
    """The roofline of every lossnet row of benchmark a."""
    return [
        Roofline(r.dtype, r.size, r.batch, r.conv_gflop, r.timing.median, *matmul[r.dtype])
        for r in rows
        if r.impl == "lossnet"
    ]


def profile_table(dtype: str, size: int, batch: int, rows: int = 12) -> str:
    """The top operators by self CPU time over two lossnet steps, as ``torch.profiler`` prints them."""
    step = lt.make_step(lt.build("lossnet", dtype), batch, size)
    step()
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=44)


def run(
    quick: bool = False, rows: list[lt.Row] | None = None, log: Callable[[str], None] = print
) -> tuple[list[Roofline], dict[str, tuple[float, int]], str]:
    """Measure the matmul peaks, the loss (unless benchmark a's rows are given) and a profile.

    Each lossnet row is set against the matmul peak of the dtype it ran in; the profile is of the
    precision ``auto`` picks on this machine.
    """
    dtypes = sorted({r.dtype for r in rows}, key=list(lt.DTYPES).index) if rows else list(lt.DTYPES)
    matmul = peaks(quick, dtypes)
    for name, (gflops, n) in matmul.items():
        log(f"b. matmul peak {name}: {gflops:.0f} GFLOP/s (n={n})")
    size, batch = (128, 2) if quick else lt.TARGET_CONFIG
    if rows is None:
        rows = []
        for dtype in dtypes:
            step = lt.make_step(lt.build("lossnet", dtype), batch, size)
            timing = time_calls(step, warmup=1, repeats=2 if quick else 3)
            rows.append(lt.Row("lossnet", dtype, size, batch, timing, 0, lt.step_conv_flops(size, batch) / 1e9))
    result = from_rows(rows, matmul)
    for r in result:
        log(
            f"b. lossnet {r.dtype} {r.size}px batch {r.batch}: {r.gflop:.0f} GFLOP in {r.seconds * 1e3:.0f} ms = "
            f"{r.gflops:.0f} GFLOP/s, {100 * r.fraction:.0f}% of the {r.dtype} matmul peak"
        )
    auto = resolve("auto", "cpu").precision
    table = profile_table(auto, size, batch)
    log(f"b. profile of lossnet {auto} {size}px batch {batch}, two steps:\n{table}")
    return result, matmul, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    args = parser.parse_args(argv)
    run(args.quick)


if __name__ == "__main__":
    main()
