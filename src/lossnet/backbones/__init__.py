"""Loss networks: the VGG, AlexNet and SqueezeNet 1.1 trunks, their weights, and the feature extractor."""

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.preprocessing import CAFFE, TORCH, Preprocess, Preprocessing
from lossnet.backbones.small_trunks import SmallTrunk
from lossnet.backbones.vgg import (
    ALL_ARCHS,
    ARCHS,
    VGG,
    LayerInfo,
    get_layer,
    layer_index,
    layer_info,
    layer_names,
)
from lossnet.backbones.weights import LoadedWeights, load_weights

__all__ = [
    "ALL_ARCHS",
    "ARCHS",
    "CAFFE",
    "TORCH",
    "VGG",
    "FeatureExtractor",
    "LayerInfo",
    "LoadedWeights",
    "Preprocess",
    "Preprocessing",
    "SmallTrunk",
    "get_layer",
    "layer_index",
    "layer_info",
    "layer_names",
    "load_weights",
]
