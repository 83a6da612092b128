"""Image-quality metrics."""

from __future__ import annotations

import torch

from lossnet.losses.reduction import reduce
from lossnet.validation import check_same_shape, check_tensor


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``, per image.

    Args:
        x: images ``(B, C, H, W)``.
        y: reference images, same shape (or batch 1).
        data_range: the span of the value range (1 for [0, 1] images, 255 for [0, 255]).
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar.

    Identical images give ``inf``.

    Example:
        >>> psnr(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.1))
        tensor(20.)
    """
    check_tensor(x, "x", ndim=4)
    check_tensor(y, "y", ndim=4)
    check_same_shape(x, y)
    mse = (x.double() - y.double()).square().flatten(1).mean(1)
    return reduce((10 * torch.log10(data_range**2 / mse)).to(x.dtype), reduction)
