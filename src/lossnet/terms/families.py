"""Term kinds beyond Gram and feature distance: focal frequency, contextual and MRF (patch).

Each shares the engine's one backbone pass with the other terms (focal frequency reads no layer
at all). The maths is in :mod:`lossnet.functional`; these classes say which layers a term reads
and what it keeps of a target:

- :class:`FocalFrequencyTerm` (``"focal_frequency"``): the images themselves;
- :class:`ContextualTerm` (``"contextual.<layer>"``): the target's features at its layer; the
  target may be misaligned with the prediction (contextual loss compares feature sets);
- :class:`MRFTerm` (``"mrf.<layer>"``): the target's ``k x k`` feature patches, so a fixed style
  target is cut once (as a Gram term keeps its Gram matrix).
"""

from __future__ import annotations

import torch

from lossnet.errors import InputError
from lossnet.functional.contextual import DEFAULT_MEMORY_BUDGET, contextual_loss
from lossnet.functional.focal_frequency import focal_frequency_loss
from lossnet.functional.mrf import mrf_loss, style_patches
from lossnet.terms.base import Features, Statistics, Term
from lossnet.validation import check_weight


class FocalFrequencyTerm(Term):
    """Focal frequency loss (Jiang et al. 2021) of the prediction against the target image, key ``"focal_frequency"``."""

    def __init__(self, weight: float = 1.0, alpha: float = 1.0, key: str = "focal_frequency") -> None:
        super().__init__()
        self.key, self.weight = key, check_weight(weight, f"{key} weight")
        self.alpha = check_weight(alpha, "alpha")

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        return focal_frequency_loss(image, target["image"], alpha=self.alpha, reduction="none")  # type: ignore[index]


class ContextualTerm(Term):
    """Contextual loss (Mechrez et al. 2018) at one layer, key ``"contextual.<layer>"``.

    Args:
        layer: the backbone layer (the authors use relu3_4 and relu4_4 of VGG19 for SR, relu4_2 for style).
        weight: the term's weight.
        band_width: ``h`` (0.5).
        max_positions: sample at most this many positions of each map (``None``: all); see
            :func:`lossnet.functional.contextual.contextual_loss` for the memory this bounds.
    """

    def __init__(
        self,
        layer: str,
        weight: float = 1.0,
        band_width: float = 0.5,
        max_positions: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        key: str | None = None,
    ) -> None:
        super().__init__()
        self.layers = (layer,)
        self.key = key or f"contextual.{layer}"
        self.weight = check_weight(weight, f"contextual weight of {layer!r}")
        self.band_width, self.max_positions, self.memory_budget = band_width, max_positions, memory_budget

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        (layer,) = self.layers
        return contextual_loss(
            features[layer],
            target[layer],  # type: ignore[index]
            self.band_width,
            max_positions=self.max_positions,
            memory_budget=self.memory_budget,
            reduction="none",
        )


class MRFTerm(Term):
    """MRF patch loss (Li & Wand 2016) at one layer against a style image, key ``"mrf.<layer>"``.

    It keeps the target's ``patch_size x patch_size`` feature patches (``style_stride`` apart); the
    target must be one image (batch 1), normally fixed once as the style.
    """

    def __init__(
        self, layer: str, weight: float = 1.0, patch_size: int = 3, style_stride: int = 1, key: str | None = None
    ) -> None:
        super().__init__()
        self.layers = (layer,)
        self.key = key or f"mrf.{layer}"
        self.weight = check_weight(weight, f"mrf weight of {layer!r}")
        self.patch_size, self.style_stride = patch_size, style_stride

    def target_statistics(self, image: torch.Tensor, features: Features) -> Statistics:
        style = features[self.layers[0]]
        if style.shape[0] != 1:
            raise InputError(
                f"the MRF term matches patches of one style image; got a target batch of {style.shape[0]}. "
                "Fix the style once (set_style_target) or pass a batch-1 target"
            )
        return {"patches": style_patches(style.float(), self.patch_size, self.style_stride)}

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        return mrf_loss(features[self.layers[0]], target["patches"], reduction="none")  # type: ignore[index]
