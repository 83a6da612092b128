"""Perceptual-loss terms as modules, the composite loss and presets.

The plain functions underneath (:func:`distance`, :func:`gram_matrix`, :func:`reduce`,
:func:`total_variation`, ...) live in :mod:`lossnet.functional` and are re-exported here.
"""

from lossnet.functional import CRITERIA, REDUCTIONS, distance, elementwise, gram_matrix, reduce
from lossnet.functional.contextual import contextual_loss
from lossnet.functional.focal_frequency import focal_frequency_loss
from lossnet.functional.mrf import mrf_loss
from lossnet.losses.calibrated import DISTSLoss, LPIPSLoss, dists_loss, lpips_loss
from lossnet.losses.contextual import ContextualLoss
from lossnet.losses.feature import FeatureLoss, feature_loss
from lossnet.losses.focal_frequency import FocalFrequencyLoss
from lossnet.losses.mrf import MRFLoss
from lossnet.losses.perceptual import PerceptualLoss, term_shares
from lossnet.losses.pixel import PixelLoss, pixel_loss
from lossnet.losses.presets import PRESETS, Preset, get_preset, perceptual_loss_from_preset
from lossnet.losses.style import StyleLoss, style_loss
# (after the submodule import, so that the name is the function, not the module)
from lossnet.losses.total_variation import TotalVariation, total_variation
from lossnet.terms.registry import FAMILIES as _FAMILIES

# The later families' functions and modules live with their term, in lossnet.terms; their table entries list them.
_FAMILY_EXPORTS = {obj.__name__: obj for family in _FAMILIES.values() for obj in family.exports}
globals().update(_FAMILY_EXPORTS)

__all__ = [
    "CRITERIA",
    "PRESETS",
    "REDUCTIONS",
    "ContextualLoss",
    "DISTSLoss",
    "FeatureLoss",
    "FocalFrequencyLoss",
    "LPIPSLoss",
    "MRFLoss",
    "PerceptualLoss",
    "PixelLoss",
    "Preset",
    "StyleLoss",
    "TotalVariation",
    "contextual_loss",
    "distance",
    "dists_loss",
    "elementwise",
    "feature_loss",
    "focal_frequency_loss",
    "get_preset",
    "gram_matrix",
    "lpips_loss",
    "mrf_loss",
    "perceptual_loss_from_preset",
    "pixel_loss",
    "reduce",
    "term_shares",
    "style_loss",
    "total_variation",
    *_FAMILY_EXPORTS,
]
