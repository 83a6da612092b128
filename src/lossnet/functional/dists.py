"""DISTS (Ding, Ma, Wang & Simoncelli, TPAMI 2020): structure and texture similarity of deep features.

DISTS compares six sets of maps: the image itself and five stages of a VGG16 whose max-pools
are replaced by L2 pooling (:mod:`lossnet.backbones.pooling`), at ``relu1_2``, ``relu2_2``,
``relu3_3``, ``relu4_3`` and ``relu5_3``. For every channel of every stage, with spatial means
``mu``, variances ``var`` and covariance ``cov``:

- texture: ``t = (2 mu_x mu_y + c) / (mu_x^2 + mu_y^2 + c)``;
- structure: ``s = (2 cov_xy + c) / (var_x + var_y + c)``, ``c = 1e-6``;

and ``DISTS = 1 - sum_channels (alpha t + beta s)`` with the learned, jointly normalised
weights ``alpha`` and ``beta`` (:func:`lossnet.backbones.calibration.dists_weights`). 0 for
identical images; lower is more similar.

The number is the published DISTS only with torchvision's ImageNet VGG16 and the published
alpha/beta, on images in [0, 1] with ImageNet normalisation; with another trunk it is a
DISTS-style distance, and lossnet labels it so.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lossnet.errors import InputError
from lossnet.functional.reduction import reduce

#: Channels DISTS compares: the image itself, then the five stages of its L2-pooled VGG16.
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
#: The VGG16 layers DISTS compares after the image itself.
DISTS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_C = 1e-6


def dists_from_features(
    fx: Sequence[torch.Tensor],
    fy: Sequence[torch.Tensor],
    alpha: torch.Tensor,
    beta: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """DISTS from the six maps of each image (the image, then the five L2-pooled VGG16 stages).

    Args:
        fx, fy: ``[(B, C_k, H_k, W_k)]`` for ``C_k`` in :data:`DISTS_CHANNELS`
            (``fy`` may have batch 1).
        alpha, beta: ``(1475,)`` non-negative weights; they are divided by their joint sum here.
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.

    Returns:
        ``1 - similarity``: 0 for identical maps, float32 (float64 for float64 maps).

    Example:
        >>> maps = [torch.rand(2, c, 4, 4) for c in (3, 64, 128, 256, 512, 512)]
        >>> w = torch.full((1475,), 1.0)
        >>> dists_from_features(maps, maps, w, w, reduction="none").abs().max() < 1e-6
        tensor(True)
    """
    if len(fx) != len(DISTS_CHANNELS) or len(fy) != len(DISTS_CHANNELS):
        raise InputError(f"DISTS compares {len(DISTS_CHANNELS)} maps per image (the image + 5 stages); got {len(fx)} and {len(fy)}")
    total = sum(DISTS_CHANNELS)
    if alpha.numel() != total or beta.numel() != total:
        raise InputError(f"alpha and beta must hold {total} values each; got {alpha.numel()} and {beta.numel()}")
    dtype = torch.float64 if fx[0].dtype == torch.float64 else torch.float32
    norm = (alpha.sum() + beta.sum()).to(dtype)
    alphas = torch.split(alpha.to(device=fx[0].device, dtype=dtype).flatten() / norm.to(fx[0].device), DISTS_CHANNELS)
    betas = torch.split(beta.to(device=fx[0].device, dtype=dtype).flatten() / norm.to(fx[0].device), DISTS_CHANNELS)
    similarity: torch.Tensor | float = 0.0
    for x, y, a, b, channels in zip(fx, fy, alphas, betas, DISTS_CHANNELS, strict=True):
        if x.shape[1] != channels or y.shape[1:] != x.shape[1:]:
            raise InputError(
                f"DISTS stage maps must have {channels} channels and the same shape; got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        x, y = x.to(dtype), y.to(dtype)
        mx, my = x.mean((2, 3)), y.mean((2, 3))
        texture = (2 * mx * my + _C) / (mx.square() + my.square() + _C)
        vx = (x - mx[..., None, None]).square().mean((2, 3))
        vy = (y - my[..., None, None]).square().mean((2, 3))
        cov = (x * y).mean((2, 3)) - mx * my
        structure = (2 * cov + _C) / (vx + vy + _C)
        similarity = similarity + (texture * a).sum(1) + (structure * b).sum(1)
    return reduce(1.0 - similarity, reduction)  # type: ignore[operator]
