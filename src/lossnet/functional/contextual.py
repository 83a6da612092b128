"""Contextual loss (Mechrez, Talmi & Zelnik-Manor, ECCV 2018): feature similarity that ignores where features are.

Each prediction feature vector ``x_i`` (one per position) is compared with every target
feature vector ``y_j``; the target is matched as a *set*, so misaligned or differently-sized
targets can be used. With the vectors centred on the target's mean and unit-normalised:

- ``d_ij = 1 - cos(x_i, y_j)``, made relative: ``d~_ij = d_ij / (min_k d_ik + eps)``;
- ``CX_ij = softmax_j((1 - d~_ij) / h)``: how much ``y_j`` is ``x_i``'s nearest neighbour;
- ``CX = mean_j max_i CX_ij``, and the loss is ``-log(CX)``, 0 when every target feature has
  its own distinct match.

**Memory.** The similarities form an ``N x M`` matrix per sample and layer (N, M: prediction
and target positions): 64 x 64 features make 16.8 M entries, 67 MB in float32 for each of
the few intermediate tensors. It is computed in chunks of prediction rows, each under
activation checkpointing when a gradient is needed, so the peak is a chunk's, within
``memory_budget`` bytes; a layer whose single row of the matrix does not fit raises before
anything is allocated. ``max_positions`` samples positions at random, as the authors do for
large maps, to cut the work itself.

**Sampling.** As the authors' ``random_pooling``, one random set of positions is drawn and used for
both maps when they have as many positions (the usual case: prediction and target of one size), so
a map compared with itself still gives 0 and aligned maps are compared at the same places. When the
counts differ there is no position to share, and each map larger than ``max_positions`` gets a draw of
its own (the prediction's first). A map of at most ``max_positions`` positions is used whole.

Departure: the centring mean is taken per sample (the authors' code takes it over the batch),
so that a sample's loss does not depend on the rest of its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from lossnet.errors import InputError
from lossnet.functional.reduction import reduce
from lossnet.validation import check_positive_int, check_tensor, check_weight

#: Default bound on the memory of one chunk of the similarity matrix (bytes).
DEFAULT_MEMORY_BUDGET = 256 * 2**20
#: Float32-sized tensors of one chunk's width alive at once (similarities, distances, their softmax, ...).
_TENSORS_PER_CHUNK = 4


def contextual_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    band_width: float = 0.5,
    eps: float = 1e-5,
    max_positions: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The contextual loss ``-log CX(x, y)`` between prediction and target features.

    Args:
        x: prediction features ``(B, C, H, W)``.
        y: target features ``(B, C, H', W')`` or ``(1, C, H', W')``; the size may differ from ``x``'s.
        band_width: ``h`` of the paper (0.5 by default; smaller is sharper matching).
        eps: added to the row minimum of the distances (1e-5, as the authors).
        max_positions: sample at most this many positions of each map at random (``None``: all); one
            draw serves both maps when they have as many positions (see the module docstring).
        memory_budget: bytes one chunk of the similarity matrix may take (default 256 MiB).
        generator: for the position sampling (``None``: torch's global generator); the same seed gives
            the same positions.
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.

    Returns:
        float32 (float64 for float64 input) values ``>= 0``.

    Raises:
        InputError: shapes that do not fit, or a map too large for ``memory_budget`` (with what to change).

    Example:
        >>> x = torch.rand(2, 8, 5, 5)
        >>> float(contextual_loss(x, x)) < 1e-3   # every target feature has its own exact match
        True
        >>> shuffled = x.flatten(2)[..., torch.randperm(25)].reshape(2, 8, 5, 5)
        >>> bool(torch.isclose(contextual_loss(shuffled, x), contextual_loss(x, x)))  # where does not matter
        True
    """
    check_tensor(x, "prediction features", ndim=4)
    check_tensor(y, "target features", ndim=4)
    if y.shape[1] != x.shape[1] or y.shape[0] not in (1, x.shape[0]):
        raise InputError(
            f"target features {tuple(y.shape)} do not fit the prediction's {tuple(x.shape)}: expected the same "
            "channels and batch 1 or the same batch"
        )
    band_width = check_weight(band_width, "band_width")
    if band_width == 0:
        raise InputError("band_width must be > 0 (the paper uses 0.5; 0.1-1.0 are common)")
    if x.dtype not in (torch.float32, torch.float64):
        x, y = x.float(), y.float()
    y = y.to(x.dtype)
    xs, ys = x.flatten(2), y.flatten(2)  # (B, C, N), (B', C, M)
    if max_positions is not None:
        max_positions = check_positive_int(max_positions, "max_positions")
        xs, ys = _sample_positions(xs, ys, max_positions, generator)
    b, m = xs.shape[0], ys.shape[2]
    chunk = _chunk_rows(b, m, xs.element_size(), memory_budget, tuple(x.shape), tuple(y.shape))
    mean = ys.mean(2, keepdim=True)
    xn = F.normalize(xs - mean, dim=1).transpose(1, 2)  # (B, N, C)
    yn = F.normalize(ys - mean, dim=1)  # (B', C, M)
    use_checkpoint = torch.is_grad_enabled() and (xn.requires_grad or yn.requires_grad)
    best = []
    for start in range(0, xn.shape[1], chunk):
        rows = xn[:, start : start + chunk]
        args = (rows, yn, band_width, eps)
        best.append(checkpoint(_chunk_max, *args, use_reentrant=False) if use_checkpoint else _chunk_max(*args))
    cx = torch.stack(best).amax(0).mean(1)  # max over every prediction position, mean over the target's
    return reduce(-torch.log(cx), reduction)


def _chunk_max(rows: torch.Tensor, yn: torch.Tensor, band_width: float, eps: float) -> torch.Tensor:
    """``max_i CX_ij`` over the prediction rows of one chunk: ``(B, M)``."""
    distance = 1.0 - torch.matmul(rows, yn)  # (B, n, M)
    relative = distance / (distance.amin(2, keepdim=True) + eps)
    return torch.softmax((1.0 - relative) / band_width, dim=2).amax(1)


def _chunk_rows(b: int, m: int, itemsize: int, budget: int, x_shape: tuple, y_shape: tuple) -> int:
    budget = check_positive_int(budget, "memory_budget")
    per_row = b * m * itemsize * _TENSORS_PER_CHUNK
    if per_row > budget:
        raise InputError(
            f"contextual loss of features {x_shape} against {y_shape} needs {per_row / 2**20:.1f} MiB for a single "
            f"row of its {m}-column similarity matrix, over memory_budget={budget / 2**20:.1f} MiB; pass "
            "max_positions= (e.g. 4096) to sample positions, use a deeper (smaller) layer, smaller crops, or raise the budget"
        )
    return max(1, budget // per_row)


def _sample_positions(
    xs: torch.Tensor, ys: torch.Tensor, n: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``n`` positions of ``(B, C, N)`` and ``(B', C, M)``: one shared draw if ``N == M``, else one each."""
    if xs.shape[2] == ys.shape[2]:
        if xs.shape[2] <= n:
            return xs, ys
        index = _draw(xs.shape[2], n, generator, xs.device)
        return xs[..., index], ys[..., index]
    return _sample(xs, n, generator), _sample(ys, n, generator)


def _draw(total: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` distinct positions of ``total``: the first ``n`` of a random permutation (drawn on the CPU)."""
    return torch.randperm(total, generator=generator)[:n].to(device)


def _sample(features: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    if features.shape[2] <= n:
        return features
    return features[..., _draw(features.shape[2], n, generator, features.device)]
