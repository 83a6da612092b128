"""Loss networks: VGG definitions, their weights, and the feature extractor."""

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.preprocessing import CAFFE, TORCH, Preprocess, Preprocessing
from lossnet.backbones.vgg import ARCHS, VGG, LayerInfo, get_layer, layer_index, layer_info, layer_names
from lossnet.backbones.weights import LoadedWeights, load_weights

__all__ = [
    "ARCHS",
    "CAFFE",
    "TORCH",
    "VGG",
    "FeatureExtractor",
    "LayerInfo",
    "LoadedWeights",
    "Preprocess",
    "Preprocessing",
    "get_layer",
    "layer_index",
    "layer_info",
    "layer_names",
    "load_weights",
]
