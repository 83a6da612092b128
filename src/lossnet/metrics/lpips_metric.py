"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric").

LPIPS needs two things lossnet cannot ship: torchvision's ImageNet VGG16 and the published
per-channel calibration weights (the ``vgg.pth`` file of the ``lpips`` project, BSD licence).
Both are loaded from files; when the ImageNet VGG16 cannot be had, :class:`LPIPS` raises
:class:`~lossnet.errors.LpipsUnavailableError` instead of computing a number that is not LPIPS.
The distance itself is the term engine's LPIPS term (:class:`lossnet.terms.LpipsTerm`).

The lpips project released two versions of the heads, and its trunk sees a different input under
each (:data:`lossnet.backbones.calibration.LPIPS_TRUNK_INPUT`): v0.1 (the default) the ImageNet
normalisation, v0.0 the unscaled ``2x - 1``. :class:`LPIPS` owns its trunk and gives each version's
heads their own input, so v0.0 numbers are the lpips reference's ``version='0.0'`` numbers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from lossnet.backbones.calibration import LPIPS_TRUNK_INPUT, LPIPS_VERSIONS, lpips_calibration
from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.preprocessing import Preprocess
from lossnet.backbones.weights import LoadedWeights, imagenet_digest, imagenet_name
from lossnet.errors import InputError, LpipsUnavailableError, WeightsUnavailableError
from lossnet.functional.reduction import REDUCTIONS, reduce
from lossnet.terms import LpipsTerm, TermEngine, check_published, lpips_distance
from lossnet.validation import Range, check_choice, check_same_shape

#: The VGG16 layers LPIPS compares, with their channel counts (the ``lin0`` .. ``lin4`` weights).
LPIPS_LAYERS: dict[str, int] = {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512, "relu5_3": 512}
#: torchvision's ImageNet VGG16 (its weights id), the only backbone LPIPS is calibrated for.
IMAGENET_VGG16_ID = f"imagenet:vgg16-{imagenet_digest('vgg16')}"
_NAMES = {"vgg16": "VGG16", "alexnet": "AlexNet", "squeezenet1_1": "SqueezeNet 1.1"}

__all__ = [
    "IMAGENET_VGG16_ID",
    "LPIPS",
    "LPIPS_LAYERS",
    "LpipsUnavailableError",
    "load_lpips_calibration",
    "lpips",
    "lpips_from_features",
]


def load_lpips_calibration(path: str | os.PathLike[str] | None = None) -> dict[str, torch.Tensor]:
    """Read the published LPIPS-VGG calibration weights (the ``lpips`` project's ``weights/v0.1/vgg.pth``).

    The file holds five 1x1 convolution kernels, ``lin{i}.model.1.weight`` of shape ``(1, C_i, 1, 1)``
    for C = 64, 128, 256, 512, 512; they are read with ``torch.load(weights_only=True)``, so the file
    cannot run code (:func:`lossnet.backbones.calibration.lpips_heads`).

    Args:
        path: the file, or ``None`` for the one in the installed ``lpips`` wheel, found without
            importing it (``pip install --no-deps lpips==0.1.4``; ``make install`` does).

    Returns:
        ``{layer: (C_l,) non-negative weights}`` keyed by :data:`LPIPS_LAYERS`' names.

    Raises:
        LpipsUnavailableError: the file does not exist, or no path and lpips is not installed.
        WeightsError: it is not such a file.
    """
    try:
        cal = lpips_calibration("vgg16", path)
    except WeightsUnavailableError as err:
        raise LpipsUnavailableError(f"{err}. It is weights/v0.1/vgg.pth of the lpips project (BSD licence).") from None
    return cal.heads


def lpips_from_features(
    fx: Mapping[str, torch.Tensor], fy: Mapping[str, torch.Tensor], calibration: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """LPIPS distance from the VGG16 features of two batches (Zhang et al. 2018, eq. 1).

    ``d = sum_l mean_{h,w} sum_c w_{l,c} (f^x_{l,chw} - f^y_{l,chw})^2``, where ``f`` are the
    activations unit-normalised over channels at every position and ``w_l`` the calibration
    (the engine's :func:`lossnet.terms.lpips_distance`).

    Args:
        fx, fy: ``{layer: (B, C_l, H_l, W_l)}`` for the five :data:`LPIPS_LAYERS` (``fy`` may have batch 1).
        calibration: ``{layer: (C_l,)}`` non-negative weights, from :func:`load_lpips_calibration`.

    Returns:
        ``(B,)`` float32 distances, 0 for identical features.
    """
    return lpips_distance(fx, fy, calibration)


class LPIPS(nn.Module):
    """The LPIPS perceptual distance (Zhang et al. 2018), lower is more similar; VGG16 by default.

    LPIPS is the published calibration applied to torchvision's ImageNet trunk; with any other
    network the number is not LPIPS. So the default ``strict=True`` accepts only those weights
    (what the default ``weights="auto"`` loads where it can, ``weights="imagenet"``, or a local copy of
    ``vgg16-397923af.pth``) and the published heads, and raises :class:`LpipsUnavailableError` when
    they cannot be had, e.g. offline with an empty ``torch.hub`` cache, where ``"auto"`` falls back to HED.
    ``strict=False`` lets any weights through, for tests and experiments, with a result that must not
    be reported as LPIPS (:attr:`published` is then ``False``, and a warning is logged).

    Args:
        calibration: the heads: ``None`` (the installed lpips wheel's file of ``version`` for ``arch``), a
            path of the lpips project's ``weights/v0.1/<net>.pth`` (or ``v0.0``), or ``{layer: (C_l,)}``
            weights (as :func:`load_lpips_calibration` returns for VGG16).
        weights: the trunk's weights: ``"auto"`` (default: ImageNet where it can be had; where it falls
            back to HED, ``strict`` refuses it as it refuses ``"hed"``), ``"imagenet"`` (torch.hub), a file
            path, ``None`` (random, ``strict=False`` only) or a :class:`~lossnet.backbones.weights.LoadedWeights`.
        reduction: ``'none'`` gives ``(B,)``; ``'mean'``/``'sum'`` a scalar.
        input_range: range of the images: ``(0, 1)`` (the default here), ``(-1, 1)`` (LPIPS's own
            convention) or ``(0, 255)``. Torchvision's ImageNet normalisation of ``(0, 1)`` images
            is exactly LPIPS v0.1's scaling layer of ``(-1, 1)`` images.
        strict: refuse a trunk or calibration other than the published ones.
        arch: the trunk: ``"vgg16"`` (LPIPS-VGG, the default), ``"alexnet"`` (LPIPS-Alex, the lpips
            project's default metric) or ``"squeezenet1_1"``.
        spatial: return the LPIPS map ``(B, 1, H, W)`` instead of one number per image, as the lpips
            reference's ``spatial=True`` (each layer's map upsampled bilinearly and summed);
            ``reduction`` is then not applied.
        version: the lpips release, as the reference's ``version=``: ``"0.1"`` or ``"0.0"``. It picks the
            wheel's file when ``calibration`` is ``None``, and the trunk's input: v0.1 heads get the
            ImageNet normalisation, v0.0 heads the unscaled ``2x - 1`` of a [0, 1] image, as the
            reference gives them. ``None`` (default): read from the heads when they are a published file,
            else v0.1. A published file of the other version than the one asked for is refused.

    Shape:
        ``x``, ``y``: ``(B, 3, H, W)`` (``y`` may have batch 1) in ``input_range``, at least the trunk's
        minimum size (16x16 for VGG16).

    Example:
        >>> cal = {name: torch.rand(c) for name, c in LPIPS_LAYERS.items()}
        >>> metric = LPIPS(cal, weights=None, reduction="none", strict=False)  # random VGG16: not LPIPS
        >>> x = torch.rand(2, 3, 32, 32)
        >>> metric(x, x)
        tensor([0., 0.])
        >>> LPIPS(cal, weights=None, strict=False, spatial=True)(x, torch.rand(1, 3, 32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
        weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
        reduction: str = "mean",
        input_range: Range = (0.0, 1.0),
        strict: bool = True,
        arch: str = "vgg16",
        spatial: bool = False,
        version: str | None = None,
    ) -> None:
        super().__init__()
        self.reduction = check_choice(reduction, REDUCTIONS, "reduction")
        self.spatial = bool(spatial)
        if version is not None:
            check_choice(version, LPIPS_VERSIONS, "LPIPS version")
        try:
            cal = lpips_calibration(arch, calibration, version or "0.1")
        except WeightsUnavailableError as err:
            raise LpipsUnavailableError(f"{err}. It is weights/v0.1/<net>.pth of the lpips project (BSD licence).") from None
        if version is not None and cal.version is not None and cal.version != version:
            raise InputError(
                f"the LPIPS heads {cal.source} are the lpips v{cal.version} release, but version={version!r} was asked "
                f"for; pass version={cal.version!r} (or None, read from the heads) or the v{version} file"
            )
        #: The release whose input the trunk gets: the heads' own, else the one asked for, else v0.1.
        self.version: str = cal.version or version or "0.1"
        self.extractor = _lpips_extractor(arch, list(cal.heads), weights, input_range, strict)
        # Both releases are published, each on its own input, which this metric gives below.
        self.published = check_published("lpips", self.extractor, cal.version is not None, strict)
        if self.version == "0.0":
            # The reference leaves v0.0's 2x - 1 unscaled; the trunk was checked above as ImageNet's, and only its
            # input changes (with the ImageNet normalisation, v0.0 numbers were 12-36% off the reference's).
            self.extractor.preprocess = Preprocess(LPIPS_TRUNK_INPUT["0.0"], self.extractor.input_range)
        self.weights_id = self.extractor.weights_id
        self.engine = TermEngine([LpipsTerm(cal.heads, published=self.published, key="lpips")])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS of ``x`` against ``y``: ``(B,)`` for ``reduction='none'``, else a scalar; a map with ``spatial``."""
        x, y = self.extractor.check(x, "x"), self.extractor.check(y, "y")
        check_same_shape(x, y)
        if x.shape[1] != 3:
            raise InputError(f"LPIPS compares RGB images (B, 3, H, W); got {tuple(x.shape)}. Repeat grey images to 3")
        if self.spatial:
            return self.engine.maps(self.extractor, x, y, target_grad=True)["lpips"]
        d = self.engine.per_sample(self.extractor, x, y, target_grad=True)["lpips"]
        return reduce(d, self.reduction)


def _lpips_extractor(
    arch: str,
    layers: list[str],
    weights: str | os.PathLike[str] | LoadedWeights | None,
    input_range: Range,
    strict: bool,
) -> FeatureExtractor:
    # "auto" is let through: it is LPIPS's trunk where ImageNet's file can be had, and check_published
    # refuses its HED fallback.
    if strict and (weights is None or (isinstance(weights, str) and weights == "hed")):
        raise LpipsUnavailableError(
            f"LPIPS needs torchvision's ImageNet {_NAMES.get(arch, arch)} weights; weights={weights!r} is another network and would "
            f"give a number that is not LPIPS. Pass weights='imagenet' (or the path of its file: {imagenet_name(arch)}.pth)."
        )
    try:
        return FeatureExtractor(arch, layers, weights, input_range)
    except WeightsUnavailableError as err:
        raise LpipsUnavailableError(
            f"LPIPS is unavailable: it is only meaningful with torchvision's ImageNet {_NAMES.get(arch, arch)} weights, and they "
            f"cannot be had here ({err}) No other weights are substituted; report LPIPS as unavailable."
        ) from None


def lpips(
    x: torch.Tensor,
    y: torch.Tensor,
    calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
    reduction: str = "mean",
    input_range: Range = (0.0, 1.0),
    version: str | None = None,
) -> torch.Tensor:
    """Functional LPIPS-VGG: builds an :class:`LPIPS` (strict) and applies it under ``no_grad``.

    Building loads the VGG16 every call; keep an :class:`LPIPS` module to score many batches.

    Raises:
        LpipsUnavailableError: torchvision's ImageNet VGG16 weights cannot be had (offline, say),
            or the calibration file is missing.
    """
    metric = LPIPS(calibration, weights, reduction, input_range, version=version).to(x.device)
    with torch.no_grad():
        return metric(x, y)
