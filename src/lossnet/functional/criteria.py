"""Element-wise distance criteria (``l1``, ``mse``, ``charbonnier``) and the per-sample distance."""

from __future__ import annotations

import torch

from lossnet.functional.half_distance import fused_applies, half_distance
from lossnet.functional.reduction import reduce
from lossnet.validation import check_choice

CRITERIA: tuple[str, ...] = ("l1", "mse", "charbonnier")

#: Charbonnier's smoothing constant (as used in LapSRN / BasicSR-style losses).
CHARBONNIER_EPS = 1e-3


def elementwise(x: torch.Tensor, y: torch.Tensor, criterion: str = "mse") -> torch.Tensor:
    """The element-wise distance between ``x`` and ``y`` (broadcasting), same shape as the broadcast.

    - ``l1``: ``|x - y|``
    - ``mse``: ``(x - y)^2``
    - ``charbonnier``: ``sqrt((x - y)^2 + eps^2) - eps``, eps = 1e-3. The ``- eps`` shift
      (not in Charbonnier's original form) makes identical inputs score exactly 0; the
      gradient is unchanged.

    >>> elementwise(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]), "l1")
    tensor([1., 2.])
    """
    check_choice(criterion, CRITERIA, "criterion")
    diff = x - y
    if criterion == "l1":
        return diff.abs()
    if criterion == "mse":
        return diff.square()
    eps = CHARBONNIER_EPS
    return torch.sqrt(diff.square() + eps * eps) - eps


def distance(x: torch.Tensor, y: torch.Tensor, criterion: str = "mse", reduction: str = "mean") -> torch.Tensor:
    """Per-sample mean of the element-wise criterion, then the batch reduction.

    Half-precision inputs are compared in float32; the result is float32.

    Args:
        x: ``(B, ...)``.
        y: ``(B, ...)`` or ``(1, ...)``, broadcast over the batch.
        criterion: ``'l1'``, ``'mse'`` or ``'charbonnier'``.
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar.
    """
    # Half-precision features (autocast) are compared in float32: the mean of many small
    # squared differences is where bf16's 8-bit mantissa would lose the signal. Two of the same
    # shape and layout take the fused path, which does so without float32 copies of them.
    if fused_applies(x, y):
        check_choice(criterion, CRITERIA, "criterion")
        return reduce(half_distance(x, y, criterion, CHARBONNIER_EPS), reduction)
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if y.dtype in (torch.float16, torch.bfloat16):
        y = y.float()
    per_element = elementwise(x, y, criterion)
    return reduce(per_element.flatten(1).mean(dim=1), reduction)
