"""Gram matrices of feature maps: the statistics that style losses compare."""

from __future__ import annotations

import torch

from lossnet.validation import check_tensor


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """Batched Gram matrix, normalised by ``C * H * W``.

    ``G[b, i, j] = sum_{h, w} x[b, i, h, w] * x[b, j, h, w] / (C * H * W)``, as in Johnson et
    al. 2016, eq. 3 (Gatys et al. 2016 use the unnormalised sum). It is accumulated in
    float32 even under autocast, so bf16/fp16 features do not lose the sum; float64
    inputs stay float64.

    Args:
        x: features ``(B, C, H, W)``, any real values.

    Returns:
        ``(B, C, C)``, symmetric, positive semi-definite, float32 (or float64).

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
        >>> gram_matrix(x)
        tensor([[[1.2500, 2.7500],
                 [2.7500, 6.2500]]])
    """
    check_tensor(x, "gram_matrix input (features (B, C, H, W))", ndim=4)
    b, c, h, w = x.shape
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=x.device.type, enabled=False):
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # Channels-last features (the fast CPU path) are (B, H*W, C) in memory: read them
            # that way instead of copying them to (B, C, H*W) first. The same sum.
            f = x.permute(0, 2, 3, 1).reshape(b, h * w, c).to(dtype)
            return torch.bmm(f.transpose(1, 2), f).div_(c * h * w)
        f = x.reshape(b, c, h * w).to(dtype)
        return torch.bmm(f, f.transpose(1, 2)).div_(c * h * w)
