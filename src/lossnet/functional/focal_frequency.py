"""Focal frequency loss (Jiang, Dai, Wu & Loy, ICCV 2021): spectrum distance weighted towards the hard frequencies.

Per-pixel losses average errors over all frequencies, and a network learns the easy low
frequencies first; the high ones stay blurred. The focal frequency loss compares the images'
2-D discrete Fourier transforms and weights each frequency by how wrong it currently is:

``FFL = mean_{u,v} w(u, v) |F_x(u, v) - F_y(u, v)|^2``,
``w(u, v) = (|F_x(u, v) - F_y(u, v)|^alpha) / max_{u,v}(...)`` in [0, 1], not differentiated.

``F`` is the orthonormal DFT of each channel (of each patch, with ``patch_factor > 1``). The
weight is normalised by its maximum per image and channel (per batch with ``batch_matrix=True``),
optionally on a log scale (``log_matrix=True``: ``log(1 + |.|^alpha)``). It needs no network.
"""

from __future__ import annotations

import torch

from lossnet.errors import InputError
from lossnet.functional.reduction import reduce
from lossnet.validation import check_image, check_positive_int, check_same_shape, check_weight


def focal_frequency_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 1.0,
    patch_factor: int = 1,
    ave_spectrum: bool = False,
    log_matrix: bool = False,
    batch_matrix: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """The focal frequency loss between a prediction and a target (see the module docstring).

    Args:
        x: prediction ``(B, C, H, W)``, any value range (the loss is computed in float32 or float64).
        y: target, same shape (or batch 1).
        alpha: the focusing exponent of the weight (1 as in the paper; 0 weights all frequencies 1).
        patch_factor: cut each image into ``patch_factor x patch_factor`` patches first (H and W must
            be multiples of it); the spectrum of each patch is compared.
        ave_spectrum: compare the batch-averaged spectra (one value, repeated for every sample).
        log_matrix: weight by ``log(1 + |difference|^alpha)`` instead.
        batch_matrix: normalise the weight by its maximum over the whole batch, not per image and channel.
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.

    Returns:
        non-negative values; 0 for identical images.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> float(focal_frequency_loss(x, x))
        0.0
        >>> bool(focal_frequency_loss(x, torch.rand(2, 3, 16, 16)) > 0)
        True
    """
    check_image(x, "prediction")
    check_image(y, "target")
    check_same_shape(x, y)
    alpha = check_weight(alpha, "alpha")
    patch_factor = check_positive_int(patch_factor, "patch_factor")
    h, w = x.shape[-2:]
    if h % patch_factor or w % patch_factor:
        raise InputError(
            f"patch_factor {patch_factor} must divide the image size {h}x{w}; crop the images or choose a divisor"
        )
    fx, fy = _spectrum(x, patch_factor), _spectrum(y, patch_factor)
    if ave_spectrum:
        fx, fy = fx.mean(0, keepdim=True), fy.mean(0, keepdim=True)
    diff = fx - fy.expand_as(fx) if fy.shape[0] != fx.shape[0] else fx - fy
    distance = diff.real.square() + diff.imag.square()  # (B, P, C, h, w)
    with torch.no_grad():
        weight = distance.sqrt() ** alpha
        if log_matrix:
            weight = torch.log1p(weight)
        top = weight.amax() if batch_matrix else weight.amax(dim=(-2, -1), keepdim=True)
        weight = torch.nan_to_num(weight / top, nan=0.0).clamp_(0.0, 1.0)
    per_sample = (weight * distance).flatten(1).mean(1)
    if per_sample.shape[0] != x.shape[0]:  # ave_spectrum: one value for the batch
        per_sample = per_sample.expand(x.shape[0])
    return reduce(per_sample, reduction)


def _spectrum(x: torch.Tensor, patch_factor: int) -> torch.Tensor:
    """``(B, P, C, h, w)`` complex orthonormal 2-D DFT of each of the ``P = patch_factor^2`` patches."""
    b, c, h, w = x.shape
    ph, pw = h // patch_factor, w // patch_factor
    patches = x.reshape(b, c, patch_factor, ph, patch_factor, pw).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(b, patch_factor * patch_factor, c, ph, pw)
    if patches.dtype not in (torch.float32, torch.float64):
        patches = patches.float()  # the FFT of half precision is not supported on every device
    return torch.fft.fft2(patches, norm="ortho")
