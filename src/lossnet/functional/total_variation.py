"""Total-variation regularisation (Rudin, Osher & Fatemi 1992; used by Johnson et al. 2016)."""

from __future__ import annotations

import torch

from lossnet.functional.reduction import reduce
from lossnet.validation import check_choice, check_tensor

TV_KINDS: tuple[str, ...] = ("anisotropic", "isotropic")


def total_variation(
    x: torch.Tensor, kind: str = "anisotropic", reduction: str = "mean", eps: float = 1e-8
) -> torch.Tensor:
    """Total variation of images, per pixel.

    - ``anisotropic`` (L1): ``(sum |x[h+1, w] - x[h, w]| + sum |x[h, w+1] - x[h, w]|) / (C H W)``.
    - ``isotropic`` (L2): ``sum (sqrt(dh^2 + dw^2 + eps) - sqrt(eps)) / (C H W)`` over the
      ``(H-1) x (W-1)`` positions where both differences exist. ``eps`` inside the root keeps
      the gradient finite where the image is flat; subtracting ``sqrt(eps)`` makes a flat image
      score exactly 0.

    Dividing by ``C H W`` (rather than summing, as kornia does) makes a weight mean the same
    at every resolution.

    Args:
        x: images ``(B, C, H, W)``, any range.
        kind: ``'anisotropic'`` or ``'isotropic'``.
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.
        eps: smoothing inside the square root (isotropic only).

    Example:
        >>> total_variation(torch.eye(10).view(1, 1, 10, 10))  # 36 unit steps over 100 pixels
        tensor(0.3600)
    """
    check_tensor(x, "input", ndim=4)
    check_choice(kind, TV_KINDS, "TV kind")
    b, c, h, w = x.shape
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    if kind == "anisotropic":
        per_sample = dh.abs().flatten(1).sum(1) + dw.abs().flatten(1).sum(1)
    else:
        grad = dh[:, :, :, :-1].square() + dw[:, :, :-1, :].square()
        # Both roots see eps rounded to the input's dtype, so a flat image gives exactly 0.
        floor = torch.sqrt(grad.new_tensor(eps))
        per_sample = (torch.sqrt(grad + eps) - floor).flatten(1).sum(1)
    return reduce(per_sample / (c * h * w), reduction)
