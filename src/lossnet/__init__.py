"""lossnet: perceptual losses, and training image-to-image networks with them.

>>> import lossnet
>>> lossnet.layer_names("vgg16")[:3]
['conv1_1', 'relu1_1', 'conv1_2']
"""

from lossnet import data, explore, losses, models, train
from lossnet._version import __version__
from lossnet.inference import apply_files, apply_model, load_model
from lossnet.export import export_onnx, export_torchscript
from lossnet.backbones import ALL_ARCHS, ARCHS, FeatureExtractor, layer_names, load_weights
from lossnet.errors import (
    CheckpointError,
    InputError,
    InputTypeError,
    LossnetError,
    RunFolderInUseError,
    TrainingDivergedError,
    WeightsError,
    WeightsUnavailableError,
)
from lossnet.losses import (
    PRESETS,
    ContextualLoss,
    DISTSLoss,
    FocalFrequencyLoss,
    LPIPSLoss,
    MRFLoss,
    contextual_loss,
    dists_loss,
    focal_frequency_loss,
    lpips_loss,
    mrf_loss,
    FeatureLoss,
    PerceptualLoss,
    PixelLoss,
    StyleLoss,
    TotalVariation,
    feature_loss,
    gram_matrix,
    perceptual_loss_from_preset,
    pixel_loss,
    style_loss,
    term_shares,
    total_variation,
)


from lossnet.terms.registry import FAMILIES as _FAMILIES

# The later families' functions and modules, from their entries in the table of term families.
_FAMILY_EXPORTS = {obj.__name__: obj for family in _FAMILIES.values() for obj in family.exports}
globals().update(_FAMILY_EXPORTS)

__all__ = [
    "ALL_ARCHS",
    "ContextualLoss",
    "DISTSLoss",
    "FocalFrequencyLoss",
    "LPIPSLoss",
    "MRFLoss",
    "contextual_loss",
    "dists_loss",
    "focal_frequency_loss",
    "lpips_loss",
    "mrf_loss",
    "ARCHS",
    "PRESETS",
    "CheckpointError",
    "FeatureExtractor",
    "FeatureLoss",
    "InputError",
    "InputTypeError",
    "LossnetError",
    "PerceptualLoss",
    "PixelLoss",
    "RunFolderInUseError",
    "StyleLoss",
    "TotalVariation",
    "TrainingDivergedError",
    "WeightsError",
    "WeightsUnavailableError",
    "__version__",
    "apply_files",
    "apply_model",
    "data",
    "explore",
    "export_onnx",
    "export_torchscript",
    "losses",
    "models",
    "feature_loss",
    "gram_matrix",
    "layer_names",
    "load_model",
    "load_weights",
    "perceptual_loss_from_preset",
    "pixel_loss",
    "style_loss",
    "term_shares",
    "total_variation",
    "train",
    *_FAMILY_EXPORTS,
]
