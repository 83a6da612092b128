"""Benchmark: an exported network in onnxruntime against the same network in PyTorch, on the CPU, fp32.

The same network (random weights, fixed seed), the same image, in the same process, the calls
alternated (so that the machine's load falls on both), each with the same number of threads (torch's), in float32: PyTorch's forward in
``inference_mode`` against the ``.onnx`` file that :func:`lossnet.export.export_onnx` writes, run by
an onnxruntime session (CPU provider, default graph optimisations). The ratio is PyTorch's time over
onnxruntime's (above 1: onnxruntime is faster). The outputs' largest difference is recorded beside it.

Networks: Johnson's style ``TransformerNet`` (channels 32, 5 residual blocks) on a 512x512 image (the
tile ``lossnet apply`` runs), and a 4x ``SuperResNet`` (64 channels, 4 blocks) on a 128x128 image.
These are the network alone: ``lossnet apply`` adds reading, tiling and writing, the same for both.

Run as ``python -m benchmarks.onnx_cpu [--quick]``; ``make bench`` runs it with the others.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.common import Timing, machine_line, table

#: (label, registry name, kwargs, input size) of each measurement.
FULL = (
    ("style TransformerNet c32 r5", "TransformerNet", {"channels": 32, "num_residual": 5}, 512),
    ("superres SuperResNet x4 c64 r4", "SuperResNet", {"scale": 4, "channels": 64, "num_residual": 4}, 128),
)
QUICK = (("style TransformerNet c8 r1", "TransformerNet", {"channels": 8, "num_residual": 1}, 128),)


@dataclass
class Row:
    label: str
    size: int
    threads: int
    torch_s: float
    ort_s: float
    max_diff: float

    @property
    def ratio(self) -> float:
        return self.torch_s / self.ort_s


def measure(label: str, name: str, kwargs: dict, size: int, repeats: int, tmp: Path) -> Row:
    import onnxruntime as ort

    from lossnet.export import export_onnx
    from lossnet.models import build_model, model_spec

    torch.manual_seed(0)
    net = build_model(model_spec(name, **kwargs)).eval().requires_grad_(False)
    path = tmp / f"{name}.onnx"
    export_onnx(net, path)
    threads = torch.get_num_threads()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    array = x.numpy()

    def run_torch() -> torch.Tensor:
        with torch.inference_mode():
            return net(x)

    def run_ort() -> object:
        return session.run(None, {"image": array})[0]

    diff = float((torch.from_numpy(run_ort()) - run_torch()).abs().max())  # type: ignore[arg-type]
    # Alternated, one call of each at a time, so that a change in the machine's load falls on both.
    t_torch, t_ort = Timing(), Timing()
    for _ in range(2):
        run_torch(), run_ort()
    for _ in range(repeats):
        for fn, timing in ((run_torch, t_torch), (run_ort, t_ort)):
            start = time.perf_counter()
            fn()
            timing.seconds.append(time.perf_counter() - start)
    return Row(label, size, threads, t_torch.median, t_ort.median, diff)


def run(quick: bool = False, log: Callable[[str], None] = print) -> list[Row]:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        log("onnx_cpu: onnxruntime is not installed (pip install 'lossnet[export]'); skipped")
        return []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, kwargs, size in QUICK if quick else FULL:
            row = measure(label, name, kwargs, size, 3 if quick else 7, Path(tmp))
            log(
                f"onnx_cpu. {label} {size}px: torch {row.torch_s * 1e3:.0f} ms, onnxruntime {row.ort_s * 1e3:.0f} ms "
                f"({row.ratio:.2f}x), max diff {row.max_diff:.1e}"
            )
            rows.append(row)
    return rows


def report(rows: list[Row]) -> str:
    if not rows:
        return "### onnxruntime against PyTorch (CPU, fp32)\n\nskipped: onnxruntime is not installed\n"
    import onnxruntime

    header = ["network", "input", "threads", "PyTorch ms", "onnxruntime ms", "PyTorch / onnxruntime", "max abs diff"]
    body = [
        [r.label, f"{r.size}x{r.size}", str(r.threads), f"{r.torch_s * 1e3:.0f}", f"{r.ort_s * 1e3:.0f}",
         f"{r.ratio:.2f}x", f"{r.max_diff:.1e}"]
        for r in rows
    ]  # fmt: skip
    return (
        f"### onnxruntime {onnxruntime.__version__} against PyTorch {torch.__version__} (CPU, fp32, batch 1, "
        "median of the timed calls, one process)\n\n" + table(header, body) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small network at 128 px")
    args = parser.parse_args(argv)
    print(f"machine: {machine_line(torch.device('cpu'))}", flush=True)
    print(report(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
