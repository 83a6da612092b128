"""Device and precision, decided once: ``resolve(precision, device)`` -> one frozen :class:`Runtime`.

Every part of lossnet that takes a precision (training, apply, eval, the demo, the explore
tools, :class:`~lossnet.losses.PerceptualLoss`, the benchmarks) takes its name from
:data:`PRECISION_CHOICES` and resolves it here, so the choice is made in one place and can say
why it was made. ``auto`` (the default everywhere) picks:

- CUDA: ``bf16`` where the GPU runs it natively (compute capability 8.0 and newer), otherwise
  ``fp16`` (with a GradScaler when training);
- CPU: ``bf16`` only where it runs natively (AVX-512 BF16 or AMX, and oneDNN uses them),
  otherwise ``fp32``: a CPU without native bf16 emulates it, up to 100x slower than fp32. Where
  the probe cannot tell (a CPU whose feature flags cannot be read, e.g. ARM or macOS), one conv
  is timed in each dtype, once per process, and bf16 is picked only if it is clearly faster;
- any other device: ``fp32``.

An explicit ``bf16``/``fp16`` where it is not native still runs, and warns once with the reason.

>>> rt = resolve("fp32", "cpu")
>>> rt.precision, rt.dtype, rt.grad_scaler
('fp32', None, False)
>>> with rt.autocast():
...     pass
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lossnet.errors import InputError
from lossnet.validation import check_choice

#: ``fp32`` runs as is; ``bf16`` and ``fp16`` run under ``torch.autocast`` with that dtype.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

#: What every ``--precision`` and ``precision=`` accepts: ``auto`` and the names of :data:`PRECISIONS`.
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISIONS)

#: ``--precision`` help text, shared by every command.
PRECISION_HELP = (
    "auto (default: bf16 where this CPU or GPU runs it natively, fp16 on older GPUs, else fp32) | fp32 | bf16 | fp16"
)

#: bf16 must be at least this much faster than fp32 on the probe conv for ``auto`` to pick it.
MEASURED_SPEEDUP_NEEDED = 1.25


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a run computes, and why; made by :func:`resolve`.

    Attributes:
        device: the torch device.
        precision: the chosen precision, ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        requested: what was asked for (``'auto'`` or one of the names).
        reason: why, in words, e.g. ``"this CPU has no native bf16: AVX2, and oneDNN reports no bf16 support; ..."``.
        grad_scaler: whether training needs a ``torch.amp.GradScaler`` (fp16 on CUDA).
    """

    device: torch.device
    precision: str
    requested: str
    reason: str
    grad_scaler: bool

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype: ``torch.bfloat16``, ``torch.float16``, or ``None`` for fp32."""
        return PRECISIONS[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context a forward pass runs in: ``torch.autocast`` for bf16/fp16, nothing for fp32."""
        dtype = self.dtype
        return contextlib.nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    @property
    def summary(self) -> str:
        """One line for logs and the CLI: ``precision auto -> fp32 (reason)``."""
        return f"precision {self.requested} -> {self.precision} ({self.reason})"

    def to_dict(self) -> dict[str, str | bool]:
        """For ``run.json`` and benchmark records."""
        return {
            "device": str(self.device),
            "requested": self.requested,
            "precision": self.precision,
            "reason": self.reason,
            "grad_scaler": self.grad_scaler,
        }


# -- probes ---------------------------------------------------------------------------------------
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
        if self.onednn_bf16 and _onednn_isa_allows_bf16(self.onednn_max_isa):
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


# -- the decision table ---------------------------------------------------------------------------
def _onednn_isa_allows_bf16(isa: str | None) -> bool:
    """Whether ``ONEDNN_MAX_CPU_ISA`` leaves oneDNN its native bf16 kernels (AVX-512 BF16, AMX, AVX10)."""
    if isa is None:
        return True
    isa = isa.upper()
    return isa in ("ALL", "DEFAULT", "") or any(s in isa for s in ("BF16", "AMX", "FP16", "AVX10"))


def cpu_native_bf16(probe: CpuProbe, measure: Callable[[], float] | None = None) -> tuple[bool, str]:
    """Whether bf16 runs natively on this CPU, and why: the probe, else a measurement.

    Args:
        probe: see :class:`CpuProbe`.
        measure: returns fp32 time / bf16 time of one conv (default :func:`measure_bf16_speedup`);
            called only where the probe cannot tell.
    """
    if not probe.onednn_bf16:
        return False, (
            f"this CPU has no native bf16: {probe.features}, and oneDNN reports no bf16 support; "
            "bf16 would be emulated, up to 100x slower here"
        )
    if not _onednn_isa_allows_bf16(probe.onednn_max_isa):
        return False, (
            f"ONEDNN_MAX_CPU_ISA={probe.onednn_max_isa} leaves out the native bf16 kernels; "
            "bf16 would be emulated, far slower"
        )
    if probe.x86 and probe.flags is not None:
        native = bool({"avx512_bf16", "amx_bf16"} & probe.flags) and probe.capability.upper().startswith("AVX512")
        if native:
            return True, f"this CPU runs bf16 natively: {probe.features}"
        return False, (
            f"this CPU has no native bf16: {probe.features}, without AVX-512 BF16 or AMX; "
            "bf16 would be emulated, several times slower here"
        )
    speedup = (measure or measure_bf16_speedup)()
    if speedup >= MEASURED_SPEEDUP_NEEDED:
        return True, f"measured: bf16 ran one conv {speedup:.1f}x faster than fp32 on this {probe.capability} CPU"
    slower = f"{1 / speedup:.1f}x slower" if speedup < 1 else f"only {speedup:.2f}x faster"
    return False, f"measured: bf16 ran one conv {slower} than fp32 on this {probe.capability} CPU"


def decide(
    requested: str,
    device: torch.device,
    cpu: CpuProbe | None = None,
    cuda: CudaProbe | None = None,
    measure: Callable[[], float] | None = None,
) -> tuple[str, str, str | None]:
    """The decision table: ``(precision, reason, warning or None)`` for a request on a device.

    The probes are read here unless given (tests pass stubs). ``warning`` is set for an explicit
    half precision that this device does not run natively.
    """
    if device.type == "cuda":
        gpu = cuda or probe_cuda(device)
        sm = f"sm_{gpu.capability[0]}{gpu.capability[1]}"
        bf16 = gpu.capability >= (8, 0)
        auto = "bf16" if bf16 else "fp16"
        native = f"{gpu.name} ({sm}) runs bf16 natively" if bf16 else f"{gpu.name} ({sm}) has no native bf16"
        if requested == "auto":
            return auto, native if bf16 else native + "; fp16, with a GradScaler when training", None
        if requested == "bf16" and not bf16:
            return "bf16", "requested; auto would pick fp16", f"--precision bf16: {native}; fp16 or auto is faster"
        return requested, "requested" + ("" if requested == auto else f"; auto would pick {auto}"), None
    if device.type != "cpu":
        if requested == "auto":
            return "fp32", f"auto keeps fp32 on {device.type}", None
        return requested, "requested", None
    probe = cpu or probe_cpu()
    if requested == "fp32":
        return "fp32", "requested", None
    native, why = cpu_native_bf16(probe, measure)
    if requested == "auto":
        return ("bf16", why, None) if native else ("fp32", why, None)
    if requested == "bf16":
        if native:
            return "bf16", "requested", None
        return "bf16", "requested; auto would pick fp32", f"--precision bf16: {why}"
    fp16_native = probe.flags is not None and bool({"avx512_fp16", "amx_fp16"} & probe.flags)
    warning = None if fp16_native else "--precision fp16: this CPU has no native fp16; it is emulated, slower than fp32"
    return "fp16", "requested", warning


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def pick_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``'auto'``: CUDA when available, else CPU; otherwise ``torch.device(device)``.

    Raises:
        InputError: an unknown device name, or CUDA asked for where there is none.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(device)!r} was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
    return target


def resolve(precision: str | Runtime = "auto", device: str | torch.device | None = None) -> Runtime:
    """Resolve a precision name on a device into a :class:`Runtime`.

    Args:
        precision: one of :data:`PRECISION_CHOICES`, or a ``Runtime`` already made (returned as is
            unless ``device`` is of another type: then its request is resolved there).
        device: ``torch.device``, ``'cpu'``, ``'cuda'``, ``'cuda:N'``, or ``None``/``'auto'``
            (CUDA when available).

    Warns:
        RuntimeWarning: once per process and message, for ``bf16``/``fp16`` asked for where the
            device does not run it natively (it still runs, slowly).
    """
    if isinstance(precision, Runtime):
        if device is None or pick_device(device).type == precision.device.type:
            return precision
        precision = precision.requested  # made for another kind of device: the same request, decided there
    check_choice(precision, PRECISION_CHOICES, "precision")
    dev = pick_device(device)
    chosen, reason, warning = _decide_cached(precision, dev)
    if warning is not None:
        _warn_once(warning)
    return Runtime(dev, chosen, precision, reason, grad_scaler=chosen == "fp16" and dev.type == "cuda")


@functools.cache
def _decide_cached(precision: str, device: torch.device) -> tuple[str, str, str | None]:
    return decide(precision, device)


@torch.compiler.assume_constant_result
def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype that ``resolve(precision, device)`` picks (``None`` for fp32).

    A constant under ``torch.compile``: the decision (the CPU probe, the cached table) runs once, in
    Python, when the graph is traced, instead of being traced itself (which would break the graph).

    >>> autocast_dtype("fp32", torch.device("cpu")) is None
    True
    """
    return resolve(precision, device).dtype


def autocast(precision: str | Runtime, device_type: str) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in for ``precision`` on ``device_type`` (``'cpu'``, ``'cuda'``)."""
    return resolve(precision, device_type).autocast()


def machine_summary(device: str | torch.device | None = "cpu") -> dict[str, object]:
    """The machine in a few fields, for benchmark records: CPU, capability, cores, torch, precision auto."""
    probe = probe_cpu()
    info: dict[str, object] = {
        "cpu": probe.model,
        "machine": probe.machine,
        "capability": probe.features,
        "aten_capability": probe.capability,
        "onednn_bf16": probe.onednn_bf16,
        "cores": probe.cores,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_build": f"cuda {torch.version.cuda}" if torch.version.cuda else "cpu",
    }
    dev = pick_device(device)
    if dev.type == "cuda":
        gpu = probe_cuda(dev)
        info["gpu"] = f"{gpu.name} (sm_{gpu.capability[0]}{gpu.capability[1]})"
    auto = resolve("auto", dev)
    info["auto"] = auto.precision
    info["auto_reason"] = auto.reason
    return info
