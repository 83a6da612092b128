"""``make bench-gpu``: the loss benchmark on a CUDA GPU, at sizes that suit one.

The ``johnson2016_style`` loss (VGG16; feature relu2_2; style relu1_2..relu4_3; TV), one training step =
``loss(pred, target).backward()``, at 256, 512 and 1024 px and batch 8 and 32, in fp32, bf16 (where the GPU
runs it natively) and fp16, against the naive fp32 reference of benchmark a (a full, unfrozen VGG16 on both
images with autograd). Random weights: a convolution's time does not depend on its values. A configuration
that does not fit in the GPU's memory is reported as such, not left out silently.

It needs a CUDA GPU and says so otherwise. Results are appended to BENCHMARKS.md as a dated section.

    python -m benchmarks.gpu [--quick] [--no-record]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import append_results, machine_line, mib, now, peak_memory_bytes, table, time_calls
from benchmarks.loss_throughput import NaiveLoss
from lossnet import perceptual_loss_from_preset
from lossnet.runtime import resolve

SIZES, BATCHES = (256, 512, 1024), (8, 32)
QUICK = {"sizes": (128,), "batches": (2,)}


def _naive(device: torch.device) -> NaiveLoss:
    loss = NaiveLoss()
    loss.slices = [s.to(device) for s in loss.slices]
    loss.mean, loss.std = loss.mean.to(device), loss.std.to(device)
    return loss


def _dtypes(device: torch.device) -> list[str]:
    out = ["fp32", "fp16"]
    if resolve("bf16", device).precision == "bf16" and torch.cuda.is_bf16_supported():
        out.insert(1, "bf16")
    return out


def measure(impl: str, dtype: str, size: int, batch: int, device: torch.device) -> tuple[float, int] | str:
    """(median seconds per step, peak bytes), or why it could not run."""
    torch.manual_seed(0)
    if impl == "lossnet":
        loss = perceptual_loss_from_preset("johnson2016_style", weights=None, compute_dtype=dtype).to(device)
    else:
        loss = _naive(device)
    g = torch.Generator().manual_seed(0)
    base = torch.rand(batch, 3, size, size, generator=g).to(device)
    target = torch.rand(batch, 3, size, size, generator=g).to(device)

    def step() -> None:
        pred = base.clone().requires_grad_(True)
        loss(pred, target).backward()

    try:
        peak, _ = peak_memory_bytes(step, device)
        timing = time_calls(step, warmup=1, repeats=5, budget_s=2.0, device=device)
    except torch.cuda.OutOfMemoryError:
        return "out of memory"
    finally:
        torch.cuda.empty_cache()
    return timing.median, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small configuration (a smoke run)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench-gpu needs a CUDA GPU, and torch sees none here (torch.cuda.is_available() is False). "
              "The CPU benchmarks are `make bench`.")  # fmt: skip
        return 2
    device = torch.device("cuda")
    started = time.perf_counter()
    machine = machine_line(device)
    print(f"machine: {machine}", flush=True)
    sizes, batches = (QUICK["sizes"], QUICK["batches"]) if args.quick else (SIZES, BATCHES)
    rows = []
    for size in sizes:
        for batch in batches:
            naive = measure("naive", "fp32", size, batch, device)
            for dtype in _dtypes(device):
                got = measure("lossnet", dtype, size, batch, device)
                cells = [str(size), str(batch), dtype]
                if isinstance(got, str) or isinstance(naive, str):
                    cells += [got if isinstance(got, str) else f"{batch / got[0]:.1f}",
                              naive if isinstance(naive, str) else f"{batch / naive[0]:.1f}", "-", "-"]  # fmt: skip
                else:
                    cells += [f"{batch / got[0]:.1f}", f"{batch / naive[0]:.1f}", f"{naive[0] / got[0]:.2f}x",
                              f"{mib(got[1])} / {mib(naive[1])}"]  # fmt: skip
                rows.append(cells)
                print(" | ".join(cells), flush=True)
    header = ["size", "batch", "dtype", "lossnet img/s", "naive fp32 img/s", "lossnet/naive", "peak MiB lossnet / naive"]
    minutes = (time.perf_counter() - started) / 60
    section = (
        f"\n## {now()}: `make bench-gpu`\n\n- machine: {machine}\n- wall time: {minutes:.1f} min\n\n"
        + table(header, rows)
        + "\n"
    )
    print(section)
    if not args.no_record:
        append_results(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
