"""What this machine's CPU and GPU say about half precision, read once per process.

:func:`probe_cpu` reads the CPU's model and feature flags (``/proc/cpuinfo``), ATen's dispatch
level and oneDNN's bf16 support without running anything; :func:`measure_bf16_speedup` times one
conv where the flags cannot tell; :func:`probe_cuda` reads a GPU's name and compute capability.
:mod:`lossnet.runtime` decides the precision from them (tests replace ``runtime.probe_cpu`` with stubs).
"""

from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CpuProbe:
    """What the CPU says about bf16, without running anything.

    Attributes:
        model: the CPU's name (``/proc/cpuinfo`` or ``platform``).
        machine: ``platform.machine()``, e.g. ``x86_64``, ``arm64``.
        capability: ``torch.backends.cpu.get_cpu_capability()``: ``AVX2``, ``AVX512``, ``DEFAULT``, ...
        onednn_bf16: ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` (honours ``ONEDNN_MAX_CPU_ISA``).
        flags: the feature flags of ``/proc/cpuinfo``, or ``None`` where they cannot be read.
        onednn_max_isa: the ``ONEDNN_MAX_CPU_ISA`` environment variable, if set.
        cores: ``os.cpu_count()``.
    """

    model: str
    machine: str
    capability: str
    onednn_bf16: bool
    flags: frozenset[str] | None
    onednn_max_isa: str | None = None
    cores: int = 1

    @property
    def x86(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64", "i386", "i686", "x86")

    @property
    def features(self) -> str:
        """The vector capability in use, in words: ``AVX2``, ``AVX-512``, ``AVX-512 BF16``, ``AMX`` (joined by ``+``).

        From the CPU's flags, limited to what ATen dispatches to (``ATEN_CPU_CAPABILITY``) and
        oneDNN may use (``ONEDNN_MAX_CPU_ISA``).
        """
        if self.flags is None:
            return self.capability
        wide = self.capability.upper().startswith("AVX512")
        table = [("avx2", "AVX2", True), ("avx512f", "AVX-512", wide)]
        if self.onednn_bf16 and onednn_isa_allows_bf16(self.onednn_max_isa):
            table += [("avx512_bf16", "AVX-512 BF16", wide), ("amx_bf16", "AMX", True)]
        names = [name for flag, name, usable in table if usable and flag in self.flags]
        return " + ".join(names) or self.capability


@dataclass(frozen=True)
class CudaProbe:
    """A CUDA GPU's name and compute capability ``(major, minor)``."""

    name: str
    capability: tuple[int, int]


def _cpuinfo() -> tuple[str, frozenset[str] | None]:
    """The CPU model and flags from ``/proc/cpuinfo`` (``x86`` ``flags`` or ARM ``Features``)."""
    model, flags = "", None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "features") and flags is None:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine() or "unknown CPU", flags


@functools.cache
def probe_cpu() -> CpuProbe:
    """Read this CPU's bf16 evidence once per process (see :class:`CpuProbe`)."""
    model, flags = _cpuinfo()
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    return CpuProbe(
        model=model,
        machine=platform.machine(),
        capability=torch.backends.cpu.get_cpu_capability(),
        onednn_bf16=onednn,
        flags=flags,
        onednn_max_isa=os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"),
        cores=os.cpu_count() or 1,
    )


def probe_cuda(device: torch.device) -> CudaProbe:
    """The GPU's name and compute capability."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return CudaProbe(torch.cuda.get_device_name(index), (major, minor))


@functools.cache
def measure_bf16_speedup() -> float:
    """fp32 time / bf16 time of one conv on this CPU (> 1: bf16 is faster); measured once per process.

    A 64-channel 3x3 conv on a 32x32 map (75 MFLOP), as in VGG's first block, with bf16 weights and
    input (as autocast runs it, without the per-call weight cast): about a millisecond
    in fp32, and a hundred or more where bf16 is emulated. Each dtype runs once to warm up; then the
    best of up to three interleaved calls is kept, stopping early once bf16 is clearly far slower.
    (A smaller conv was not representative: at 32 channels, under ``ONEDNN_MAX_CPU_ISA=AVX2`` on an
    AMX machine, bf16 timed faster than fp32 although 64-channel convs and matmuls ran 20x slower.)
    """
    weight, x = torch.randn(64, 64, 3, 3) * 0.05, torch.randn(1, 64, 32, 32)
    # Weights and input are converted beforehand: under autocast, the per-call weight cast would be timed too.
    calls = {dtype: (x.to(dtype), weight.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    best = {dtype: float("inf") for dtype in calls}
    with torch.no_grad():
        for rep in range(4):
            for dtype, (inp, w) in calls.items():
                start = time.perf_counter()
                torch.nn.functional.conv2d(inp, w, padding=1)
                took = time.perf_counter() - start
                if rep:
                    best[dtype] = min(best[dtype], took)
            if rep and best[torch.bfloat16] > 4 * best[torch.float32]:
                break  # clearly emulated; no need to wait for more
    return best[torch.float32] / max(best[torch.bfloat16], 1e-9)


def onednn_isa_allows_bf16(isa: str | None) -> bool:
    """Whether ``ONEDNN_MAX_CPU_ISA`` leaves oneDNN its native bf16 kernels (AVX-512 BF16, AMX, AVX10)."""
    if isa is None:
        return True
    isa = isa.upper()
    return isa in ("ALL", "DEFAULT", "") or any(s in isa for s in ("BF16", "AMX", "FP16", "AVX10"))
