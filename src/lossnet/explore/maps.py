"""Where in the image two activations differ, layer by layer."""

from __future__ import annotations

import torch

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.terms import FeatureTerm, TermEngine
from lossnet.validation import check_same_shape


@torch.no_grad()
def feature_difference_maps(
    extractor: FeatureExtractor, pred: torch.Tensor, target: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-layer maps of the squared feature difference, averaged over channels.

    ``map_l[b, 0, i, j] = mean_c (phi_l(pred) - phi_l(target))[b, c, i, j]^2``, the
    spatial layout of the MSE feature loss at layer l (its mean over i, j is exactly
    the ``feature.<l>`` term with ``criterion='mse'``): the spatial form of the engine's
    feature term (:meth:`lossnet.terms.FeatureTerm.spatial`).

    Args:
        extractor: the loss network.
        pred: ``(B, C, H, W)`` in the extractor's input range.
        target: same shape (or batch 1).

    Returns:
        ``{layer: (B, 1, H_l, W_l)}`` at each layer's own resolution, float32.
    """
    pred = extractor.check(pred, "prediction")
    target = extractor.check(target, "target")
    check_same_shape(pred, target)
    engine = TermEngine([FeatureTerm(name, criterion="mse", key=name) for name in extractor.layers])
    return engine.maps(extractor, pred, target)
