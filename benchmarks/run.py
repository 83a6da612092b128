"""Run every benchmark, print the figures, append a dated section to BENCHMARKS.md, draw the plot.

    python -m benchmarks.run              # make bench: 13 min on 2 cores before g and i (up to 4 min each)
    python -m benchmarks.run --full-grid  # make bench-full: adds 512 px batch 8 to benchmark a
    python -m benchmarks.run --quick      # small sizes, few repeats: a smoke run
    python -m benchmarks.run --quick --no-record   # print only

Benchmarks a (``loss_throughput``) and b (``roofline``) always run. Every other module of this
folder that defines ``run(quick, log) -> rows`` and ``report(rows) -> str`` (Markdown) is a
later benchmark (c, d, e): it runs after them, in name order, and its report joins the section.
``--only a,b,train_step`` picks some.

Each benchmark measures its own figures and the ratios between them in this one process,
so the ratios are fair even when the absolute numbers move with the machine's load (the
load average is recorded before and after). ``BENCHMARKS.md`` is rewritten in one atomic
rename: an interrupted run leaves the previous file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import loss_throughput as lt
from benchmarks import roofline as rf
from benchmarks.common import ROOT, append_results, bench_dtypes, machine_line, mib, now, table
from benchmarks.plot import throughput_plot
from lossnet.runtime import resolve

#: The targets of issue 10 at 256 px, batch 4, per dtype of lossnet's run: throughput over the naive fp32
#: reference, fraction of the same dtype's matmul peak, peak memory over the naive reference's.
#: fp32 is the AVX2-class target (no native bf16); bf16 the AVX-512-BF16 one.
TARGETS: dict[str, tuple[float, float, float]] = {"fp32": (2.0, 0.85, 0.6), "bf16": (5.0, 0.85, 0.6)}


def _find(rows: list[lt.Row], impl: str, dtype: str, size: int, batch: int) -> lt.Row:
    return next(r for r in rows if (r.impl, r.dtype, r.size, r.batch) == (impl, dtype, size, batch))


def throughput_table(rows: list[lt.Row]) -> str:
    """One line per (size, batch, dtype); the naive reference is float32 in every line."""
    header = ["size", "batch", "dtype", "lossnet img/s", "hooks img/s", "naive fp32 img/s", "lossnet/naive"]
    header += ["lossnet/hooks", "lossnet MiB", "hooks MiB", "naive MiB", "mem lossnet/naive"]
    out = []
    for r in rows:
        if r.impl != "lossnet":
            continue
        n, h = _find(rows, "naive", "fp32", r.size, r.batch), _find(rows, "hooks", r.dtype, r.size, r.batch)
        out.append(
            [
                str(r.size),
                str(r.batch),
                r.dtype,
                f"{r.img_per_s:.2f}",
                f"{h.img_per_s:.2f}",
                f"{n.img_per_s:.2f}",
                f"{r.img_per_s / n.img_per_s:.2f}x",
                f"{r.img_per_s / h.img_per_s:.2f}x",
                mib(r.peak_bytes),
                mib(h.peak_bytes),
                mib(n.peak_bytes),
                f"{r.peak_bytes / n.peak_bytes:.2f}",
            ]
        )
    return table(header, out)


def roofline_table(result: list[rf.Roofline]) -> str:
    rows = [
        [
            str(r.size),
            str(r.batch),
            r.dtype,
            f"{r.gflop:.0f}",
            f"{r.seconds * 1e3:.0f}",
            f"{r.gflops:.0f}",
            f"{r.peak_gflops:.0f}",
            f"{100 * r.fraction:.0f}%",
        ]
        for r in result
    ]
    return table(["size", "batch", "dtype", "conv GFLOP/step", "ms/step", "GFLOP/s", "matmul peak", "fraction"], rows)


def verdicts(rows: list[lt.Row], roof: list[rf.Roofline], size: int, batch: int) -> list[str]:
    """The three targets at (size, batch) for each dtype lossnet ran in: measured value, target, met or by how much
    it is missed. The dtype that ``auto`` picks on this machine is marked."""
    naive = _find(rows, "naive", "fp32", size, batch)
    auto = resolve("auto", "cpu").precision

    def verdict(ok: bool, miss: str) -> str:
        return "**met**" if ok else f"**missed** ({miss})"

    out = []
    for dtype in [d for d in TARGETS if any(r.dtype == d and r.impl == "lossnet" for r in rows)]:
        speed_target, roof_target, mem_target = TARGETS[dtype]
        fast = _find(rows, "lossnet", dtype, size, batch)
        r = next(x for x in roof if (x.dtype, x.size, x.batch) == (dtype, size, batch))
        speedup = fast.img_per_s / naive.img_per_s
        memory = fast.peak_bytes / naive.peak_bytes
        mark = " (what auto picks here)" if dtype == auto else ""
        out += [
            f"- throughput, lossnet {dtype}{mark} vs naive fp32: {speedup:.2f}x (target >= {speed_target:.0f}x): "
            + verdict(speedup >= speed_target, f"{speedup / speed_target:.0%} of the target"),
            f"- roofline, lossnet {dtype}: {100 * r.fraction:.0f}% of the {dtype} matmul peak (target >= "
            f"{100 * roof_target:.0f}%): "
            + verdict(r.fraction >= roof_target, f"short by {100 * (roof_target - r.fraction):.0f} points"),
            f"- peak memory, lossnet {dtype} / naive fp32: {memory:.2f} (target <= {mem_target}): "
            + verdict(memory <= mem_target, f"over by {memory - mem_target:.2f}"),
        ]
    return out


_NOT_BENCHMARKS = {"__init__", "__main__", "common", "plot", "run", "loss_throughput", "roofline", "fp32_tuning", "gpu"}


def later_benchmarks() -> list[str]:
    """Names of the other benchmark modules present in this folder (see the module docstring)."""
    folder = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if m.name not in _NOT_BENCHMARKS)


def run_later(names: list[str], quick: bool, log: Callable[[str], None], minutes: dict[str, float]) -> list[str]:
    """Run each later benchmark; return its Markdown report (or a line saying why it could not run).

    Each one's wall time goes into ``minutes``.
    """
    sections = []
    for name in names:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            if not (callable(getattr(module, "run", None)) and callable(getattr(module, "report", None))):
                continue
            sections.append(module.report(module.run(quick, log)))
        except Exception as err:  # one broken benchmark must not lose the others' figures
            log(f"{name}: failed: {err!r}")
            sections.append(f"### {name}\n\nfailed: `{err!r}`")
        minutes[name] = (time.perf_counter() - started) / 60
        log(f"{name}: {minutes[name]:.1f} min")
    return sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the lossnet benchmarks (never part of the tests).")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats: a smoke run")
    parser.add_argument("--no-record", action="store_true", help="print only: leave BENCHMARKS.md and the plot alone")
    parser.add_argument(
        "--full-grid",
        action="store_true",
        help="benchmark a at every size and batch, 512 px batch 8 included (make bench-full; about 4 minutes more)",
    )
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "bench_throughput.png", help="the plot's path")
    parser.add_argument(
        "--only",
        help="comma-separated: a (runs b too: b reads its timings), b, later benchmark module names (default: all)",
    )
    args = parser.parse_args(argv)
    later = later_benchmarks()
    only = set(args.only.split(",")) if args.only else {"a", "b", *later}
    unknown = only - {"a", "b", *later}
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; present: a, b, {', '.join(later)}")
    if "b" in only and "a" not in only:
        parser.error("b reads a's timings: use --only a,b")

    def log(line: str) -> None:
        print(line, flush=True)

    device = torch.device("cpu")
    machine_before = machine_line(device)
    log(f"machine: {machine_before}")
    started = time.perf_counter()
    sections = []
    parts: dict[str, float] = {}
    if "a" in only:
        sections.append(section_ab(args, log))
        parts["a+b"] = (time.perf_counter() - started) / 60
        log(f"a+b: {parts['a+b']:.1f} min")
    sections += run_later([n for n in later if n in only], args.quick, log, parts)
    load_after = machine_line(device).rsplit("load average ", 1)[1]
    minutes = (time.perf_counter() - started) / 60
    split = ", ".join(f"{name} {m:.1f}" for name, m in parts.items())
    log(f"total: {minutes:.1f} min ({split})")
    if args.no_record:
        return 0
    kind = (
        "quick run (`python -m benchmarks.run --quick`)"
        if args.quick
        else "full grid (`make bench-full`)"
        if args.full_grid
        else "`make bench`"
    )
    command = " ".join(
        [Path(sys.executable).name, "-m", "benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
    )
    header = f"""## {now()}: {kind}

- machine: {machine_before}; load average after: {load_after}
- wall time: {minutes:.1f} min ({split})
- command: `{command}`
"""
    append_results("\n".join([header, *sections]))
    log(f"appended to {ROOT / 'BENCHMARKS.md'}")
    return 0


def section_ab(args: argparse.Namespace, log: Callable[[str], None]) -> str:
    """Run benchmarks a and b; return their Markdown (and draw the plot on a recorded full run)."""
    dtypes, left_out = bench_dtypes()
    if left_out:
        log(f"a. {left_out}")
    rows = lt.run(args.quick, log, full=args.full_grid, dtypes=dtypes)
    roof, matmul, profile = rf.run(args.quick, rows, log)
    auto = resolve("auto", "cpu").precision
    size, batch = (max(lt.QUICK_GRID["sizes"]), max(lt.QUICK_GRID["batches"])) if args.quick else lt.TARGET_CONFIG
    checks = verdicts(rows, roof, size, batch)
    for line in checks:
        log(line)

    peaks = ", ".join(f"{k} {v[0]:.0f} GFLOP/s (n={v[1]})" for k, v in matmul.items())
    plot_note = ""
    if not args.quick and not args.no_record:
        throughput_plot(rows, args.plot)
        plot_note = f"\n![throughput]({args.plot.relative_to(ROOT).as_posix()})\n"
    skipped = f"\n- {left_out}" if left_out else ""
    return f"""- matmul peaks: {peaks}{skipped}

### a. forward+backward throughput and peak tensor memory (johnson2016_style, VGG16)

{throughput_table(rows)}
{plot_note}
### b. roofline (conv FLOPs of lossnet's step / time, against the matmul peak)

{roofline_table(roof)}

### targets at {size} px, batch {batch}

{chr(10).join(checks)}

<details><summary>torch.profiler, lossnet {auto} {size} px batch {batch}, two steps</summary>

```
{profile.strip()}
```
</details>
"""


if __name__ == "__main__":
    raise SystemExit(main())
