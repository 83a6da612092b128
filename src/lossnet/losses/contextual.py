"""``ContextualLoss``: the module form of :func:`lossnet.functional.contextual.contextual_loss`."""

from __future__ import annotations

import torch
from torch import nn

from lossnet.functional.contextual import DEFAULT_MEMORY_BUDGET, contextual_loss

__all__ = ["DEFAULT_MEMORY_BUDGET", "ContextualLoss", "contextual_loss"]


class ContextualLoss(nn.Module):
    """Module form of :func:`contextual_loss`; takes the same arguments (``generator`` excepted).

    Example:
        >>> loss = ContextualLoss(band_width=0.5)
        >>> loss(torch.rand(1, 4, 3, 3), torch.rand(1, 4, 6, 6)).shape
        torch.Size([])
    """

    def __init__(
        self,
        band_width: float = 0.5,
        eps: float = 1e-5,
        max_positions: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.band_width, self.eps, self.max_positions = band_width, eps, max_positions
        self.memory_budget, self.reduction = memory_budget, reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return contextual_loss(
            x, y, self.band_width, self.eps, self.max_positions, self.memory_budget, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"band_width={self.band_width}, max_positions={self.max_positions}, reduction={self.reduction!r}"
