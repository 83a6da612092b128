"""The calibrated terms, LPIPS and DISTS, and the one rule for when their numbers are the published metrics.

LPIPS (Zhang et al. 2018) and DISTS (Ding et al. 2020) are learned weightings of an ImageNet
trunk's features. Their numbers are the published metrics only with that trunk (torchvision's
ImageNet weights, torch preprocessing) and the published calibration file; :func:`check_published`
decides, in one place, for every configuration that builds these terms. With ``strict=True`` anything
else is refused; with ``strict=False`` it is allowed, logged once, and the term is named
``"lpips_like"`` / ``"dists_like"`` instead of ``"lpips"`` / ``"dists"`` in every output (terms dicts,
training logs, CSV columns), so the number cannot be mistaken for the metric.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.weights import is_imagenet, parse_weights_id
from lossnet.errors import DistsUnavailableError, LpipsUnavailableError
from lossnet.functional.dists import DISTS_LAYERS, dists_from_features
from lossnet.functional.lpips import LPIPS_EPS, lpips_layer_distance, lpips_layer_map, unit_normalise
from lossnet.terms.base import Features, Statistics, Term
from lossnet.validation import Range, check_weight

logger = logging.getLogger("lossnet")

_UNAVAILABLE = {"lpips": LpipsUnavailableError, "dists": DistsUnavailableError}


#: The pooling of the trunk each metric was published on.
_POOLING = {"lpips": "max", "dists": "l2"}
#: Why a published file may still not count: LPIPS v0.0 heads expect their own trunk input.
_UNPUBLISHED_HINT = {
    "lpips": (
        " for this trunk (the lpips v0.1 heads; v0.0 heads are published only on the unscaled 2x - 1 input, "
        "which lossnet.metrics.LPIPS(version='0.0') gives its own trunk)"
    )
}


def check_published(metric: str, extractor: FeatureExtractor, calibration_published: bool, strict: bool) -> bool:
    """Whether a ``metric`` term (``"lpips"`` or ``"dists"``) on ``extractor`` is the published metric.

    It is when the trunk holds torchvision's ImageNet weights for its architecture, prepares images
    with torch's ImageNet normalisation, pools as the metric's authors did (max for LPIPS, L2 for
    DISTS), and the calibration is the published file.

    Args:
        metric: ``"lpips"`` or ``"dists"``.
        extractor: the trunk the term reads.
        calibration_published: whether the heads (or alpha/beta) are the published file.
        strict: refuse anything else (raise); otherwise log a warning and return ``False``.

    Raises:
        LpipsUnavailableError, DistsUnavailableError: ``strict`` and not the published configuration.
    """
    arch, why = extractor.arch, []
    if not is_imagenet(extractor.weights_id, arch):
        hed = parse_weights_id(extractor.weights_id).kind == "hed"
        fallback = " (what weights='auto', the default, loads where ImageNet's file cannot be had)" if hed else ""
        why.append(f"the trunk is {extractor.weights_id}{fallback}, not torchvision's ImageNet {arch}")
    elif extractor.preprocess.preprocessing.name != "torch":
        why.append(f"the trunk's images are prepared with {extractor.preprocess.preprocessing.name} preprocessing")
    if extractor.pooling != _POOLING[metric]:
        why.append(f"the trunk pools with {extractor.pooling} pooling, not {_POOLING[metric]}")
    if not calibration_published:
        why.append(f"the calibration is not the published file{_UNPUBLISHED_HINT.get(metric, '')}")
    if not why:
        return True
    name = metric.upper()
    if strict:
        raise _UNAVAILABLE[metric](
            f"{name} is only the published metric on torchvision's ImageNet {arch} with the published calibration, "
            f"and here {' and '.join(why)}. Pass weights='imagenet' (or the path of its file), or strict=False "
            f"(--allow-uncalibrated on the command line) for a {name}-like term named {metric}_like."
        )
    logger.warning("%s term: %s; it is named %s_like and is not the published %s", name, "; ".join(why), metric, name)
    return False


def lpips_layer_maps(
    fx: Mapping[str, torch.Tensor], fy: Mapping[str, torch.Tensor], calibration: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """LPIPS per layer and position: ``{layer: (B, 1, H_l, W_l)}``, ``sum_c w_c (f^x - f^y)^2`` (float32)."""
    return {layer: lpips_layer_map(fx[layer], fy[layer], w) for layer, w in calibration.items()}


def lpips_distance(
    fx: Mapping[str, torch.Tensor], fy: Mapping[str, torch.Tensor], calibration: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """LPIPS from the features of two batches, ``(B,)`` float32 (float64 for float64 features), 0 for identical ones.

    ``d = sum_l mean_{h,w} sum_c w_{l,c} (f^x_{l,chw} - f^y_{l,chw})^2`` (Zhang et al. 2018, eq. 1),
    with ``f`` unit-normalised over channels (:mod:`lossnet.functional.lpips`; fused on CPU).

    Args:
        fx, fy: ``{layer: (B, C_l, H_l, W_l)}`` for every layer of ``calibration`` (``fy`` may have batch 1).
        calibration: ``{layer: (C_l,)}`` non-negative weights.
    """
    return torch.stack([lpips_layer_distance(fx[layer], fy[layer], w) for layer, w in calibration.items()]).sum(0)


class _CalibratedTerm(Term):
    """A term whose number is a published metric (``name``) only in the published configuration."""

    def __init__(self, name: str, weight: float, key: str | None, published: bool) -> None:
        super().__init__()
        self.published = published
        self.key = key or (name if published else f"{name}_like")
        self.weight = check_weight(weight, f"{self.key} weight")


class LpipsTerm(_CalibratedTerm):
    """LPIPS (Zhang et al. 2018, eq. 1) over its layers, key ``"lpips"`` (``"lpips_like"`` when not published).

    The calibration is kept as buffers ``lin_<layer>``; features are unit-normalised and compared in
    float32 whatever the trunk's compute dtype. Whether the number is the published LPIPS is decided
    by the configuration that builds the term (:func:`check_published`) and passed as ``published``.

    Args:
        calibration: ``{layer: (C_l,)}`` non-negative weights.
        weight: the term's weight.
        published: whether trunk and calibration are the published ones; sets the default key.
    """

    def __init__(
        self,
        calibration: Mapping[str, torch.Tensor],
        weight: float = 1.0,
        key: str | None = None,
        published: bool = True,
    ) -> None:
        super().__init__("lpips", weight, key, published)
        self.layers = tuple(calibration)
        for layer, w in calibration.items():
            self.register_buffer(f"lin_{layer}", w.detach().float().flatten().clone())

    @property
    def calibration(self) -> dict[str, torch.Tensor]:
        """``{layer: (C_l,)}``, the heads as kept (they follow ``.to()``)."""
        return {layer: getattr(self, f"lin_{layer}") for layer in self.layers}

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        return lpips_distance(features, target, self.calibration)  # type: ignore[arg-type]

    def spatial(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        """The LPIPS map ``(B, 1, H, W)`` at the image's size, as the lpips reference's ``spatial=True``.

        Each layer's map is upsampled bilinearly (``align_corners=False``) to the image and the maps
        are summed. Its mean equals :meth:`per_sample` where every layer's size divides the image's
        evenly and up to the border effects of the interpolation elsewhere.
        """
        size = image.shape[-2:]
        maps = lpips_layer_maps(features, target, self.calibration)  # type: ignore[arg-type]
        return sum(F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps.values())  # type: ignore[return-value]


class DistsTerm(_CalibratedTerm):
    """DISTS (Ding et al. 2020) over the image and five L2-pooled VGG16 stages, key ``"dists"`` (``"dists_like"``).

    It reads :data:`~lossnet.functional.dists.DISTS_LAYERS` of an L2-pooled VGG16
    (``FeatureExtractor("vgg16", ..., pooling="l2")``) and the image itself, mapped from
    ``input_range`` to [0, 1] as DISTS takes it. It shares a pass only with terms on that same
    L2-pooled trunk: the max-pooled VGG16 of the feature and Gram terms gives other features.

    Args:
        alpha, beta: ``(1475,)`` weights (:func:`lossnet.backbones.calibration.dists_weights`).
        input_range: the images' range.
        weight: the term's weight.
        published: whether trunk and weights are the published ones; sets the default key.
    """

    def __init__(
        self,
        alpha: torch.Tensor,
        beta: torch.Tensor,
        input_range: Range = (0.0, 1.0),
        weight: float = 1.0,
        key: str | None = None,
        published: bool = True,
    ) -> None:
        super().__init__("dists", weight, key, published)
        self.layers = DISTS_LAYERS
        self.input_range = input_range
        self.register_buffer("alpha", alpha.detach().float().flatten().clone())
        self.register_buffer("beta", beta.detach().float().flatten().clone())

    def _unit(self, image: torch.Tensor) -> torch.Tensor:
        low, high = self.input_range
        unit = (image - low) / (high - low)
        return unit.expand(-1, 3, -1, -1) if unit.shape[1] == 1 else unit  # grey images go in as RGB, as to the trunk

    def target_statistics(self, image: torch.Tensor, features: Features) -> Statistics:
        return {"image": self._unit(image), **{name: features[name] for name in self.layers}}

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        fx = [self._unit(image), *(features[name] for name in self.layers)]
        fy = [target["image"], *(target[name] for name in self.layers)]  # type: ignore[index]
        return dists_from_features(fx, fy, self.alpha, self.beta, reduction="none")
