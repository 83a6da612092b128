"""Benchmark i: a training step with glibc's default malloc against freed memory kept (:mod:`lossnet.memory`).

glibc hands large freed blocks back to the kernel, so each step of a training run faults its activations' pages in
again. ``lossnet train`` and the CLI keep freed memory instead (:func:`lossnet.memory.keep_freed_memory`). The
setting is process-wide, so each side runs in a child process of its own (``LOSSNET_KEEP_FREED_MEMORY=0`` or ``1``),
one after the other, on the same step: each task's recipe built as ``lossnet train`` builds it
(:func:`benchmarks.train_step.trainer`), in the precision ``auto`` picks, one warm-up step, then the median of the
timed steps. Reported per side: seconds per step, the kernel's (system) seconds per step, minor page faults per
step, and the child's peak resident memory.

Run as ``python -m benchmarks.freed_memory [--quick]`` (``--quick``: the test sizes only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.common import run_child, table

SIDES = ("default", "kept")


@dataclass
class Row:
    task: str
    sizes: str
    size: int
    batch: int
    precision: str
    default: dict[str, float]
    kept: dict[str, float]

    @property
    def speedup(self) -> float:
        return self.default["seconds"] / self.kept["seconds"]


def child(task: str, size: int, batch: int, repeats: int) -> dict[str, float]:
    """In this process: the step's median seconds, system seconds and page faults per step, and peak RSS (MiB)."""
    import torch

    from benchmarks.common import time_calls
    from benchmarks.train_step import trainer
    from lossnet.memory import keep_freed_memory
    from lossnet.runtime import resolve

    kept = keep_freed_memory()  # honours LOSSNET_KEEP_FREED_MEMORY
    precision = resolve("auto", "cpu").precision
    job, x, y = trainer(task, size, batch, precision)
    job.step(x, y)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF)
    timing = time_calls(lambda: job.step(x, y), warmup=0, repeats=repeats)
    after = resource.getrusage(resource.RUSAGE_SELF)
    n = len(timing.seconds)
    return {
        "kept": float(kept),
        "precision": precision,
        "seconds": timing.median,
        "system": (after.ru_stime - before.ru_stime) / n,
        "faults": (after.ru_minflt - before.ru_minflt) / n,
        "peak_mib": after.ru_maxrss / 1024,  # Linux reports KiB
        "threads": torch.get_num_threads(),
    }


def _run_side(side: str, task: str, size: int, batch: int, repeats: int) -> dict[str, float]:
    env = {**os.environ, "LOSSNET_KEEP_FREED_MEMORY": "1" if side == "kept" else "0"}
    result = run_child("benchmarks.freed_memory", [task, str(size), str(batch), str(repeats)], env)
    if bool(result["kept"]) != (side == "kept"):
        raise RuntimeError(f"benchmark i's {side} child ran with kept={result['kept']}: is the C library glibc?")
    return result


def run(quick: bool = False, log: Callable[[str], None] = print) -> list[Row]:
    """Each task at the test sizes (and at the recipe's, unless ``quick``), with glibc's default and with it kept."""
    from benchmarks.step_roofline import TEST_SIZE, measured_tasks, recipe_size

    rows = []
    for sizes in ("test",) if quick else ("test", "recipe"):
        for task in measured_tasks():
            grid = TEST_SIZE if sizes == "test" else recipe_size(task)
            repeats = 3 if sizes == "recipe" else 5
            sides = {side: _run_side(side, task, grid["size"], grid["batch"], repeats) for side in SIDES}
            row = Row(task, sizes, grid["size"], grid["batch"], str(sides["kept"]["precision"]), **sides)
            log(
                f"i. {task:8s} {sizes:6s}: {row.default['seconds']:.3f} s/step (default) -> "
                f"{row.kept['seconds']:.3f} s/step (kept), {row.speedup:.2f}x"
            )
            rows.append(row)
    return rows


def report(rows: list[Row]) -> str:
    """A Markdown table of both sides per task and size, and the range of the speed-ups."""
    if not rows:
        return ""
    header = ["task", "sizes", "crop", "batch", "precision", "default s/step (sys)", "kept s/step (sys)",
              "faults/step default / kept", "speed-up", "peak MiB default / kept"]  # fmt: skip
    body = [
        [r.task, r.sizes, str(r.size), str(r.batch), r.precision,
         f"{r.default['seconds']:.3f} ({r.default['system']:.3f})", f"{r.kept['seconds']:.3f} ({r.kept['system']:.3f})",
         f"{r.default['faults']:.0f} / {r.kept['faults']:.0f}", f"{r.speedup:.2f}x",
         f"{r.default['peak_mib']:.0f} / {r.kept['peak_mib']:.0f}"]  # fmt: skip
        for r in rows
    ]
    lines = ["### i. a training step, glibc's default malloc against freed memory kept (lossnet.memory)", "",
             table(header, body), ""]  # fmt: skip
    for sizes in dict.fromkeys(r.sizes for r in rows):
        mine = [r.speedup for r in rows if r.sizes == sizes]
        lines.append(f"- {sizes} sizes: kept memory runs the step {min(mine):.2f}-{max(mine):.2f}x as fast")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the test sizes only")
    parser.add_argument("--child", nargs=4, metavar=("TASK", "SIZE", "BATCH", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task, size, batch, repeats = args.child
        print(json.dumps(child(task, int(size), int(batch), int(repeats))))
        return 0
    import torch

    from benchmarks.common import machine_line

    print(f"machine: {machine_line(torch.device('cpu'))}", flush=True)
    print(report(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
