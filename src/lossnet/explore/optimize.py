"""Image optimisation: the loop that stylisation and feature inversion share.

The pixels of an image are the parameters; an objective (a dict of loss terms with a
``total``) is minimised by L-BFGS (default, as Gatys et al. 2016 and Johnson's neural-style)
or Adam, coarse to fine over an image pyramid, for a fixed number of steps. After every
step the pixels are clamped to [0, 1], so the result is always a valid image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lossnet.errors import InputError
from lossnet.validation import check_choice, check_image, check_positive_int

#: The optimisers offered.
OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")
#: Their default step sizes on [0, 1] pixels. L-BFGS scales its own steps; 1 is its usual lr.
DEFAULT_LR: dict[str, float] = {"lbfgs": 1.0, "adam": 0.02}
#: How an optimisation can start.
INITS: tuple[str, ...] = ("content", "noise")

Objective = Callable[[torch.Tensor], dict[str, torch.Tensor]]
#: Called after every step with the 1-based step number and the terms evaluated in it.
Callback = Callable[[int, dict[str, float]], None]


@dataclass
class OptimizeConfig:
    """How an image is optimised.

    Attributes:
        steps: optimiser steps in all (one loss evaluation each), split evenly across the
            pyramid levels; this bounds the work. L-BFGS stops a level early only where the
            gradient is exactly zero.
        optimizer: ``'lbfgs'`` or ``'adam'``.
        lr: step size; ``None`` takes :data:`DEFAULT_LR` of the optimiser.
        levels: pyramid levels, coarse to fine, each twice the size of the one before; 1 works
            at full size only. Levels smaller than the loss network's deepest layer needs are
            skipped.
    """

    steps: int = 300  # Gatys-style results settle within a few hundred L-BFGS steps
    optimizer: str = "lbfgs"
    lr: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam
    levels: int = 1  # e.g. 3 optimises at 1/4, 1/2, then full size

    def __post_init__(self) -> None:
        check_positive_int(self.steps, "steps")
        check_positive_int(self.levels, "levels")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and 0 < self.lr < math.inf):
            raise InputError(f"lr must be a positive number; got {self.lr!r}")

    @property
    def step_size(self) -> float:
        """The learning rate in use."""
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.optimizer]


@dataclass
class OptimizeResult:
    """What an optimisation produced.

    Attributes:
        image: the result ``(1, 3, H, W)`` in [0, 1], detached.
        history: one dict per step: ``step`` (1-based), ``level`` (0 = coarsest), and every term
            evaluated in that step (the image before the step's update).
        final: the terms of the returned image at full size.
    """

    image: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)

    @property
    def initial(self) -> dict[str, float]:
        """The terms of the start image (at the coarsest level's size)."""
        return {k: v for k, v in self.history[0].items() if k not in ("step", "level")}


def split_steps(steps: int, parts: int) -> list[int]:
    """Split ``steps`` into ``parts`` near-equal counts, the larger ones first.

    >>> split_steps(10, 3)
    [4, 3, 3]
    """
    base, extra = divmod(steps, parts)
    return [base + (i < extra) for i in range(parts)]


def pyramid_sizes(size: tuple[int, int], levels: int, min_size: int = 1) -> list[tuple[int, int]]:
    """Image sizes from coarse to fine, halving from ``size``; levels below ``min_size`` are dropped.

    >>> pyramid_sizes((100, 60), 3)
    [(25, 15), (50, 30), (100, 60)]
    >>> pyramid_sizes((100, 60), 3, min_size=16)  # 15 pixels is too small
    [(50, 30), (100, 60)]
    """
    h, w = size
    sizes = [(max(1, round(h / 2**k)), max(1, round(w / 2**k))) for k in reversed(range(levels))]
    kept = [s for s in sizes[:-1] if min(s) >= min_size]
    return [*kept, (h, w)]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(B, C, H, W)`` in [0, 1] to ``size`` (antialiased bicubic), clamped to [0, 1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0.0, 1.0)


def start_image(init: str, content: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The start of an optimisation: a copy of ``content``, or seeded uniform noise of its size.

    Args:
        init: ``'content'`` or ``'noise'``.
        content: ``(1, 3, H, W)`` in [0, 1].
        seed: seed of the noise (the same seed gives the same noise on every device).

    >>> a, b = start_image("noise", torch.zeros(1, 3, 4, 4), 7), start_image("noise", torch.zeros(1, 3, 4, 4), 7)
    >>> bool((a == b).all()), bool(0 <= a.min() and a.max() <= 1)
    (True, True)
    """
    check_choice(init, INITS, "init")
    if init == "content":
        return content.detach().clone()
    g = torch.Generator().manual_seed(seed)
    return torch.rand(content.shape, generator=g).to(device=content.device, dtype=content.dtype)


def optimize_image(
    make_objective: Callable[[tuple[int, int]], Objective],
    init: torch.Tensor,
    config: OptimizeConfig | None = None,
    callback: Callback | None = None,
    min_size: int = 1,
) -> OptimizeResult:
    """Minimise an objective over the pixels of an image, coarse to fine.

    At each pyramid level the current image is resized to the level's size and
    ``make_objective(size)`` builds that level's objective (its targets resized to match);
    the first level starts from ``init`` resized. L-BFGS does one loss evaluation per step
    (``max_iter=1``, no line search) and keeps its curvature history across steps within a
    level; every step is followed by clamping the pixels to [0, 1].

    Args:
        make_objective: ``size -> objective``; an objective maps ``(1, 3, h, w)`` to a dict of
            scalar terms with a ``total``.
        init: the start image ``(1, 3, H, W)`` in [0, 1]; its size is the final size.
        config: steps, optimiser, step size and pyramid levels.
        callback: called after every step as ``callback(step, terms)``, e.g. for a progress bar.
        min_size: the smallest side a level may have (the loss network's deepest layer's need).

    Returns:
        The :class:`OptimizeResult`.

    Raises:
        InputError: the loss became NaN or infinite (the step size is too large for it).

    Example:
        >>> target = torch.full((1, 3, 8, 8), 0.25)
        >>> result = optimize_image(lambda size: lambda x: {"total": (x - resize(target, size)).square().mean()},
        ...                         torch.zeros(1, 3, 8, 8), OptimizeConfig(steps=20))
        >>> round(float(result.image.mean()), 3), len(result.history) <= 20
        (0.25, True)
    """
    config = config or OptimizeConfig()
    init = check_image(init, "start image", (0.0, 1.0))
    sizes = pyramid_sizes((init.shape[-2], init.shape[-1]), config.levels, min_size)
    x = init.detach()
    history: list[dict[str, float]] = []
    step = 0
    for level, (size, n_steps) in enumerate(zip(sizes, split_steps(config.steps, len(sizes)))):
        x = resize(x, size).detach().clone().requires_grad_(True)
        objective = make_objective(size)
        opt = _optimizer(config, x, n_steps)

        def closure() -> torch.Tensor:
            nonlocal step
            opt.zero_grad(set_to_none=True)
            terms = objective(x)
            terms["total"].backward()
            step += 1
            values = {k: float(v.detach()) for k, v in terms.items()}
            if not math.isfinite(values["total"]):
                raise InputError(
                    f"the loss became {values['total']} at step {step}; lower the step size "
                    f"(lr {config.step_size}) or use the other optimiser"
                )
            history.append({"step": float(step), "level": float(level), **values})
            if callback is not None:
                callback(step, values)
            return terms["total"]

        if config.optimizer == "lbfgs":
            opt.step(closure)  # n_steps evaluations at most, in one call: its line of steps stays intact
        else:
            for _ in range(n_steps):
                opt.step(closure)
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    image = x.detach()
    with torch.no_grad():
        final = {k: float(v) for k, v in objective(image).items()}
    return OptimizeResult(image=image, history=history, final=final)


def _optimizer(config: OptimizeConfig, x: torch.Tensor, steps: int) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam([x], lr=config.step_size)
    # One evaluation per iteration (no line search), all of a level's steps in one call; the
    # tolerances are off so that the step count, not a heuristic, ends the run.
    return torch.optim.LBFGS(
        [x], lr=config.step_size, max_iter=steps, max_eval=steps, history_size=50, tolerance_grad=0, tolerance_change=0
    )
