"""lossnet: perceptual losses, and training image-to-image networks with them.

>>> import lossnet
>>> lossnet.layer_names("vgg16")[:3]
['conv1_1', 'relu1_1', 'conv1_2']
"""

from lossnet import data, explore, losses, models, train
from lossnet._version import __version__
from lossnet.inference import apply_files, apply_model, load_model
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


__all__ = [
    "ALL_ARCHS",
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
]
