"""Feature distance: the weighted per-layer distance of two image batches under any backbone.

A configuration of the term engine (:mod:`lossnet.terms`): one feature term per layer, both
images through the backbone with autograd as the caller's context decides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import InputError, InputTypeError
from lossnet.functional.criteria import CRITERIA
from lossnet.functional.reduction import REDUCTIONS, reduce
from lossnet.metrics.pixel import check_pair
from lossnet.terms import Backbone, FeatureTerm, TermEngine, layer_weights
from lossnet.validation import Range, check_choice


def _engine(layers: Mapping[str, float], criterion: str) -> TermEngine:
    return TermEngine([FeatureTerm(name, w, criterion, key=name) for name, w in layers.items()])


def _distance(
    engine: TermEngine, backbone: Backbone, x: torch.Tensor, y: torch.Tensor, reduction: str
) -> torch.Tensor:
    """``reduce(sum_l w_l d_l)``: the per-sample weighted sum, then the batch reduction."""
    return reduce(engine(backbone, x, y, "none", target_grad=True)["total"], reduction)


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
    x, y = check_pair(x, y)
    check_choice(criterion, CRITERIA, "criterion")
    check_choice(reduction, REDUCTIONS, "reduction")
    if not callable(backbone):
        raise InputTypeError(
            f"backbone must be a callable returning {{layer: features}} (a FeatureExtractor, say); "
            f"got {type(backbone).__name__}"
        )
    # A backbone says which layers it returns by returning them: the pass on x, kept for the engine.
    features = backbone(x)
    returned = list(features)
    weights = {name: 1.0 for name in returned} if layers is None else layer_weights(layers)
    missing = [name for name in weights if name not in returned]
    if missing or not weights:
        raise InputError(f"the backbone returned layers {returned}; cannot take {missing or 'no layer'}")
    return _distance(_engine(weights, criterion), _Replay(backbone, x, features), x, y, reduction)


class _Replay:
    """A backbone whose features of one image are already known (so that image costs one pass)."""

    def __init__(self, backbone: Backbone, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> None:
        self.backbone, self.image, self.features = backbone, image, features

    def __call__(self, image: torch.Tensor) -> Mapping[str, torch.Tensor]:
        return self.features if image is self.image else self.backbone(image)


class FeatureDistance(nn.Module):
    """:func:`feature_distance` with its own frozen VGG :class:`FeatureExtractor`.

    Args:
        arch: ``"vgg16"``, ``"vgg19"``, ... (see :data:`lossnet.ARCHS`).
        layers: ``{layer: weight}`` or names (weight 1).
        weights: ``"auto"`` (default: ImageNet where it can be had, else HED's VGG16, logged),
            ``"imagenet"``, ``"hed"``, a file path or ``None``.
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
        weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
        criterion: str = "mse",
        reduction: str = "mean",
        input_range: Range = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.layers = layer_weights(layers)
        self.criterion = check_choice(criterion, CRITERIA, "criterion")
        self.reduction = check_choice(reduction, REDUCTIONS, "reduction")
        self.extractor = FeatureExtractor(arch, list(self.layers), weights, input_range)
        self.engine = _engine(self.layers, self.criterion)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self.extractor.check(x, "x"), self.extractor.check(y, "y")
        x, y = check_pair(x, y)
        return _distance(self.engine, self.extractor, x, y, self.reduction)
