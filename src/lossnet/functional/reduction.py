"""The one reduction vocabulary of lossnet: ``'none' | 'mean' | 'sum'`` over the batch."""

from __future__ import annotations

from typing import Literal

import torch

from lossnet.validation import check_choice

Reduction = Literal["none", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def reduce(per_sample: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Reduce per-sample loss values ``(B,)``.

    Args:
        per_sample: one value per sample, shape ``(B,)``.
        reduction: ``'none'`` returns ``(B,)`` unchanged, ``'mean'`` and ``'sum'`` a scalar.

    >>> reduce(torch.tensor([1.0, 3.0]), "mean")
    tensor(2.)
    """
    check_choice(reduction, REDUCTIONS, "reduction")
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
