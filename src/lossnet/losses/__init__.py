"""Perceptual-loss terms: functional forms, their modules, the composite loss and presets."""

from lossnet.losses.criteria import CRITERIA, distance, elementwise
from lossnet.losses.feature import FeatureLoss, feature_loss
from lossnet.losses.gram import gram_matrix
from lossnet.losses.perceptual import PerceptualLoss, term_shares
from lossnet.losses.pixel import PixelLoss, pixel_loss
from lossnet.losses.presets import PRESETS, Preset, get_preset, perceptual_loss_from_preset
from lossnet.losses.reduction import REDUCTIONS, reduce
from lossnet.losses.style import StyleLoss, style_loss
from lossnet.losses.total_variation import TotalVariation, total_variation

__all__ = [
    "CRITERIA",
    "PRESETS",
    "REDUCTIONS",
    "FeatureLoss",
    "PerceptualLoss",
    "PixelLoss",
    "Preset",
    "StyleLoss",
    "TotalVariation",
    "distance",
    "elementwise",
    "feature_loss",
    "get_preset",
    "gram_matrix",
    "perceptual_loss_from_preset",
    "pixel_loss",
    "reduce",
    "term_shares",
    "style_loss",
    "total_variation",
]
