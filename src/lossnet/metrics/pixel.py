"""Pixel metrics: PSNR and SSIM (and the luma channel they may score), as functions and modules.

PSNR and SSIM follow the conventions of the super-resolution literature when asked: the
luma channel only (``y_channel=True``, ITU-R BT.601 as MATLAB's ``rgb2ycbcr``) and a
border of ``shave`` pixels cropped from every side before scoring. Both are computed in
float64, so that a variance ``E[x^2] - E[x]^2`` does not cancel, and returned in the
input's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lossnet.errors import InputError, InputTypeError
from lossnet.functional.reduction import REDUCTIONS, reduce
from lossnet.validation import check_choice, check_same_shape, check_tensor

# ITU-R BT.601 luma for [0, 1] RGB, scaled to [16, 235] / 255 (MATLAB's rgb2ycbcr, used by SR papers).
_Y_OFFSET = 16.0 / 255.0
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)

#: SSIM constants of Wang et al. 2004: an 11x11 Gaussian window of standard deviation 1.5, K1, K2.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# -- shared preparation ------------------------------------------------------------------------


def check_pair(x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two image batches ``(B, C, H, W)`` of one shape (or ``y`` of batch 1) on one device."""
    x = check_tensor(x, "x (images (B, C, H, W))", ndim=4)
    y = check_tensor(y, "y (reference images (B, C, H, W))", ndim=4)
    check_same_shape(x, y)
    if x.device != y.device:
        raise InputError(f"x is on {x.device} but y is on {y.device}; move one of them, e.g. y.to(x.device)")
    return x, y


def _check_data_range(data_range: object) -> float:
    try:
        value = float(data_range)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputTypeError(
            f"data_range must be a number (1.0 for [0, 1] images, 255 for [0, 255]); got {data_range!r}"
        ) from None
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"data_range must be a finite number > 0 (1.0 or 255, say); got {value}")
    return value


def rgb_to_y(x: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Luma of RGB images as super-resolution papers compute it (ITU-R BT.601, MATLAB ``rgb2ycbcr``).

    ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` for RGB in [0, 1], so Y spans
    [16/255, 235/255]; the result is scaled back to ``data_range``.

    Args:
        x: RGB images ``(B, 3, H, W)`` in ``[0, data_range]``.
        data_range: the span of the value range (1 or 255).

    Returns:
        ``(B, 1, H, W)`` in ``[16/255 * data_range, 235/255 * data_range]``, same dtype as ``x``.

    Example:
        >>> rgb_to_y(torch.ones(1, 3, 1, 1)).flatten()
        tensor([0.9216])
    """
    check_tensor(x, "x (RGB images (B, 3, H, W))", ndim=4)
    if x.shape[1] != 3:
        raise InputError(
            f"the Y channel is computed from RGB images (B, 3, H, W); got {tuple(x.shape)}. "
            "Pass y_channel=False for grey or already-converted images."
        )
    w = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True) + _Y_OFFSET * data_range


def _prepare(
    x: torch.Tensor, y: torch.Tensor, data_range: float, y_channel: bool, shave: int, min_size: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check, convert to float64, take the Y channel and shave the border."""
    x, y = check_pair(x, y)
    if isinstance(shave, bool) or not isinstance(shave, int) or shave < 0:
        raise InputTypeError(f"shave must be an int >= 0 (the scale factor, for super-resolution); got {shave!r}")
    x, y = x.double(), y.double()
    if y_channel:
        x, y = rgb_to_y(x, data_range), rgb_to_y(y, data_range)
    h, w = x.shape[-2:]
    if min(h, w) - 2 * shave < min_size:
        raise InputError(
            f"images of {h}x{w} pixels with shave={shave} leave {h - 2 * shave}x{w - 2 * shave}, but at least "
            f"{min_size}x{min_size} are needed; use a smaller shave or larger images"
        )
    if shave:
        x, y = x[..., shave:-shave, shave:-shave], y[..., shave:-shave, shave:-shave]
    return x, y


# -- PSNR ----------------------------------------------------------------------------------------


def psnr(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    y_channel: bool = False,
    shave: int = 0,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``, per image.

    Args:
        x: images ``(B, C, H, W)`` in ``[0, data_range]``.
        y: reference images, same shape (or batch 1).
        data_range: the span of the value range (1 for [0, 1] images, 255 for [0, 255]).
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar (mean of the per-image dB values).
        y_channel: score the BT.601 luma of RGB images (see :func:`rgb_to_y`), as super-resolution
            papers do; needs C = 3.
        shave: pixels cropped from every border first (super-resolution papers shave the scale factor).

    Identical images give ``inf``. The MSE is taken in float64.

    Example:
        >>> psnr(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.1))
        tensor(20.)
        >>> x = torch.zeros(1, 3, 8, 8)
        >>> psnr(x, x + 0.1, y_channel=True, shave=2).round(decimals=2)  # luma weights sum to 219/255
        tensor(21.3200)
    """
    data_range = _check_data_range(data_range)
    check_choice(reduction, REDUCTIONS, "reduction")
    a, b = _prepare(x, y, data_range, y_channel, shave)
    mse = (a - b).square().flatten(1).mean(1)
    return reduce((10 * torch.log10(data_range**2 / mse)).to(x.dtype), reduction)


class _PixelMetric(nn.Module):
    """Module form of a full-reference pixel metric ``fn(x, y, data_range, reduction, y_channel, shave)``."""

    fn: Callable[..., torch.Tensor]

    def __init__(
        self, data_range: float = 1.0, reduction: str = "mean", y_channel: bool = False, shave: int = 0
    ) -> None:
        super().__init__()
        self.data_range, self.reduction, self.y_channel, self.shave = data_range, reduction, y_channel, shave

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return type(self).fn(x, y, self.data_range, self.reduction, self.y_channel, self.shave)


class PSNR(_PixelMetric):
    """Module form of :func:`psnr`; takes the same arguments."""

    fn = staticmethod(psnr)


# -- SSIM ----------------------------------------------------------------------------------------


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (coords / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel, 'valid' (no padding): (B, C, H, W) -> (B, C, H-k+1, W-k+1)."""
    c, k = x.shape[1], window.numel()
    x = F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """The local SSIM index of Wang et al. 2004 (eq. 13) at every position where the window fits.

    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))`` with
    Gaussian-weighted local statistics (11x11 window, sigma 1.5, population covariance),
    ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2``, L = ``data_range``.

    Args:
        x: images ``(B, C, H, W)``, H and W at least 11, values in ``[0, data_range]``.
        y: reference images, same shape (or batch 1).
        data_range: the span of the value range, L above.

    Returns:
        ``(B, C, H - 10, W - 10)`` in [-1, 1], in ``x``'s dtype (computed in float64).

    Example:
        >>> x = torch.rand(1, 1, 16, 16)
        >>> ssim_map(x, x).shape
        torch.Size([1, 1, 6, 6])
    """
    data_range = _check_data_range(data_range)
    a, b = _prepare(x, y, data_range, False, 0, min_size=SSIM_WINDOW)
    return _ssim_map(a, b, data_range).to(x.dtype)


def _ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float) -> torch.Tensor:
    if b.shape[0] != a.shape[0]:
        b = b.expand_as(a)
    window = _gaussian_window(SSIM_WINDOW, SSIM_SIGMA, a.dtype, a.device)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    # One filtering pass over the five statistics: x, y, x^2, y^2, xy.
    stats = _blur_valid(torch.cat([a, b, a * a, b * b, a * b], dim=1), window)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.chunk(5, dim=1)
    var_x, var_y, cov = e_xx - mu_x**2, e_yy - mu_y**2, e_xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return num / den


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    y_channel: bool = False,
    shave: int = 0,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), the mean of :func:`ssim_map` per image.

    The same computation as scikit-image's ``structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=data_range)``: the map is averaged over
    the positions where the 11x11 window fits (no padding), and over the channels of a
    colour image. Wang et al.'s MATLAB code first downsamples images larger than 256 pixels;
    this function, like scikit-image, does not.

    Args:
        x: images ``(B, C, H, W)`` in ``[0, data_range]``; after ``shave``, H and W must be at least 11.
        y: reference images, same shape (or batch 1).
        data_range: the span of the value range (1 for [0, 1] images, 255 for [0, 255]).
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar.
        y_channel: score the BT.601 luma of RGB images (see :func:`rgb_to_y`); needs C = 3.
        shave: pixels cropped from every border first.

    Returns:
        values in [-1, 1], 1 for identical images; differentiable.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> ssim(x, x)
        tensor(1.)
        >>> ssim(x, 1 - x, reduction="none").shape
        torch.Size([2])
    """
    data_range = _check_data_range(data_range)
    check_choice(reduction, REDUCTIONS, "reduction")
    a, b = _prepare(x, y, data_range, y_channel, shave, min_size=SSIM_WINDOW)
    per_image = _ssim_map(a, b, data_range).flatten(1).mean(1)
    return reduce(per_image.to(x.dtype), reduction)


class SSIM(_PixelMetric):
    """Module form of :func:`ssim`; takes the same arguments."""

    fn = staticmethod(ssim)
