"""The term kinds of today: pixel, feature, Gram (style), total variation and LPIPS.

Each is a :class:`~lossnet.terms.base.Term`: it says which layers it reads and what it keeps of a
target, and returns per-sample values; the engine applies the reduction and the weight.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from lossnet.errors import InputError
from lossnet.functional.criteria import CRITERIA, distance, elementwise
from lossnet.functional.gram import gram_matrix
from lossnet.functional.total_variation import TV_KINDS, total_variation
from lossnet.terms.base import Features, Statistics, Term
from lossnet.validation import check_choice, check_weight

#: Added to the feature norm before LPIPS divides by it (as the lpips reference code does).
LPIPS_EPS = 1e-10


class PixelTerm(Term):
    """``distance(pred, target, criterion)`` in image space, key ``"pixel"``."""

    def __init__(self, weight: float = 1.0, criterion: str = "mse", key: str = "pixel") -> None:
        super().__init__()
        self.key, self.weight = key, check_weight(weight, f"{key} weight")
        self.criterion = check_choice(criterion, CRITERIA, "criterion")

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        return distance(image, target["image"], self.criterion, "none")  # type: ignore[index]


class FeatureTerm(Term):
    """``distance(phi_l(pred), phi_l(target), criterion)`` at one layer, key ``"feature.<layer>"``."""

    def __init__(self, layer: str, weight: float = 1.0, criterion: str = "mse", key: str | None = None) -> None:
        super().__init__()
        self.layers = (layer,)
        self.key = key or f"feature.{layer}"
        self.weight = check_weight(weight, f"feature weight of {layer!r}")
        self.criterion = check_choice(criterion, CRITERIA, "criterion")

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        (layer,) = self.layers
        return distance(features[layer], target[layer], self.criterion, "none")  # type: ignore[index]

    def spatial(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        """``mean_c criterion(phi_l(pred) - phi_l(target))``, ``(B, 1, H_l, W_l)``, float32."""
        (layer,) = self.layers
        per_element = elementwise(features[layer].float(), target[layer].float(), self.criterion)  # type: ignore[index]
        return per_element.mean(1, keepdim=True)


class GramTerm(Term):
    """``distance(G(phi_l(pred)), G(phi_l(target)), criterion)`` at one layer, key ``"style.<layer>"``.

    It keeps the target's Gram matrix, so a fixed style image costs one pass, once.
    """

    def __init__(self, layer: str, weight: float = 1.0, criterion: str = "mse", key: str | None = None) -> None:
        super().__init__()
        self.layers = (layer,)
        self.key = key or f"style.{layer}"
        self.weight = check_weight(weight, f"style weight of {layer!r}")
        self.criterion = check_choice(criterion, CRITERIA, "criterion")

    def target_statistics(self, image: torch.Tensor, features: Features) -> Statistics:
        return {"gram": gram_matrix(features[self.layers[0]])}

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        g_target = target["gram"]  # type: ignore[index]
        batch = image.shape[0]
        if g_target.shape[0] not in (1, batch):
            raise InputError(
                f"the style target has batch {g_target.shape[0]}; use one style image or one per prediction "
                f"(batch {batch})"
            )
        return distance(gram_matrix(features[self.layers[0]]), g_target, self.criterion, "none")


class TVTerm(Term):
    """Total variation of the prediction alone, key ``"tv"``."""

    needs_target = False

    def __init__(self, weight: float = 1.0, kind: str = "anisotropic", key: str = "tv") -> None:
        super().__init__()
        self.key, self.weight = key, check_weight(weight, f"{key} weight")
        self.kind = check_choice(kind, TV_KINDS, "tv_kind")

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        return total_variation(image, self.kind, "none")


def unit_normalise(f: torch.Tensor) -> torch.Tensor:
    """Divide every feature vector (over channels) by ``sqrt(|f|^2 + LPIPS_EPS^2)``.

    The lpips reference divides by ``|f| + eps``, with the ``eps`` outside the square root: the
    gradient of ``|f|`` at a zero vector (a common ReLU output) is then 0/0, and training with
    LPIPS turns NaN. Inside the root the gradient stays finite, and the value differs from the
    reference's by a relative ``eps / |f|`` (1e-10 / |f|).
    """
    return f * torch.rsqrt(f.square().sum(1, keepdim=True) + LPIPS_EPS**2)


class LpipsTerm(Term):
    """LPIPS (Zhang et al. 2018, eq. 1) over its layers, key ``"lpips"``.

    ``d = sum_l mean_{h,w} sum_c w_{l,c} (f^x_{l,chw} - f^y_{l,chw})^2`` with ``f`` the features
    unit-normalised over channels (in float32) and ``w_l`` the calibration, kept as buffers
    ``lin_<layer>``. The number is LPIPS only with the trunk and calibration it was published for;
    :class:`lossnet.metrics.LPIPS` checks that.
    """

    def __init__(self, calibration: Mapping[str, torch.Tensor], weight: float = 1.0, key: str = "lpips") -> None:
        super().__init__()
        self.key, self.weight = key, check_weight(weight, f"{key} weight")
        self.layers = tuple(calibration)
        for layer, w in calibration.items():
            self.register_buffer(f"lin_{layer}", w.detach().float().flatten().clone())

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        calibration = {layer: getattr(self, f"lin_{layer}") for layer in self.layers}
        return lpips_distance(features, target, calibration)  # type: ignore[arg-type]


def lpips_distance(
    fx: Mapping[str, torch.Tensor], fy: Mapping[str, torch.Tensor], calibration: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """LPIPS from the features of two batches, ``(B,)`` float32, 0 for identical features.

    Args:
        fx, fy: ``{layer: (B, C_l, H_l, W_l)}`` for every layer of ``calibration`` (``fy`` may have batch 1).
        calibration: ``{layer: (C_l,)}`` non-negative weights.
    """
    total: torch.Tensor | float = 0.0
    for layer, w in calibration.items():
        a, b = unit_normalise(fx[layer].float()), unit_normalise(fy[layer].float())
        per_position = ((a - b).square() * w.to(a).view(1, -1, 1, 1)).sum(1)
        total = total + per_position.flatten(1).mean(1)
    return total  # type: ignore[return-value]
