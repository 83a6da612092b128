"""The term kinds of Johnson et al.: pixel, feature, Gram (style) and total variation.

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
