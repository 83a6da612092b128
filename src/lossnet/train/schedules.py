"""Learning-rate schedules, as multipliers of the peak rate for ``torch.optim.lr_scheduler.LambdaLR``.

They are small callable objects (not lambdas), so a scheduler's ``state_dict`` carries
them and a resumed run follows the same curve.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch


class Constant:
    """The peak rate at every step.

    >>> Constant()(123)
    1.0
    """

    def __call__(self, step: int) -> float:
        return 1.0


class OneCycle:
    """fastai's one-cycle policy: warm up, then anneal, both along a half cosine.

    The multiplier of step ``i`` (``0 .. total - 1``) rises from ``1 / div`` to 1 over
    the first ``warmup`` fraction of the steps, then falls to ``1 / final_div`` at the
    last one. Unlike
    ``torch.optim.lr_scheduler.OneCycleLR`` it works for any ``total >= 1`` (a 4-step
    test run too) and leaves momentum alone.

    Args:
        total: the number of optimiser steps of the whole run.
        warmup: fraction of the steps spent warming up (0.25, as fastai's ``fit_one_cycle``).
        div: the start is ``peak / div`` (25).
        final_div: the end is ``peak / final_div`` (1e5).

    >>> s = OneCycle(101)
    >>> round(s(0), 4), s(25), round(s(100), 7)
    (0.04, 1.0, 1e-05)
    >>> OneCycle(1)(0), OneCycle(1)(1)
    (1.0, 1e-05)
    """

    def __init__(self, total: int, warmup: float = 0.25, div: float = 25.0, final_div: float = 1e5) -> None:
        self.total, self.warmup, self.div, self.final_div = total, warmup, div, final_div

    def __call__(self, step: int) -> float:
        last = max(0, self.total - 1)  # the steps run are 0 .. total - 1
        peak_at = round(last * self.warmup)
        if step <= peak_at:
            return 1.0 if peak_at == 0 else _cos_between(1 / self.div, 1.0, step / peak_at)
        if last == peak_at:  # a 1-step run: its one step was the peak; the scheduler's next step is past the end
            return 1 / self.final_div
        return _cos_between(1.0, 1 / self.final_div, min(1.0, (step - peak_at) / (last - peak_at)))


def _cos_between(start: float, end: float, t: float) -> float:
    """From ``start`` (t = 0) to ``end`` (t = 1) along a half cosine."""
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2


def restart_schedule(
    scheduler: torch.optim.lr_scheduler.LambdaLR, schedule: Callable[[], Constant | OneCycle], lr: float
) -> None:
    """Make a restored ``scheduler`` follow a new ``schedule()`` and peak ``lr`` from its current step on.

    A scheduler's state brings back the stored run's peak rate and schedule length (the
    one-cycle object's ``total``); a resume that changes ``lr`` or ``steps`` calls this so
    that the new config rules from here on.
    """
    groups = scheduler.optimizer.param_groups
    scheduler.lr_lambdas = [schedule() for _ in groups]
    scheduler.base_lrs = [lr * g.get("lr_scale", 1.0) for g in groups]  # a group's own multiple of the peak
    for group, fn, base in zip(groups, scheduler.lr_lambdas, scheduler.base_lrs, strict=True):
        group["initial_lr"] = base
        group["lr"] = base * fn(scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in groups]


def step_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Advance ``scheduler`` by one training step, skipped optimizer step or not.

    With fp16 on CUDA, GradScaler skips the optimizer's step while it searches for its scale (the first steps'
    gradients overflow), and torch then warns that the schedule stepped before the optimizer. Counting those
    steps is intended (the schedule follows the run's steps), so that warning is silenced here, and only it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        scheduler.step()
