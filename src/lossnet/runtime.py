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

An explicit ``bf16`` where it is not native still runs, and logs a one-line note once, with the
reason (it is only slower). An explicit ``fp16`` on a CPU without native fp16 (an x86 CPU whose
flags show neither AVX-512 FP16 nor AMX-FP16) is refused with an :class:`~lossnet.errors.InputError`
that names ``bf16``, ``fp32`` and ``auto``: there it is emulated (VGG16 to relu2_2, 128 px,
batch 2, on a 2-core AMD EPYC with AVX-512 BF16 and no FP16: 3x to 10x slower than fp32 in two
runs on a shared machine, where bf16 was up to 1.6x faster than fp32), in fp16's narrow range
(activations above 65504 overflow), with no GradScaler for training, so it does nothing that bf16
or fp32 do not do better. Every command and every ``precision=`` goes through this one rule.
On a CPU that is not x86, or whose flags cannot be read (ARM, macOS), fp16 runs, with a note
that lossnet cannot tell.

>>> rt = resolve("fp32", "cpu")
>>> rt.precision, rt.dtype, rt.grad_scaler
('fp32', None, False)
>>> with rt.autocast():
...     pass
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lossnet.errors import InputError
from lossnet.hardware import CpuProbe, CudaProbe, measure_bf16_speedup, onednn_isa_allows_bf16, probe_cpu, probe_cuda
from lossnet.validation import check_choice

#: ``fp32`` runs as is; ``bf16`` and ``fp16`` run under ``torch.autocast`` with that dtype.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

#: What every ``--precision`` and ``precision=`` accepts: ``auto`` and the names of :data:`PRECISIONS`.
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISIONS)

#: ``--precision`` help text, shared by every command.
PRECISION_HELP = (
    "auto (default: bf16 where this CPU or GPU runs it natively, fp16 on older GPUs, else fp32) | fp32 | bf16 | "
    "fp16 (a CUDA GPU, or a CPU with native fp16)"
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


# -- the decision table ---------------------------------------------------------------------------
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
    if not onednn_isa_allows_bf16(probe.onednn_max_isa):
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
    """The decision table: ``(precision, reason, note or None)`` for a request on a device.

    The probes are read here unless given (tests pass stubs). ``note`` is set for an explicit
    half precision that this device runs, but not natively (:func:`resolve` logs it once).

    Raises:
        InputError: ``fp16`` on a CPU without native fp16 (see the module's docstring).
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
    return "fp16", "requested", _cpu_fp16(probe, "bf16" if native else "fp32")


def _cpu_fp16(probe: CpuProbe, auto: str) -> str | None:
    """The rule for ``fp16`` on a CPU: ``None`` where native, a note where the flags cannot tell, else refused."""
    if not (probe.x86 and probe.flags is not None):
        return (
            f"--precision fp16: lossnet cannot tell whether this {probe.machine} CPU runs fp16 natively; "
            f"if it runs slowly, use --precision {auto} (what auto picks here)"
        )
    if {"avx512_fp16", "amx_fp16"} & probe.flags:
        return None
    raise InputError(
        f"precision='fp16' is refused on this CPU: it has no native fp16 ({probe.features}, without AVX-512 FP16 "
        f"or AMX-FP16), so fp16 would be emulated, several times slower than fp32, in fp16's narrow range. "
        f"Use precision='auto' (it picks {auto} here), precision='bf16' or precision='fp32'"
    )


log = logging.getLogger("lossnet")
_WARNED: set[str] = set()


def _note_once(message: str) -> None:
    """Log ``message`` once per process: one line (``lossnet: ...`` on the command line), never a
    Python warning with a file path."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


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

    Logs:
        a warning, once per process and message, for ``bf16`` asked for where the device does not
        run it natively (it still runs, slowly), and for ``fp16`` on a CPU whose flags cannot be read.

    Raises:
        InputError: an unknown name or device, or ``fp16`` on a CPU without native fp16.
    """
    if isinstance(precision, Runtime):
        if device is None or pick_device(device).type == precision.device.type:
            return precision
        precision = precision.requested  # made for another kind of device: the same request, decided there
    check_choice(precision, PRECISION_CHOICES, "precision")
    dev = pick_device(device)
    chosen, reason, note = _decide_cached(precision, dev)
    if note is not None:
        _note_once(note)
    return Runtime(dev, chosen, precision, reason, grad_scaler=chosen == "fp16" and dev.type == "cuda")


@functools.cache
def _decide_cached(precision: str, device: torch.device) -> tuple[str, str, str | None]:
    return decide(precision, device)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype that ``resolve(precision, device)`` picks (``None`` for fp32).

    A constant under ``torch.compile``: the decision (the CPU probe, the cached table) runs once, in
    Python, when the graph is traced, instead of being traced itself (which would break the graph).

    >>> autocast_dtype("fp32", torch.device("cpu")) is None
    True
    """
    return resolve(precision, device).dtype


# What ``@torch.compiler.assume_constant_result`` does (torch 2.1-2.13: it sets this one attribute), without the
# import of torch._dynamo that the public decorator makes, 1.4 s of every ``import lossnet`` (the CLI's start
# included). tests/test_runtime.py checks that the decorator still sets just this, and tests/losses/test_compile.py
# that a compiled loss stays one graph.
autocast_dtype._dynamo_marked_constant = True  # type: ignore[attr-defined]


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
