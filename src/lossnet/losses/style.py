"""Style reconstruction loss: the distance between Gram matrices (Gatys et al. 2016; Johnson et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn

from lossnet.errors import InputError
from lossnet.functional.criteria import distance
from lossnet.functional.gram import gram_matrix
from lossnet.validation import check_tensor


def style_loss(x: torch.Tensor, y: torch.Tensor, criterion: str = "mse", reduction: str = "mean") -> torch.Tensor:
    """Distance between the Gram matrices of prediction and target features.

    With ``'mse'`` this is Johnson et al. 2016's style reconstruction loss
    ``||G(x) - G(y)||_F^2`` (eq. 4) divided by ``C^2`` (a mean over the Gram's entries
    rather than a sum, so that layers of different width weigh alike).
    Gram matrices are normalised by ``C H W`` (:func:`gram_matrix`), so the
    prediction and the target may differ in size.

    Args:
        x: prediction features ``(B, C, H, W)``.
        y: target features ``(B, C, H', W')`` or ``(1, C, H', W')``, or a precomputed
            target Gram ``(B, C, C)`` / ``(1, C, C)`` (broadcast over the batch).
        criterion: ``'l1'``, ``'mse'`` or ``'charbonnier'``.
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.

    Example:
        >>> x = torch.ones(1, 2, 4, 4)
        >>> style_loss(x, torch.zeros(1, 2, 4, 4))  # G(x) is all 1/2, G(y) all 0
        tensor(0.2500)
    """
    check_tensor(x, "prediction features", ndim=4)
    check_tensor(y, "target features or Gram", ndim=(3, 4))
    target = gram_matrix(y) if y.ndim == 4 else y
    if target.shape[-2:] != (x.shape[1], x.shape[1]) or target.shape[0] not in (1, x.shape[0]):
        raise InputError(
            f"style target does not fit the features: prediction {tuple(x.shape)} has {x.shape[1]} channels "
            f"and batch {x.shape[0]}; the target Gram is {tuple(target.shape)} (expected (B or 1, C, C))"
        )
    return distance(gram_matrix(x), target, criterion, reduction)


class StyleLoss(nn.Module):
    """Module form of :func:`style_loss`; takes the same arguments."""

    def __init__(self, criterion: str = "mse", reduction: str = "mean") -> None:
        super().__init__()
        self.criterion = criterion
        self.reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return style_loss(x, y, self.criterion, self.reduction)
