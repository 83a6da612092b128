"""The benchmarks build what they measure: a registry task added later must not stop ``make bench``."""

import pytest
import torch

from benchmarks.step_roofline import count_gflop, measured_tasks
from benchmarks.train_step import trainer
from lossnet.tasks import TASKS


def test_step_roofline_measures_the_four_single_target_tasks() -> None:
    assert sorted(measured_tasks()) == ["colorize", "restore", "style", "superres"]


@pytest.mark.parametrize("task", measured_tasks())
def test_step_roofline_counts_each_tasks_step(task: str) -> None:
    """One step at 32 px builds and runs as ``lossnet train`` builds it, in the recipe's memory format, and its
    FLOPs split into the network's (forward and backward) and the loss's (more: the trunk runs on two images)."""
    job, x, y = trainer(task, 32, 1, "fp32")
    network, total = count_gflop(lambda: job.step(x, y), job.model)
    assert 0 < network < total, (network, total)
    channels_last = bool(TASKS[task].recipe.get("channels_last", False))
    weight = next(p for p in job.model.parameters() if p.ndim == 4 and p.shape[1] > 1 and p.shape[-1] > 1)
    assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last  # (x: 1 channel for colorize)


def test_conv_ceiling_reports_each_shape_it_times() -> None:
    from benchmarks import conv_ceiling

    forward, both, last = conv_ceiling.rates((1, 4, 4, 8), torch.float32)
    assert min(forward, both, last) > 0
    row = conv_ceiling.Row("fp32", (1, 4, 4, 8), forward, both, last, 100.0, 1024)
    text = conv_ceiling.report([row])
    assert "| fp32 | 1, 4 -> 4, 8 px |" in text and "100 (n=1024)" in text


@pytest.mark.slow  # two child processes, about 7 s
def test_freed_memory_runs_each_side_in_its_own_process_and_reports_both() -> None:
    """Benchmark i: the child process reports its side's setting, and the table holds both sides' figures."""
    from benchmarks import freed_memory

    sides = {side: freed_memory._run_side(side, "superres", 32, 1, 1) for side in freed_memory.SIDES}
    assert (sides["default"]["kept"], sides["kept"]["kept"]) == (0.0, 1.0)
    assert all(s["seconds"] > 0 and s["peak_mib"] > 0 for s in sides.values())
    row = freed_memory.Row("superres", "test", 32, 1, "fp32", **sides)
    text = freed_memory.report([row])
    assert f"| superres | test | 32 | 1 | fp32 | {sides['default']['seconds']:.3f} (" in text
    assert f"- test sizes: kept memory runs the step {row.speedup:.2f}-{row.speedup:.2f}x as fast" in text


def test_settle_stops_at_the_first_call_that_faults_in_no_page() -> None:
    from benchmarks.common import settle

    counter = [0]
    growth = iter([5, 3, 0, 7])  # pages faulted in by each call: the third call reuses memory

    def step() -> None:
        counter[0] += next(growth)

    assert settle(step, faults=lambda: counter[0]) == 3
    always = lambda: counter.__setitem__(0, counter[0] + 1)  # noqa: E731
    assert settle(always, max_calls=4, faults=lambda: counter[0]) == 4
