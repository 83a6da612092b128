"""L2 pooling (Hénaff & Simoncelli 2016), the anti-aliased pooling DISTS puts in VGG16 in place of max pooling.

``y = sqrt(g * x^2 + 1e-12)`` per channel, with ``g`` the normalised 3x3 Hann window
(``[0.5, 1, 0.5]`` outer itself, divided by its sum 4), stride 2, padding 1: an energy-preserving
low-pass before the subsampling, so the features alias less than after a max-pool.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-12


def l2_pool(x: torch.Tensor) -> torch.Tensor:
    """L2-pool ``(B, C, H, W)`` to ``(B, C, ceil(H / 2), ceil(W / 2))``.

    Example:
        >>> l2_pool(torch.ones(1, 2, 5, 6)).shape
        torch.Size([1, 2, 3, 3])
        >>> round(float(l2_pool(torch.ones(1, 1, 4, 4))[0, 0, 1, 1]), 6)   # inside: sqrt(sum g) = 1
        1.0
    """
    window = torch.tensor([0.5, 1.0, 0.5], dtype=x.dtype, device=x.device)
    g = torch.outer(window, window)
    g = (g / g.sum()).expand(x.shape[1], 1, 3, 3)
    return (F.conv2d(x.square(), g, stride=2, padding=1, groups=x.shape[1]) + _EPS).sqrt()


class L2Pool2d(nn.Module):
    """Module form of :func:`l2_pool` (no parameters, so a VGG's ``state_dict`` keys do not change)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_pool(x)
