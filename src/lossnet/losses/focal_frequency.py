"""``FocalFrequencyLoss``: the module form of :func:`lossnet.functional.focal_frequency.focal_frequency_loss`."""

from __future__ import annotations

import torch
from torch import nn

from lossnet.functional.focal_frequency import focal_frequency_loss

__all__ = ["FocalFrequencyLoss", "focal_frequency_loss"]


class FocalFrequencyLoss(nn.Module):
    """Module form of :func:`focal_frequency_loss`; takes the same arguments.

    Example:
        >>> loss = FocalFrequencyLoss(alpha=1.0)
        >>> x = torch.rand(1, 3, 8, 8)
        >>> float(loss(x, x))
        0.0
    """

    def __init__(
        self,
        alpha: float = 1.0,
        patch_factor: int = 1,
        ave_spectrum: bool = False,
        log_matrix: bool = False,
        batch_matrix: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.alpha, self.patch_factor = alpha, patch_factor
        self.ave_spectrum, self.log_matrix, self.batch_matrix = ave_spectrum, log_matrix, batch_matrix
        self.reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return focal_frequency_loss(
            x, y, self.alpha, self.patch_factor, self.ave_spectrum, self.log_matrix, self.batch_matrix, self.reduction
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, patch_factor={self.patch_factor}, reduction={self.reduction!r}"
