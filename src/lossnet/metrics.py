"""Image-quality metrics: PSNR, SSIM, feature distance and LPIPS, as functions and modules.

PSNR and SSIM follow the conventions of the super-resolution literature when asked: the
luma channel only (``y_channel=True``, ITU-R BT.601 as MATLAB's ``rgb2ycbcr``) and a
border of ``shave`` pixels cropped from every side before scoring. Both are computed in
float64, so that a variance ``E[x^2] - E[x]^2`` does not cancel, and returned in the
input's dtype.

LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric") needs two things lossnet cannot ship: torchvision's ImageNet VGG16
and the published per-channel calibration weights (the ``vgg.pth`` file of the ``lpips``
project, BSD licence). Both are loaded from files; when the ImageNet VGG16 cannot be
had, :class:`LPIPS` raises :class:`LpipsUnavailableError` instead of computing a number
that is not LPIPS.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.weights import LoadedWeights, load_weights
from lossnet.errors import InputError, InputTypeError, WeightsError, WeightsUnavailableError
from lossnet.functional.criteria import CRITERIA, distance
from lossnet.functional.reduction import REDUCTIONS, reduce
from lossnet.validation import Range, check_choice, check_same_shape, check_tensor, check_weight

# ITU-R BT.601 luma for [0, 1] RGB, scaled to [16, 235] / 255 (MATLAB's rgb2ycbcr, used by SR papers).
_Y_OFFSET = 16.0 / 255.0
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)

#: SSIM constants of Wang et al. 2004: an 11x11 Gaussian window of standard deviation 1.5, K1, K2.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# -- shared preparation ------------------------------------------------------------------------


def _check_pair(x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
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
    x, y = _check_pair(x, y)
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


# -- feature distance ----------------------------------------------------------------------------

Backbone = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


def _layer_weights(layers: Mapping[str, float] | Iterable[str]) -> dict[str, float]:
    """``{"relu2_2": 0.5}`` or ``["relu2_2"]`` (weight 1) as a dict of checked weights."""
    if isinstance(layers, Mapping):
        return {str(k): check_weight(v, f"weight of layer {k!r}") for k, v in layers.items()}
    return {str(name): 1.0 for name in ([layers] if isinstance(layers, str) else layers)}


def feature_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    backbone: Backbone,
    layers: Mapping[str, float] | Iterable[str] | None = None,
    criterion: str = "mse",
    reduction: str = "mean",
) -> torch.Tensor:
    """Weighted distance between the features of two image batches, under any backbone.

    ``d(x, y) = sum_l w_l * mean_{c,h,w} criterion(phi_l(x) - phi_l(y))``, per image.

    Args:
        x: images ``(B, C, H, W)`` in the range the backbone expects.
        y: reference images, same shape (or batch 1).
        backbone: any callable that maps images to ``{layer: features (B, C_l, H_l, W_l)}``, e.g. a
            :class:`~lossnet.backbones.extractor.FeatureExtractor` (see :class:`FeatureDistance` to build one).
        layers: ``{layer: weight}``, or names (weight 1 each), among those the backbone returns;
            ``None`` takes every returned layer with weight 1.
        criterion: ``'mse'``, ``'l1'`` or ``'charbonnier'``.
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar.

    Returns:
        float32 (float64 for float64 features), 0 for identical inputs. Both inputs go through the
        backbone with autograd as the caller's context decides; wrap the call in ``torch.no_grad()``
        for evaluation.

    Example:
        >>> fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> feature_distance(x, x, fx, reduction="none")
        tensor([0., 0.])
    """
    x, y = _check_pair(x, y)
    check_choice(criterion, CRITERIA, "criterion")
    check_choice(reduction, REDUCTIONS, "reduction")
    if not callable(backbone):
        raise InputTypeError(
            f"backbone must be a callable returning {{layer: features}} (a FeatureExtractor, say); "
            f"got {type(backbone).__name__}"
        )
    fx, fy = backbone(x), backbone(y)
    weights = {name: 1.0 for name in fx} if layers is None else _layer_weights(layers)
    missing = [name for name in weights if name not in fx]
    if missing or not weights:
        raise InputError(f"the backbone returned layers {list(fx)}; cannot take {missing or 'no layer'}")
    total = sum(w * distance(fx[name], fy[name], criterion, "none") for name, w in weights.items())
    return reduce(total, reduction)  # type: ignore[arg-type]


class FeatureDistance(nn.Module):
    """:func:`feature_distance` with its own frozen VGG :class:`FeatureExtractor`.

    Args:
        arch: ``"vgg16"``, ``"vgg19"``, ... (see :data:`lossnet.ARCHS`).
        layers: ``{layer: weight}`` or names (weight 1).
        weights: ``"imagenet"``, ``"hed"``, ``"auto"``, a file path or ``None``.
        criterion: ``'mse'``, ``'l1'`` or ``'charbonnier'``.
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar.
        input_range: range of the images, ``(0, 1)``, ``(-1, 1)`` or ``(0, 255)``.

    Example:
        >>> d = FeatureDistance("vgg11", {"relu2_1": 1.0}, weights=None)
        >>> d(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).shape
        torch.Size([])
    """

    def __init__(
        self,
        arch: str = "vgg16",
        layers: Mapping[str, float] | Iterable[str] = ("relu2_2",),
        weights: str | os.PathLike[str] | LoadedWeights | None = "imagenet",
        criterion: str = "mse",
        reduction: str = "mean",
        input_range: Range = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.layers = _layer_weights(layers)
        self.criterion = check_choice(criterion, CRITERIA, "criterion")
        self.reduction = check_choice(reduction, REDUCTIONS, "reduction")
        self.extractor = FeatureExtractor(arch, list(self.layers), weights, input_range)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self.extractor.check(x, "x"), self.extractor.check(y, "y")
        return feature_distance(x, y, self._extract, self.layers, self.criterion, self.reduction)

    def _extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.extractor(x, validate=False)


# -- LPIPS ---------------------------------------------------------------------------------------

#: The VGG16 layers LPIPS compares, with their channel counts (the ``lin0`` .. ``lin4`` weights).
LPIPS_LAYERS: dict[str, int] = {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512, "relu5_3": 512}
#: The sha256 prefix of torchvision's ImageNet VGG16 file, the only backbone LPIPS is calibrated for.
IMAGENET_VGG16_ID = "imagenet:vgg16-397923af"
_LPIPS_EPS = 1e-10


class LpipsUnavailableError(WeightsUnavailableError):
    """LPIPS cannot be computed here: its ImageNet VGG16 (or its calibration file) cannot be had."""


def load_lpips_calibration(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read the published LPIPS-VGG calibration weights (the ``lpips`` project's ``weights/v0.1/vgg.pth``).

    The file holds five 1x1 convolution kernels, ``lin{i}.model.1.weight`` of shape ``(1, C_i, 1, 1)``
    for C = 64, 128, 256, 512, 512; they are read with ``torch.load(weights_only=True)``, so the file
    cannot run code.

    Returns:
        ``{layer: (C_l,) non-negative weights}`` keyed by :data:`LPIPS_LAYERS`' names.

    Raises:
        LpipsUnavailableError: the file does not exist.
        WeightsError: it is not such a file.
    """
    path = Path(path)
    if not path.is_file():
        raise LpipsUnavailableError(
            f"LPIPS calibration file not found: {path}. It is weights/v0.1/vgg.pth of the lpips project "
            "(github.com/richzhang/PerceptualSimilarity, BSD licence); download it and pass its path."
        )
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types on garbage or on refused pickles
        raise WeightsError(f"could not read {path} as an LPIPS calibration file (.pth state dict): {err}") from None
    if not isinstance(sd, Mapping):
        raise WeightsError(f"{path} must hold a state dict of lin0..lin4 weights; got {type(sd).__name__}")
    out: dict[str, torch.Tensor] = {}
    for i, (layer, channels) in enumerate(LPIPS_LAYERS.items()):
        key = f"lin{i}.model.1.weight"
        w = sd.get(key)
        if not isinstance(w, torch.Tensor) or tuple(w.shape) != (1, channels, 1, 1):
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else "missing"
            raise WeightsError(
                f"{path} is not an LPIPS-VGG calibration file: expected {key} of shape (1, {channels}, 1, 1), "
                f"got {got} (keys: {sorted(sd)[:6]}). Use the vgg.pth of lpips v0.1, not the alex or squeeze one."
            )
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise WeightsError(f"{path}: {key} must be finite and non-negative, as published LPIPS weights are")
        out[layer] = w.detach().float().flatten().clone()
    return out


def _unit_normalise(f: torch.Tensor) -> torch.Tensor:
    """Divide every feature vector (over channels) by its Euclidean norm (plus 1e-10)."""
    return f / (f.square().sum(1, keepdim=True).sqrt() + _LPIPS_EPS)


def lpips_from_features(
    fx: Mapping[str, torch.Tensor], fy: Mapping[str, torch.Tensor], calibration: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """LPIPS distance from the VGG16 features of two batches (Zhang et al. 2018, eq. 1).

    ``d = sum_l mean_{h,w} sum_c w_{l,c} (f^x_{l,chw} - f^y_{l,chw})^2``, where ``f`` are the
    activations unit-normalised over channels at every position and ``w_l`` the calibration.

    Args:
        fx, fy: ``{layer: (B, C_l, H_l, W_l)}`` for the five :data:`LPIPS_LAYERS` (``fy`` may have batch 1).
        calibration: ``{layer: (C_l,)}`` non-negative weights, from :func:`load_lpips_calibration`.

    Returns:
        ``(B,)`` float32 distances, 0 for identical features.
    """
    total: torch.Tensor | float = 0.0
    for layer, w in calibration.items():
        a, b = _unit_normalise(fx[layer].float()), _unit_normalise(fy[layer].float())
        per_position = ((a - b).square() * w.to(a).view(1, -1, 1, 1)).sum(1)
        total = total + per_position.flatten(1).mean(1)
    return total  # type: ignore[return-value]


class LPIPS(nn.Module):
    """The LPIPS-VGG perceptual distance (Zhang et al. 2018), lower is more similar.

    LPIPS is the published calibration applied to torchvision's ImageNet VGG16; with any other
    network the number is not LPIPS. So the default ``strict=True`` accepts only those weights
    (``weights="imagenet"`` or a local copy of ``vgg16-397923af.pth``) and raises
    :class:`LpipsUnavailableError` when they cannot be had, e.g. offline with an empty
    ``torch.hub`` cache. ``strict=False`` lets any VGG16 weights through, for tests and
    experiments, with a result that must not be reported as LPIPS.

    Args:
        calibration: path of the lpips project's ``weights/v0.1/vgg.pth``, or the dict that
            :func:`load_lpips_calibration` returns.
        weights: the VGG16 weights: ``"imagenet"`` (torch.hub), a file path, ``None`` (random,
            ``strict=False`` only) or a :class:`~lossnet.backbones.weights.LoadedWeights`.
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar.
        input_range: range of the images: ``(0, 1)`` (the default here), ``(-1, 1)`` (LPIPS's own
            convention) or ``(0, 255)``. Torchvision's ImageNet normalisation of ``(0, 1)`` images
            is exactly LPIPS's scaling layer of ``(-1, 1)`` images.
        strict: refuse weights other than torchvision's ImageNet VGG16.

    Shape:
        ``x``, ``y``: ``(B, 3, H, W)`` (``y`` may have batch 1), at least 16x16, in ``input_range``.

    Example:
        >>> cal = {name: torch.rand(c) for name, c in LPIPS_LAYERS.items()}
        >>> metric = LPIPS(cal, weights=None, reduction="none", strict=False)  # random VGG16: not LPIPS
        >>> x = torch.rand(2, 3, 32, 32)
        >>> metric(x, x)
        tensor([0., 0.])
    """

    def __init__(
        self,
        calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor],
        weights: str | os.PathLike[str] | LoadedWeights | None = "imagenet",
        reduction: str = "mean",
        input_range: Range = (0.0, 1.0),
        strict: bool = True,
    ) -> None:
        super().__init__()
        self.reduction = check_choice(reduction, REDUCTIONS, "reduction")
        cal = calibration if isinstance(calibration, Mapping) else load_lpips_calibration(calibration)
        for layer, channels in LPIPS_LAYERS.items():
            w = cal.get(layer)
            if not isinstance(w, torch.Tensor) or w.numel() != channels:
                raise WeightsError(f"LPIPS calibration needs {layer}: {channels} weights; got {getattr(w, 'shape', w)}")
        loaded = weights if isinstance(weights, LoadedWeights) else _lpips_backbone(weights, strict)
        if strict and not _is_imagenet_vgg16(loaded):
            raise LpipsUnavailableError(
                f"LPIPS is calibrated for torchvision's ImageNet VGG16 ({IMAGENET_VGG16_ID}); got {loaded.description}. "
                "Pass weights='imagenet' (or the path of vgg16-397923af.pth), or strict=False for an uncalibrated "
                "distance that must not be reported as LPIPS."
            )
        self.weights_id = loaded.id
        self.extractor = FeatureExtractor("vgg16", list(LPIPS_LAYERS), loaded, input_range)
        for layer in LPIPS_LAYERS:
            self.register_buffer(f"lin_{layer}", cal[layer].detach().float().flatten().clone())

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS of ``x`` against ``y``: ``(B,)`` for ``reduction='none'``, else a scalar."""
        x, y = self.extractor.check(x, "x"), self.extractor.check(y, "y")
        check_same_shape(x, y)
        if x.shape[1] != 3:
            raise InputError(f"LPIPS compares RGB images (B, 3, H, W); got {tuple(x.shape)}. Repeat grey images to 3")
        calibration = {layer: getattr(self, f"lin_{layer}") for layer in LPIPS_LAYERS}
        d = lpips_from_features(self.extractor(x, validate=False), self.extractor(y, validate=False), calibration)
        return reduce(d, self.reduction)


def _is_imagenet_vgg16(loaded: LoadedWeights) -> bool:
    """Whether these are torchvision's ImageNet VGG16 weights (from torch.hub, or a file with the same sha256)."""
    digest = IMAGENET_VGG16_ID.rsplit("-", 1)[1]
    return loaded.id == IMAGENET_VGG16_ID or (loaded.id.startswith("file:") and loaded.id.endswith(f":{digest}"))


def _lpips_backbone(weights: str | os.PathLike[str] | None, strict: bool) -> LoadedWeights:
    if strict and (weights is None or weights in ("hed", "auto")):
        raise LpipsUnavailableError(
            f"LPIPS needs torchvision's ImageNet VGG16 weights; weights={weights!r} is another network and would "
            "give a number that is not LPIPS. Pass weights='imagenet' (or the path of vgg16-397923af.pth)."
        )
    try:
        return load_weights("vgg16", weights)
    except WeightsUnavailableError as err:
        raise LpipsUnavailableError(
            f"LPIPS is unavailable: it is only meaningful with torchvision's ImageNet VGG16 weights, and they "
            f"cannot be had here ({err}) No other weights are substituted; report LPIPS as unavailable."
        ) from None


def lpips(
    x: torch.Tensor,
    y: torch.Tensor,
    calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    weights: str | os.PathLike[str] | LoadedWeights | None = "imagenet",
    reduction: str = "mean",
    input_range: Range = (0.0, 1.0),
) -> torch.Tensor:
    """Functional LPIPS-VGG: builds an :class:`LPIPS` (strict) and applies it under ``no_grad``.

    Building loads the VGG16 every call; keep an :class:`LPIPS` module to score many batches.

    Raises:
        LpipsUnavailableError: torchvision's ImageNet VGG16 weights cannot be had (offline, say),
            or the calibration file is missing.
    """
    metric = LPIPS(calibration, weights, reduction, input_range).to(x.device)
    with torch.no_grad():
        return metric(x, y)
