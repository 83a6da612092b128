"""Sliced-Wasserstein style term (Heitz, Vanhoey, Chambon & Belcour, CVPR 2021).

A layer's features are a set of ``H*W`` points in ``R^C``. Their distribution, not only its second
moments (a Gram matrix), describes a texture. The sliced Wasserstein distance compares two such
distributions through 1-D projections, where optimal transport is exact and cheap: project both sets
on unit directions ``v_k``, sort each projection, and compare the sorted values:

``SW_l(x, y) = mean_k mean_i (sort(<F^x_l, v_k>)_i - q^y_k(i))^2``

where ``q^y_k`` is the target's sorted projection on ``v_k``.

**Position counts.** When the two maps have as many positions (``N = M``) the sorted values are
matched one to one (exact 1-D optimal transport). Otherwise each sorted projection is read as a
quantile function sampled at the midpoints ``(i + 1/2) / n``, and the target's is resampled at the
prediction's ``N`` midpoints by linear interpolation (clamped at both ends), so that a style image
of any size can be matched.

**Directions.** ``directions`` unit vectors per layer (default: as many as the layer has channels,
as the authors do), drawn from a normal distribution in float64 on the CPU with a seeded
``torch.Generator`` and normalised, so they are the same on every machine. ``redraw=True``
(the paper's choice) draws new ones at each call from that generator; ``redraw=False`` keeps one
fixed set per channel count. L-BFGS (``lossnet stylize``'s default optimiser) evaluates the loss several
times per step, and each evaluation then sees new directions; ``redraw=False`` gives its line search one
fixed function (both ran to a visible transfer of ihc's texture on chelsea, 60 steps at 128 px, HED).

**Target positions.** Sorting dominates the term's cost, and a style image has many more positions
than a training crop (65536 at relu1_2 of a 256 px image, against 4096 for a 64 px crop; sorting was
74% of a 64 px training step). The term keeps at most ``target_positions`` of a target's positions
(default 8192), drawn once per target without replacement from a generator seeded by ``seed``, in that
random order: an unbiased sample of the target's distribution, whose quantiles are off by about
``1 / sqrt(target_positions)`` of their spread. Each call then sorts at most :data:`TARGET_PER_POSITION`
times as many of them as one prediction image has positions (the first ones of the sample: a smaller
random sample): the prediction's ``N`` quantiles are read from ``4 N`` target samples, not from 8192
(at 64 px, relu3_3's 256 positions read 1024 instead of 4096; the target's sorts were two thirds of the
term's sorting in a 64 px style step). ``target_positions=None`` keeps every position and sorts them all
(exact).

Departures from the paper: the mean over directions and positions (not a sum), so the value does not
grow with the image size or the number of directions; features are compared in float32 whatever the
trunk's compute dtype.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lossnet.errors import InputError
from lossnet.functional.reduction import reduce
from lossnet.terms.base import Features, Statistics, Term
from lossnet.validation import check_positive_int, check_tensor, check_weight


#: A call sorts at most this many target positions per position of one prediction image (see the module docstring).
TARGET_PER_POSITION = 4


def random_directions(channels: int, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``count`` random unit directions in ``R^channels``, as the columns of a ``(channels, count)`` float32 tensor.

    Drawn in float64 on the CPU (so identical on every machine for a seeded ``generator``), normalised, then cast.

    >>> d = random_directions(4, 3, torch.Generator().manual_seed(0))
    >>> d.shape, torch.allclose(d.norm(dim=0), torch.ones(3))
    (torch.Size([4, 3]), True)
    """
    check_positive_int(channels, "channels")
    check_positive_int(count, "directions")
    v = torch.randn(channels, count, generator=generator, dtype=torch.float64)
    return (v / v.norm(dim=0, keepdim=True)).float()


def sorted_projections(features: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """``(B, K, N)``: the ``N = H*W`` positions of ``features`` ``(B, C, H, W)`` projected on ``directions``
    ``(C, K)``, sorted along the positions (float32).

    Positions run along the last, contiguous dimension, where the sort is fastest (1.5x faster on a CPU than along a
    strided one) and where the term's differences and their gradients then run too: compared as ``(B, N, K)``
    views of this layout, a 256 px style step spent 0.18 s more (3.47 against 3.29 s, 2-core Xeon, fp32) in
    element-wise passes that crossed the two layouts, for the same values.
    """
    points = features.float().flatten(2)  # (B, C, N)
    # In float32 under autocast too: autocast would project in bf16, whose 8-bit mantissa ties and rounds the sorted
    # values.
    with torch.autocast(points.device.type, enabled=False):
        projected = directions.to(points.device).t() @ points
    return sort_last(projected)


def sort_last(x: torch.Tensor) -> torch.Tensor:
    """``torch.sort(x, dim=-1).values`` of a float32 CPU tensor, with its gradient, 1.5-4x faster.

    NumPy sorts (and argsorts) with SIMD kernels (x86-simd-sort, AVX2 or AVX-512, chosen at run time), where
    ``torch.sort`` compares one pair at a time: on one thread it beat ``torch.sort`` on two by 2.4-4x with
    AVX-512 and 1.4-2.3x with AVX2 at the shapes of a 64 px style step (``(4, 64, 4096)`` .. ``(4, 512, 64)``;
    splitting the rows over two threads gained nothing). Without a gradient the values are sorted as they are;
    with one, the input is argsorted and gathered, so the gradient flows as through ``torch.sort`` (the same,
    where no two values tie). On another device or dtype, or while ``torch.compile`` traces, this is
    ``torch.sort``. A NaN, which no loss survives anyway, lands at the end, as with ``torch.sort``.

    >>> x = torch.randn(2, 3, 50)
    >>> torch.equal(sort_last(x), torch.sort(x, dim=-1).values)
    True
    """
    if x.dtype != torch.float32 or x.device.type != "cpu" or torch.compiler.is_compiling():
        return torch.sort(x, dim=-1).values
    data = x.detach().contiguous().numpy()
    if not (x.requires_grad and torch.is_grad_enabled()):
        return torch.from_numpy(np.sort(data, axis=-1))
    return x.gather(-1, torch.from_numpy(np.argsort(data, axis=-1)))


def resample_quantiles(values: torch.Tensor, n: int) -> torch.Tensor:
    """Values ``(B, K, M)`` sorted along the last dimension, resampled there at ``n`` quantile midpoints:
    ``(B, K, n)``, by linear interpolation.

    Sample ``j`` of ``m`` stands for the quantile ``(j + 1/2) / m``; the output's sample ``i`` is read at
    ``(i + 1/2) / n``, i.e. at position ``(i + 1/2) * m / n - 1/2`` of the input, clamped to ``[0, m - 1]``.

    >>> resample_quantiles(torch.tensor([[[0.0, 1.0]]]), 4).flatten().tolist()
    [0.0, 0.25, 0.75, 1.0]
    """
    m = values.shape[-1]
    if m == n:
        return values
    pos = ((torch.arange(n, dtype=torch.float64) + 0.5) * m / n - 0.5).clamp(0, m - 1)
    low = pos.floor().long().clamp(max=m - 1)
    high = (low + 1).clamp(max=m - 1)
    frac = (pos - low).to(values.dtype).to(values.device)
    low, high = low.to(values.device), high.to(values.device)
    return values[..., low] * (1 - frac) + values[..., high] * frac


def sliced_wasserstein(
    x: torch.Tensor,
    y: torch.Tensor,
    directions: torch.Tensor | int | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sliced Wasserstein distance (squared, mean over directions and positions) between two feature maps.

    Args:
        x: the prediction's features ``(B, C, H, W)``.
        y: the target's features ``(B, C, H', W')`` or ``(1, C, H', W')`` (broadcast); any size.
        directions: ``(C, K)`` unit directions, a count ``K``, or ``None`` (``K = C``), drawn with ``generator``.
        generator: a seeded ``torch.Generator`` (CPU) for the directions; ``None`` uses torch's global one.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``(B,)``) over the batch.

    Returns:
        float32, ``>= 0``; 0 when ``y`` is ``x`` (or a permutation of its positions).

    Example:
        >>> x = torch.rand(2, 8, 5, 5)
        >>> float(sliced_wasserstein(x, x, 16, torch.Generator().manual_seed(0)))
        0.0
        >>> d = random_directions(8, 16, torch.Generator().manual_seed(0))
        >>> sliced_wasserstein(x, torch.rand(1, 8, 7, 3), d, reduction="none").shape
        torch.Size([2])
    """
    x = check_tensor(x, "x", 4)
    y = check_tensor(y, "y", 4)
    if y.shape[1] != x.shape[1] or y.shape[0] not in (1, x.shape[0]):
        raise InputError(
            f"sliced_wasserstein compares feature maps with the same channels and batch (or a target of batch 1); "
            f"got x {tuple(x.shape)} and y {tuple(y.shape)}: take both from the same layer"
        )
    if not isinstance(directions, torch.Tensor):
        directions = random_directions(x.shape[1], directions or x.shape[1], generator)
    if directions.ndim != 2 or directions.shape[0] != x.shape[1]:
        raise InputError(f"directions must be (C, K) with C = {x.shape[1]}; got {tuple(directions.shape)}")
    px = sorted_projections(x, directions)
    py = resample_quantiles(sorted_projections(y, directions), px.shape[-1])
    return reduce((px - py).pow(2).mean(dim=(1, 2)), reduction)


class _Directions:
    """The directions of a term or a module: redrawn per call from one seeded generator, or fixed per channel count."""

    def __init__(self, count: int | None, seed: int, redraw: bool) -> None:
        self.count = None if count is None else check_positive_int(count, "directions")
        self.seed, self.redraw = int(seed), bool(redraw)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.fixed: dict[int, torch.Tensor] = {}

    def __call__(self, channels: int) -> torch.Tensor:
        count = self.count or channels
        if self.redraw:
            return random_directions(channels, count, self.generator)
        if channels not in self.fixed:
            self.fixed[channels] = random_directions(channels, count, torch.Generator().manual_seed(self.seed))
        return self.fixed[channels]


class _DrawsDirections:
    """The ``rng_state`` / ``set_rng_state`` pair of a module that draws its directions from its own generator: a
    training checkpoint keeps that state (:func:`lossnet.checkpoint.rng_state`), so that a resumed run draws the
    directions the uninterrupted one would have drawn."""

    directions: _Directions

    def rng_state(self) -> torch.Tensor:
        return self.directions.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.directions.generator.set_state(state)


class SlicedWassersteinLoss(_DrawsDirections, nn.Module):
    """Module form of :func:`sliced_wasserstein` on feature maps, with its own seeded directions.

    Args:
        directions: directions per call (``None``: as many as the features have channels).
        seed: seeds the directions' generator.
        redraw: new directions at every call (the paper's choice) or one fixed set.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.

    Example:
        >>> loss = SlicedWassersteinLoss(directions=8, redraw=False)
        >>> x = torch.rand(1, 4, 6, 6)
        >>> float(loss(x, x)), loss(x, torch.rand(1, 4, 3, 3)).item() > 0
        (0.0, True)
    """

    def __init__(
        self, directions: int | None = None, seed: int = 0, redraw: bool = True, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.directions, self.reduction = _Directions(directions, seed, redraw), reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = check_tensor(x, "x", 4)
        return sliced_wasserstein(x, y, self.directions(x.shape[1]), reduction=self.reduction)


class SlicedWassersteinTerm(_DrawsDirections, Term):
    """The sliced Wasserstein term at one layer, key ``"sliced_wasserstein.<layer>"``; keeps the target's features."""

    def __init__(
        self,
        layer: str,
        weight: float = 1.0,
        directions: int | None = None,
        seed: int = 0,
        redraw: bool = True,
        target_positions: int | None = 8192,
        key: str | None = None,
    ) -> None:
        super().__init__()
        self.layers = (layer,)
        self.key = key or f"sliced_wasserstein.{layer}"
        self.weight = check_weight(weight, f"sliced_wasserstein weight of {layer!r}")
        self.directions = _Directions(directions, seed, redraw)
        self.seed = int(seed)
        self.target_positions = None if target_positions is None else check_positive_int(
            target_positions, "target_positions"
        )

    def target_statistics(self, image: torch.Tensor, features: Features) -> Statistics:
        """The target's features at the layer: at most ``target_positions`` of its positions, in a seeded random
        order, as ``(B, C, 1, n)`` (``target_positions=None``: all of them, as they are)."""
        (layer,) = self.layers
        y = features[layer]
        if self.target_positions is None:
            return {layer: y}
        n = y.shape[2] * y.shape[3]
        keep = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))[: self.target_positions]
        return {layer: y.flatten(2)[:, :, keep.to(y.device)].unsqueeze(2)}

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        (layer,) = self.layers
        x = features[layer]
        y = target[layer]  # type: ignore[index]
        if self.target_positions is not None:  # a random sample: its first positions are a smaller one
            y = y.flatten(2)[:, :, : TARGET_PER_POSITION * x.shape[2] * x.shape[3]].unsqueeze(2)
        return sliced_wasserstein(x, y, self.directions(x.shape[1]), reduction="none")


#: The family's public functions and modules (exported at the top level from its table entry).
EXPORTS = (SlicedWassersteinLoss, sliced_wasserstein)
