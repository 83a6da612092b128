"""Per-pixel loss between two images."""

from __future__ import annotations

import torch
from torch import nn

from lossnet.functional.criteria import distance
from lossnet.validation import check_image, check_same_shape


def pixel_loss(x: torch.Tensor, y: torch.Tensor, criterion: str = "mse", reduction: str = "mean") -> torch.Tensor:
    """Per-pixel distance between a prediction and a target image, averaged over C, H and W.

    Args:
        x: prediction ``(B, C, H, W)``.
        y: target ``(B, C, H, W)`` or ``(1, C, H, W)``.
        criterion: ``'l1'``, ``'mse'`` or ``'charbonnier'``.
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.

    Example:
        >>> pixel_loss(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5), "l1")
        tensor(0.5000)
    """
    check_image(x, "prediction")
    check_image(y, "target")
    check_same_shape(x, y)
    return distance(x, y, criterion, reduction)


class PixelLoss(nn.Module):
    """Module form of :func:`pixel_loss`; takes the same arguments."""

    def __init__(self, criterion: str = "mse", reduction: str = "mean") -> None:
        super().__init__()
        self.criterion = criterion
        self.reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pixel_loss(x, y, self.criterion, self.reduction)
