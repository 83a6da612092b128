"""Benchmark g: a whole training step's share of the matmul peak, per task, at the test sizes and the recipes' sizes.

Benchmark b measures the loss alone. A training step also runs the network forward and backward
(weight gradients included) and Adam. Here the FLOPs of one step of each default recipe, built as
``lossnet train`` builds it (:func:`benchmarks.train_step.trainer`: the recipe's network, its paper
loss on a random-weight trunk, the trainer's :func:`~lossnet.train.step.train_step`), are counted
by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls, forward and backward:
the network's forward and backward, the trunk on the prediction forward and back to the input,
the target's pass), split into the network's share and the loss's. Achieved GFLOP/s over the best
square matmul of the same dtype (benchmark b's peak, measured in the same process) is the step's
roofline fraction. oneDNN's convolutions can beat that matmul: a fraction over 100% says the peak is
a matmul's, not the machine's.
Norms, activations, pooling, Grams' elementwise work, the optimizer and Python are not counted:
they are the time the fraction does not explain.

Each step is timed once the heap has stopped growing (:func:`benchmarks.common.settle`), as in a long run.

Sizes: ``test`` is what the learning checks train (64 px crops, batch 4); ``recipe`` is each task's
recipe (style 256 px batch 4, superres 288 px batch 4, restore and colorize 128 px batch 8).

Run as ``python -m benchmarks.step_roofline [--quick]`` (``--quick``: the test sizes only).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import Timing, bench_dtypes, machine_line, settle, table, time_calls
from benchmarks.roofline import peaks as roofline_peaks
from benchmarks.train_step import trainer
from lossnet.tasks import TASKS

#: The target of issue 18 D: a step at this fraction of the dtype's matmul peak or more.
TARGET = 0.70
TEST_SIZE = {"size": 64, "batch": 4}


def recipe_size(task: str) -> dict[str, int]:
    """The task's recipe crop and batch (from the task registry)."""
    recipe = TASKS[task].recipe
    return {"size": int(recipe["crop_size"]), "batch": int(recipe["batch_size"])}


@dataclass
class Row:
    task: str
    sizes: str  # "test" or "recipe"
    precision: str
    size: int
    batch: int
    network_gflop: float
    total_gflop: float
    timing: Timing
    peak_gflops: float

    @property
    def fraction(self) -> float:
        return self.total_gflop / self.timing.median / self.peak_gflops


def count_gflop(step: Callable[[], object], model: torch.nn.Module) -> tuple[float, float]:
    """``(network GFLOP, total GFLOP)`` of one call of ``step``; the network's is read from its modules."""
    with FlopCounterMode(display=False) as counter:
        step()
    total = counter.get_total_flops()
    by_module = counter.get_flop_counts()
    name = type(model).__name__
    network = sum(by_module.get(name, {}).values()) if name in by_module else 0
    return network / 1e9, total / 1e9


def measured_tasks() -> list[str]:
    """The tasks with a separate loss network and one target per item.

    The multi-style task (several style images in one network) and a task that builds its own loss (AdaIN's, on the
    network's own encoder, with a stacked content and style input) have steps of their own, which this benchmark
    does not build.
    """
    return [t for t, entry in TASKS.items() if not (entry.multi_style or entry.training_loss is not None)]


def measure(task: str, sizes: str, precision: str, peak: float, repeats: int) -> Row:
    grid = TEST_SIZE if sizes == "test" else recipe_size(task)
    job, x, y = trainer(task, grid["size"], grid["batch"], precision)
    step = lambda: job.step(x, y)  # noqa: E731
    network, total = count_gflop(step, job.model)  # also the first warm-up step
    settle(step)  # the steps a long run takes: its heap no longer grows
    timing = time_calls(step, warmup=0, repeats=repeats)
    return Row(task, sizes, precision, grid["size"], grid["batch"], network, total, timing, peak)


def run(quick: bool = False, log: Callable[[str], None] = print) -> list[Row]:
    """Every task at the test sizes (and at the recipe's, unless ``quick``), in each precision ``make bench`` runs."""
    dtypes, left_out = bench_dtypes()
    if left_out:
        log(f"g. {left_out}")
    peaks = {name: gflops for name, (gflops, _) in roofline_peaks(quick, dtypes).items()}  # benchmark b's peaks
    rows = []
    for sizes in ("test",) if quick else ("test", "recipe"):
        for task in measured_tasks():
            for precision in dtypes:
                row = measure(task, sizes, precision, peaks[precision], repeats=2)
                log(
                    f"g. {task:8s} {sizes:6s} {precision}: {row.total_gflop:.1f} GFLOP/step, "
                    f"{row.timing.median:.3f} s, {100 * row.fraction:.0f}% of {row.peak_gflops:.0f} GFLOP/s"
                )
                rows.append(row)
    return rows


def report(rows: list[Row]) -> str:
    """A Markdown table of each step's FLOPs, time and roofline fraction, and one verdict line per precision."""
    header = ["task", "sizes", "precision", "crop", "batch", "network GFLOP", "loss GFLOP", "s/step", "GFLOP/s",
              "of matmul peak"]  # fmt: skip
    body = [
        [r.task, r.sizes, r.precision, str(r.size), str(r.batch), f"{r.network_gflop:.2f}",
         f"{r.total_gflop - r.network_gflop:.2f}", f"{r.timing.median:.3f}",
         f"{r.total_gflop / r.timing.median:.0f}", f"{100 * r.fraction:.0f}%"]  # fmt: skip
        for r in rows
    ]
    lines = ["### g. step roofline (FLOPs of a whole training step / time, against the matmul peak)", "",
             table(header, body), ""]  # fmt: skip
    for precision in dict.fromkeys(r.precision for r in rows):
        mine = [r for r in rows if r.precision == precision]
        worst = min(mine, key=lambda r: r.fraction)
        ok = worst.fraction >= TARGET
        lines.append(
            f"- {precision}: the step reaches {100 * min(r.fraction for r in mine):.0f}-"
            f"{100 * max(r.fraction for r in mine):.0f}% of the matmul peak (target >= {100 * TARGET:.0f}%): "
            + ("**met**" if ok else f"**missed**, worst {worst.task} at {worst.sizes} sizes")
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the test sizes only")
    args = parser.parse_args(argv)
    print(f"machine: {machine_line(torch.device('cpu'))}", flush=True)
    print(report(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
