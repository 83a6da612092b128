"""``TotalVariation``: the module form of :func:`lossnet.functional.total_variation`."""

from __future__ import annotations

import torch
from torch import nn

from lossnet.functional.total_variation import TV_KINDS, total_variation

__all__ = ["TV_KINDS", "TotalVariation", "total_variation"]


class TotalVariation(nn.Module):
    """Module form of :func:`total_variation`; takes the same arguments."""

    def __init__(self, kind: str = "anisotropic", reduction: str = "mean", eps: float = 1e-8) -> None:
        super().__init__()
        self.kind = kind
        self.reduction = reduction
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return total_variation(x, self.kind, self.reduction, self.eps)
