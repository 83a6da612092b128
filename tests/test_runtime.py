"""The precision decision table, with the CPU/GPU probes replaced by stubs (no timing assertions)."""

from __future__ import annotations

import warnings

import pytest
import torch

from lossnet import runtime
from lossnet.errors import InputError
from lossnet.runtime import CpuProbe, CudaProbe, Runtime, decide, resolve

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
X86 = {"avx2", "avx512f", "avx512bw"}

#: An AVX-512 BF16 + AMX server (the BENCHMARKS.md machine).
NATIVE = CpuProbe("Xeon", "x86_64", "AVX512", True, frozenset(X86 | {"avx512_bf16", "amx_bf16"}))
#: A laptop with AVX2 only: oneDNN reports no bf16.
AVX2 = CpuProbe("Core i5", "x86_64", "AVX2", False, frozenset({"avx2", "fma"}))
#: AVX-512 without BF16 (Skylake-X): oneDNN reports bf16 support, but it is emulated.
AVX512_NO_BF16 = CpuProbe("Xeon Gold", "x86_64", "AVX512", True, frozenset(X86))
#: A CPU whose flags cannot be read (macOS, ARM): only a measurement can tell.
UNKNOWN = CpuProbe("arm", "arm64", "DEFAULT", True, None)


def never() -> float:
    raise AssertionError("the probe could tell; nothing should have been measured")


def test_native_bf16_cpu_picks_bf16() -> None:
    precision, reason, warning = decide("auto", CPU, NATIVE, measure=never)
    assert precision == "bf16" and warning is None
    assert "natively" in reason and "AMX" in reason


@pytest.mark.parametrize("probe", [AVX2, AVX512_NO_BF16], ids=["avx2", "avx512-no-bf16"])
def test_cpu_without_native_bf16_picks_fp32(probe: CpuProbe) -> None:
    precision, reason, warning = decide("auto", CPU, probe, measure=never)
    assert precision == "fp32" and warning is None
    assert "no native bf16" in reason


def test_onednn_limited_below_bf16_picks_fp32() -> None:
    limited = CpuProbe("Xeon", "x86_64", "AVX512", True, NATIVE.flags, onednn_max_isa="AVX512_CORE")
    assert decide("auto", CPU, limited, measure=never)[0] == "fp32"
    amx = CpuProbe("Xeon", "x86_64", "AVX512", True, NATIVE.flags, onednn_max_isa="AVX512_CORE_AMX")
    assert decide("auto", CPU, amx, measure=never)[0] == "bf16"


def test_aten_capability_below_avx512_picks_fp32() -> None:
    # ATEN_CPU_CAPABILITY=avx2 on a bf16 machine: the flags say native, the dispatch does not use it.
    emulated = CpuProbe("Xeon", "x86_64", "AVX2", True, NATIVE.flags)
    assert decide("auto", CPU, emulated, measure=never)[0] == "fp32"


@pytest.mark.parametrize(("speedup", "expected"), [(3.0, "bf16"), (1.1, "fp32"), (0.02, "fp32")])
def test_probe_cannot_tell_measures_once(speedup: float, expected: str) -> None:
    calls: list[int] = []

    def measure() -> float:
        calls.append(1)
        return speedup

    precision, reason, _ = decide("auto", CPU, UNKNOWN, measure=measure)
    assert (precision, len(calls)) == (expected, 1)
    assert reason.startswith("measured")


def test_no_onednn_bf16_needs_no_measurement_even_without_flags() -> None:
    probe = CpuProbe("arm", "arm64", "DEFAULT", False, None)
    assert decide("auto", CPU, probe, measure=never)[0] == "fp32"


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [(CudaProbe("A100", (8, 0)), "bf16"), (CudaProbe("H200", (9, 0)), "bf16"), (CudaProbe("T4", (7, 5)), "fp16")],
)
def test_cuda_picks_bf16_from_ampere_else_fp16(gpu: CudaProbe, expected: str) -> None:
    precision, reason, warning = decide("auto", CUDA, cuda=gpu)
    assert precision == expected and warning is None
    assert gpu.name in reason and ("GradScaler" in reason) == (expected == "fp16")


def test_explicit_requests_run_as_asked_and_warn_where_not_native() -> None:
    precision, reason, warning = decide("bf16", CPU, AVX2)
    assert precision == "bf16" and "auto would pick fp32" in reason
    assert warning is not None and "no native bf16" in warning
    assert decide("bf16", CPU, NATIVE, measure=never)[2] is None
    # fp32 is never a trap: asked for where auto would pick bf16, it runs without a warning.
    assert decide("fp32", CPU, NATIVE, measure=never) == ("fp32", "requested", None)
    precision, reason, warning = decide("bf16", CUDA, cuda=CudaProbe("T4", (7, 5)))
    assert precision == "bf16" and "auto would pick fp16" in reason and warning is not None
    assert decide("fp16", CUDA, cuda=CudaProbe("A100", (8, 0))) == ("fp16", "requested; auto would pick bf16", None)


#: Sapphire Rapids: AVX-512 FP16 and AMX-FP16 beside the bf16 ones.
NATIVE_FP16 = CpuProbe("Xeon", "x86_64", "AVX512", True, frozenset(NATIVE.flags | {"avx512_fp16", "amx_fp16"}))


@pytest.mark.parametrize(("probe", "auto"), [(AVX2, "fp32"), (NATIVE, "bf16"), (AVX512_NO_BF16, "fp32")])
def test_fp16_on_a_cpu_without_native_fp16_is_refused_naming_the_alternatives(probe: CpuProbe, auto: str) -> None:
    with pytest.raises(InputError) as info:
        decide("fp16", CPU, probe, measure=never)
    message = str(info.value)
    assert "\n" not in message and "no native fp16" in message
    assert f"precision='auto' (it picks {auto} here), precision='bf16' or precision='fp32'" in message


def test_fp16_runs_where_native_and_with_a_note_where_the_probe_cannot_tell() -> None:
    assert decide("fp16", CPU, NATIVE_FP16, measure=never) == ("fp16", "requested", None)
    precision, _, note = decide("fp16", CPU, CpuProbe("M2", "arm64", "DEFAULT", False, None), measure=never)
    assert precision == "fp16" and note is not None and "cannot tell" in note and "--precision fp32" in note


def test_resolve_builds_one_runtime_and_notes_once(stub_cpu, caplog) -> None:  # type: ignore[no-untyped-def]
    stub_cpu(AVX2)
    auto = resolve("auto", "cpu")
    assert isinstance(auto, Runtime) and (auto.precision, auto.dtype, auto.grad_scaler) == ("fp32", None, False)
    assert auto.summary.startswith("precision auto -> fp32 (this CPU has no native bf16")
    assert resolve(auto) is auto and resolve(auto, "cpu") is auto  # a runtime is not resolved twice
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a log line, never a Python warning (file path and source line)
        with caplog.at_level("WARNING", logger="lossnet"):
            first = resolve("bf16", "cpu")
            resolve("bf16", "cpu")
    assert [r.getMessage() for r in caplog.records] == ["--precision bf16: " + auto.reason]
    assert first.precision == "bf16" and first.dtype == torch.bfloat16
    with first.autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with auto.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_resolve_on_a_native_cpu_picks_bf16(stub_cpu) -> None:  # type: ignore[no-untyped-def]
    stub_cpu(NATIVE)
    rt = resolve("auto", "cpu")
    assert rt.precision == "bf16" and not rt.grad_scaler
    assert rt.to_dict()["requested"] == "auto"


def test_fp16_on_cuda_needs_a_grad_scaler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "pick_device", lambda device: CUDA)
    monkeypatch.setattr(runtime, "probe_cuda", lambda device: CudaProbe("T4", (7, 5)))
    runtime._decide_cached.cache_clear()
    try:
        rt = resolve("auto", "cuda")
        assert (rt.precision, rt.grad_scaler) == ("fp16", True)
    finally:
        runtime._decide_cached.cache_clear()


def test_bad_names_and_devices_raise() -> None:
    with pytest.raises(InputError, match=r"unknown precision 'bf32'.*Did you mean .*'bf16'"):
        resolve("bf32", "cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve("fp32", "gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve("fp32", "cuda")


def test_loss_takes_the_same_names(stub_cpu) -> None:  # type: ignore[no-untyped-def]
    from lossnet import FeatureExtractor, PerceptualLoss

    stub_cpu(AVX2)
    x = torch.rand(1, 3, 16, 16)
    fp32 = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    assert FeatureExtractor("vgg11", ["relu1_1"], weights=None, compute_dtype="fp32").compute_dtype is None
    auto = FeatureExtractor("vgg11", ["relu1_1"], weights=None, compute_dtype="auto")
    auto.load_state_dict(fp32.state_dict())
    # Where auto picks fp32, the numbers are today's.
    torch.testing.assert_close(auto(x)["relu1_1"], fp32(x)["relu1_1"], rtol=0, atol=0)
    stub_cpu(NATIVE)
    assert auto(x)["relu1_1"].dtype == torch.bfloat16
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu1_1"], compute_dtype=resolve("bf16", "cpu"))
    assert loss.compute_dtype == torch.bfloat16


#: The settings that make any x86 CPU run as an AVX2-only one would (what .ci/run's second pass sets).
AVX2_ONLY = {
    "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}  # fmt: skip


def test_auto_resolves_to_fp32_in_a_process_limited_to_avx2() -> None:
    """The real probe, in a fresh process with the AVX2 limits set: auto takes the fp32 path, on any CPU.

    This is what makes .ci/run's second pass (tests re-run under these settings) a run of the fp32 path.
    """
    import os
    import subprocess
    import sys

    code = (
        "import numpy; from lossnet.runtime import resolve; r = resolve('auto', 'cpu');"
        "print(numpy._core._multiarray_umath.__cpu_features__.get('X86_V4', False), '|', r.precision, '|', r.reason)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **AVX2_ONLY}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    numpy_avx512, precision, reason = done.stdout.strip().split(" | ", 2)
    assert precision == "fp32", done.stdout
    assert numpy_avx512 == "False", "NumPy still dispatches to its AVX-512 kernels"
    assert reason  # says why


def test_autocast_dtype_is_marked_constant_as_torch_compiler_marks_it_without_importing_dynamo() -> None:
    """runtime sets the attribute that torch.compiler.assume_constant_result sets, so that `import lossnet` does not
    import torch._dynamo (1.4 s); if torch changes what the decorator does, this fails."""
    import subprocess
    import sys

    from lossnet.runtime import autocast_dtype

    def plain() -> None: ...

    before = set(vars(plain))
    marked = torch.compiler.assume_constant_result(plain)
    assert set(vars(marked)) - before == {"_dynamo_marked_constant"} and marked._dynamo_marked_constant is True
    assert autocast_dtype._dynamo_marked_constant is True
    code = "import sys, lossnet, lossnet.cli; print('torch._dynamo' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
