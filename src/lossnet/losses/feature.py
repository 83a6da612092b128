"""Feature (content) reconstruction loss: the distance between two activations of one layer."""

from __future__ import annotations

import torch
from torch import nn

from lossnet.functional.criteria import distance
from lossnet.validation import check_same_shape, check_tensor


def feature_loss(x: torch.Tensor, y: torch.Tensor, criterion: str = "mse", reduction: str = "mean") -> torch.Tensor:
    """Distance between the activations of one layer for a prediction and a target.

    With ``criterion='mse'`` this is Johnson et al. 2016's feature reconstruction loss
    ``||phi(x) - phi(y)||^2 / (C H W)`` (eq. 2); ``'l1'`` is fastai's feature loss.

    Args:
        x: prediction features ``(B, C, H, W)``.
        y: target features ``(B, C, H, W)``, or ``(1, C, H, W)`` to compare every sample with one target.
        criterion: ``'l1'``, ``'mse'`` or ``'charbonnier'``.
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.

    Example:
        >>> x = torch.zeros(2, 4, 3, 3)
        >>> feature_loss(x, x + 2.0, reduction="none")
        tensor([4., 4.])
    """
    check_tensor(x, "prediction features", ndim=4)
    check_tensor(y, "target features", ndim=4)
    check_same_shape(x, y)
    return distance(x, y, criterion, reduction)


class FeatureLoss(nn.Module):
    """Module form of :func:`feature_loss`; takes the same arguments."""

    def __init__(self, criterion: str = "mse", reduction: str = "mean") -> None:
        super().__init__()
        self.criterion = criterion
        self.reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return feature_loss(x, y, self.criterion, self.reduction)
