"""``MRFLoss``: the module form of :func:`lossnet.functional.mrf.mrf_loss` (see there for the maths)."""

from __future__ import annotations

import torch
from torch import nn

from lossnet.errors import InputError
from lossnet.functional.mrf import DEFAULT_MEMORY_BUDGET, mrf_loss, style_patches

__all__ = ["DEFAULT_MEMORY_BUDGET", "MRFLoss", "mrf_loss", "style_patches"]


class MRFLoss(nn.Module):
    """Module form of :func:`mrf_loss` with the style patches cut once from a fixed style.

    Args:
        style: style features ``(1, C, H, W)``, or ``None`` to set later with :meth:`set_target`.
        patch_size: ``k`` (3, as Li & Wand).
        style_stride: stride between style patches (1; 2 halves them in each direction).

    Example:
        >>> style = torch.rand(1, 4, 6, 6)
        >>> loss = MRFLoss(style)
        >>> loss.patches.shape, float(loss(style))
        (torch.Size([16, 4, 3, 3]), 0.0)
    """

    patches: torch.Tensor | None

    def __init__(
        self,
        style: torch.Tensor | None = None,
        patch_size: int = 3,
        style_stride: int = 1,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.patch_size, self.style_stride = patch_size, style_stride
        self.memory_budget, self.reduction = memory_budget, reduction
        self.register_buffer("patches", None, persistent=False)
        if style is not None:
            self.set_target(style)

    @torch.no_grad()
    def set_target(self, style: torch.Tensor) -> None:
        """Cut and keep the style patches of features ``(1, C, H, W)``."""
        self.patches = style_patches(style.detach(), self.patch_size, self.style_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.patches is None:
            raise InputError("MRFLoss has no style target; call set_target(style_features) first")
        return mrf_loss(x, self.patches, self.memory_budget, self.reduction)
