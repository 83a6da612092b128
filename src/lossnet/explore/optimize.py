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
from lossnet.functional.adain import channel_statistics, recolour
from lossnet.validation import check_choice, check_image, check_positive_int

#: The optimisers offered.
OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")
#: Their default step sizes on [0, 1] pixels. L-BFGS scales its own steps; 1 is its usual lr.
DEFAULT_LR: dict[str, float] = {"lbfgs": 1.0, "adam": 0.02}
#: How an optimisation can start: the content, seeded noise, or the content recoloured to a reference's colours.
INITS: tuple[str, ...] = ("content", "noise", "recoloured")

Objective = Callable[[torch.Tensor], dict[str, torch.Tensor]]
#: Called after every step with the 1-based step number and the terms evaluated in it.
Callback = Callable[[int, dict[str, float]], None]


@dataclass
class OptimizeConfig:
    """How an image is optimised.

    Attributes:
        steps: optimiser steps in all (one loss evaluation each), split evenly across the
            pyramid levels; this bounds the work. L-BFGS stops a level early only where the
            gradient is exactly zero. A line search's trial points count as steps, and
            each level's last step evaluates the image it returns.
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


def start_image(
    init: str, content: torch.Tensor, seed: int = 0, reference: torch.Tensor | None = None
) -> torch.Tensor:
    """The start of an optimisation: a copy of ``content``, seeded uniform noise of its size, or ``content``
    recoloured to ``reference``'s colours.

    ``'recoloured'`` gives each RGB channel of ``content`` the mean and standard deviation of the same channel of
    ``reference`` (Reinhard et al. 2001's transfer, in RGB; :func:`~lossnet.functional.adain.recolour`, as the style
    recipes' recoloured targets), clamped to [0, 1]. From there an optimiser need not move
    every pixel's colour against the content term, which holds colours in place (issue 20: from the content
    itself, astronaut kept 0.56 of its colour distance to ihc after 300 L-BFGS steps; this start alone has 0.20).

    Args:
        init: one of :data:`INITS`.
        content: ``(1, 3, H, W)`` in [0, 1].
        seed: seed of the noise (the same seed gives the same noise on every device).
        reference: ``(1, 3, H', W')`` in [0, 1], any size; needed for ``'recoloured'`` only.

    >>> a, b = start_image("noise", torch.zeros(1, 3, 4, 4), 7), start_image("noise", torch.zeros(1, 3, 4, 4), 7)
    >>> bool((a == b).all()), bool(0 <= a.min() and a.max() <= 1)
    (True, True)
    >>> content, style = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 6, 6) * 0.2 + 0.4  # no pixel clamped
    >>> start = start_image("recoloured", content, reference=style)
    >>> torch.allclose(start.mean((2, 3)), style.mean((2, 3)), atol=1e-5)
    True
    """
    check_choice(init, INITS, "init")
    if init == "content":
        return content.detach().clone()
    if init == "recoloured":
        if reference is None:
            raise InputError("init='recoloured' recolours the content to a reference image's colours: pass reference")
        reference = reference.detach().float().to(content.device)
        return recolour(content.detach(), *channel_statistics(reference)).to(content.dtype)
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
    the first level starts from ``init`` resized. L-BFGS keeps its curvature history across the
    steps of a level and takes steps that a strong-Wolfe line search accepts; a step is one loss
    evaluation (a line search's trial points count), so ``config.steps`` bounds the work.

    **The box [0, 1].** The loss is that of ``x.clamp(0, 1)``, the image that is returned. L-BFGS
    has no bounds; it used to minimise the loss of the unclamped pixels with no line search, and
    clamp only at the end: with a large style weight it pushed many pixels far outside [0, 1],
    and the final clamp undid the result (``lossnet stylize`` at 128 px, style/content 1000: the
    total rose from 181 at the last step to 9522 after the clamp; more style weight ended with
    *more* style loss). The clamp alone made the sweep's style loss fall with the ratio in fp32;
    in bf16 a step without a line search could still blow up at style/content 1e5 (a total of
    8e7). With the line search every accepted step lowers the loss. A pixel past a bound gets no
    gradient and stays there, as a bound-constrained optimiser would leave it; Adam's pixels are
    also clamped after each step.

    **The last step is the result.** A level of ``n`` steps gives its optimiser ``n - 1``
    evaluations, keeps the best image they saw (L-BFGS; a line search can end on a trial point),
    and evaluates it as its last step, so ``history[-1]``'s terms, a progress bar's last value,
    the loss curve's last point and ``final`` are one number.

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
        budget = step + n_steps - 1  # the optimiser's evaluations; the last step evaluates the result
        best: tuple[float, torch.Tensor] | None = None

        def closure() -> torch.Tensor:
            nonlocal step, best
            if step >= budget:
                raise _BudgetSpent
            opt.zero_grad(set_to_none=True)
            terms = objective(x.clamp(0.0, 1.0))  # the loss of the image that is returned: see the docstring
            terms["total"].backward()
            step += 1
            values = _record(history, terms, step, level, config, callback)
            if best is None or values["total"] < best[0]:
                best = (values["total"], x.detach().clone())
            return terms["total"]

        try:
            if config.optimizer == "lbfgs":
                opt.step(closure)  # all of the level's steps in one call: its curvature history stays intact
            else:
                while True:
                    opt.step(closure)
                    with torch.no_grad():
                        x.clamp_(0.0, 1.0)
        except _BudgetSpent:
            pass
        with torch.no_grad():
            if config.optimizer == "lbfgs" and best is not None:
                x.copy_(best[1])  # the line search may have stopped at a trial point: keep the best image seen
            x.clamp_(0.0, 1.0)
            terms = objective(x)
        step += 1
        _record(history, terms, step, level, config, callback)
    image = x.detach()
    final = {k: float(v) for k, v in terms.items()}
    return OptimizeResult(image=image, history=history, final=final)


class _BudgetSpent(Exception):
    """Raised by a level's closure when its evaluations are spent (the step count, not a heuristic, ends a run)."""


def _record(
    history: list[dict[str, float]],
    terms: dict[str, torch.Tensor],
    step: int,
    level: int,
    config: OptimizeConfig,
    callback: Callback | None,
) -> dict[str, float]:
    """Append one step's terms to ``history``, call ``callback``, and stop on a loss that is not finite."""
    values = {k: float(v.detach()) for k, v in terms.items()}
    if not math.isfinite(values["total"]):
        raise InputError(
            f"the loss became {values['total']} at step {step}; lower the step size "
            f"(lr {config.step_size}) or use the other optimiser"
        )
    history.append({"step": float(step), "level": float(level), **values})
    if callback is not None:
        callback(step, values)
    return values


def _optimizer(config: OptimizeConfig, x: torch.Tensor, steps: int) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam([x], lr=config.step_size)
    # A strong-Wolfe line search: every accepted step lowers the loss (see optimize_image). The closure ends the
    # run when the level's evaluations are spent; the tolerances are off so that only the step count ends it.
    return torch.optim.LBFGS(
        [x], lr=config.step_size, max_iter=steps, history_size=50, tolerance_grad=0, tolerance_change=0,
        line_search_fn="strong_wolfe",
    )  # fmt: skip
