"""Shared benchmark machinery: timing, peak memory, FLOP counts, the matmul peak, machine facts, reports.

Timing: ``warmup`` untimed calls, then ``repeats`` timed calls (more while the time budget
allows); the median is the figure, the spread (min/max) is printed beside it.

Peak memory: one step runs under ``torch.profiler`` with ``profile_memory=True``. Every
allocation and free through PyTorch's allocators is an event with a signed size; their
running sum over the step, in time order, is the bytes live at each moment, and its
maximum is the step's peak above what was live before it. ``tracemalloc`` cannot see these
(tensor storage is not allocated by Python's allocator) and the process RSS keeps what
glibc has not returned, so neither is used. Buffers that oneDNN allocates outside PyTorch's
allocator (its scratchpads, weight reorders) are not counted: this is tensor memory.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from lossnet.atomic import write_text

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


# -- timing ----------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Seconds per call of ``repeats`` timed calls."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.seconds), max(self.seconds)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def minor_faults() -> int:
    """This process's minor page faults so far (each a page of memory touched for the first time)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def settle(fn: Callable[[], object], max_calls: int = 6, faults: Callable[[], int] = minor_faults) -> int:
    """Call ``fn`` until a call faults in no new page (the heap has grown to what ``fn`` needs), at most
    ``max_calls`` times; the number of calls made. ``faults`` reads the process's page-fault count.

    With freed memory kept (:mod:`lossnet.memory`) the heap still grows over a big step's first few calls, whenever
    an allocation finds no freed block that fits: a 256 px style step (2-core Xeon, fp32) faulted in pages at calls
    1, 2, 3 and 5 and took 3.8-4.4 s there, against 3.3 s for the calls that reuse memory, which are what a long run
    sees. With glibc's default (``LOSSNET_KEEP_FREED_MEMORY=0``) every call faults, and all ``max_calls`` are made.
    """
    for calls in range(1, max_calls + 1):
        before = faults()
        fn()
        if faults() == before:
            return calls
    return max_calls


def time_calls(
    fn: Callable[[], object],
    warmup: int = 1,
    repeats: int = 3,
    budget_s: float = 0.0,
    max_repeats: int = 20,
    device: torch.device | None = None,
) -> Timing:
    """Time ``fn`` after ``warmup`` calls: at least ``repeats`` timed calls, more up to ``budget_s`` seconds."""
    device = device or torch.device("cpu")
    for _ in range(warmup):
        fn()
    sync(device)
    timing = Timing()
    start = time.perf_counter()
    while len(timing.seconds) < repeats or (
        time.perf_counter() - start < budget_s and len(timing.seconds) < max_repeats
    ):
        t0 = time.perf_counter()
        fn()
        sync(device)
        timing.seconds.append(time.perf_counter() - t0)
    return timing


# -- memory ----------------------------------------------------------------------------------------


def peak_memory_bytes(fn: Callable[[], object], device: torch.device | None = None) -> tuple[int, float]:
    """Peak bytes of tensor memory live during one call of ``fn``, above what was live before it, and the call's seconds.

    On CUDA this is ``torch.cuda.max_memory_allocated`` after a reset; on CPU the running sum of
    the profiler's allocation events (see the module docstring). The seconds are those of the call
    alone (the profiler's start and stop are outside them), and include the profiler's recording.
    """
    device = device or torch.device("cpu")
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - base, time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    events = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]" and e.device_type().name == "CPU"
    ]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()
        peak = max(peak, live)
    return peak, seconds


# -- FLOPs -----------------------------------------------------------------------------------------


def conv_flops(features: Iterable[nn.Module], batch: int, height: int, width: int) -> int:
    """Forward FLOPs of the convolutions of a VGG-style stack, from their shapes.

    Each 3x3 convolution costs ``2 * C_in * C_out * k_h * k_w * H_out * W_out`` per image (a
    multiply and an add per weight and output pixel); bias, ReLU and pooling are not counted.
    The spatial size follows the stack: a max-pool halves it (rounding down, as PyTorch does).
    """
    total, h, w = 0, height, width
    for m in features:
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            h = (h + 2 * m.padding[0] - kh) // m.stride[0] + 1
            w = (w + 2 * m.padding[1] - kw) // m.stride[1] + 1
            total += 2 * m.in_channels * m.out_channels * kh * kw * h * w
        elif isinstance(m, nn.MaxPool2d):
            h, w = h // 2, w // 2
    return total * batch


# -- the machine's matmul peak ---------------------------------------------------------------------


def matmul_peak(
    dtype: torch.dtype,
    device: torch.device | None = None,
    sizes: Iterable[int] = (1024, 2048, 4096),
    budget_s: float = 1.0,
) -> tuple[float, int]:
    """The best FLOP/s of square ``n x n @ n x n`` products over ``sizes``: ``(flop_per_s, best n)``."""
    device = device or torch.device("cpu")
    best, best_n = 0.0, 0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        timing = time_calls(lambda: a @ b, warmup=1, repeats=3, budget_s=budget_s, device=device)
        rate = 2 * n**3 / min(timing.seconds)
        if rate > best:
            best, best_n = rate, n
    return best, best_n


# -- machine facts ---------------------------------------------------------------------------------


def cpu_model() -> str:  # kept for callers; lossnet.runtime.probe_cpu() is the one probe
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_line(device: torch.device) -> str:
    """One line: CPU (or GPU), its capability, cores and threads, torch and its build, what precision ``auto``
    chose and why, and the load average (last)."""
    from lossnet.runtime import machine_summary

    m = machine_summary(device)
    load = "/".join(f"{v:.2f}" for v in os.getloadavg())
    what = (
        f"{m['cpu']}, capability {m['capability']} (ATen {m['aten_capability']}), {m['cores']} cores, "
        f"torch threads {m['torch_threads']}"
    )
    if "gpu" in m:
        what = f"{m['gpu']}; host {what}"
    return (
        f"{what}; torch {m['torch']} ({m['torch_build']} build); precision auto -> {m['auto']} ({m['auto_reason']}); "
        f"load average {load} (1/5/15 min)"
    )


#: ``bench_dtypes`` leaves bf16 out where a matmul ran this many times slower in bf16 than in fp32.
BF16_TOO_SLOW = 4.0


def bench_dtypes(device: torch.device | None = None) -> tuple[list[str], str]:
    """The dtypes to benchmark and, if bf16 is left out, why.

    fp32 always; bf16 where ``auto`` picks it, or else where a 512x512 matmul (a few ms in fp32) runs
    in bf16 within ``BF16_TOO_SLOW`` of fp32. Emulated bf16 (20-100x slower: 0.7 against 16 GFLOP/s
    under ``ONEDNN_MAX_CPU_ISA=AVX2`` here, 0.8 against 87 on a real AVX2 CPU) would not fit the time budget.
    """
    from lossnet.runtime import resolve

    device = device or torch.device("cpu")
    if resolve("auto", device).precision == "bf16" or device.type != "cpu":
        return ["fp32", "bf16"], ""
    a = torch.randn(512, 512)
    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = a.to(dtype)
        seconds[dtype] = min(time_calls(lambda x=x: x @ x, warmup=1, repeats=2).seconds)
    slower = seconds[torch.bfloat16] / seconds[torch.float32]
    if slower > BF16_TOO_SLOW:
        return ["fp32"], f"bf16 left out: a 512x512 matmul ran {slower:.0f}x slower in bf16 than in fp32 on this CPU"
    return ["fp32", "bf16"], ""


def load_average() -> float:
    return os.getloadavg()[0]


# -- reports ---------------------------------------------------------------------------------------


def now() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


RESULTS_MARKER = "<!-- results: run.py appends below this line -->"


def append_results(section: str, path: Path = BENCHMARKS_MD) -> None:
    """Append a dated section to ``BENCHMARKS.md`` in one atomic rename (a crash leaves the old file)."""
    old = path.read_text() if path.exists() else f"# Benchmarks\n\n{RESULTS_MARKER}\n"
    if RESULTS_MARKER not in old:
        old = old.rstrip("\n") + f"\n\n{RESULTS_MARKER}\n"
    write_text(path, old.rstrip("\n") + "\n\n" + section.strip("\n") + "\n")


def run_child(module: str, args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m MODULE --child ARGS`` in a fresh process from the repository root; its last output line, as JSON.

    For measurements that must not share a process: their own peak memory, or a process-wide setting.

    Raises:
        RuntimeError: the process failed; with the end of its standard error.
    """
    command = [sys.executable, "-m", module, "--child", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env or os.environ.copy(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(n: int) -> str:
    return f"{n / 2**20:.0f}"
