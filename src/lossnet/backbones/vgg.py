"""VGG loss networks (Simonyan & Zisserman, arXiv:1409.1556) with generated layer names.

The layers are built exactly as torchvision builds ``vgg*.features``, so the
``state_dict`` keys (``features.0.weight``, ...) are torchvision's and its checkpoints
load unchanged. The classifier head is not built: a loss network never uses it.

Layer names are derived from the structure, block by block:
``conv{b}_{n}``, ``bn{b}_{n}`` (batch-norm variants), ``relu{b}_{n}`` and ``pool{b}``.

The layer tables and the architecture names live in :mod:`lossnet.backbones.archs`, the one
registry that also knows AlexNet and SqueezeNet 1.1; they are importable from here as before
(``layer_info``, ``layer_names``, ``get_layer``, ``layer_index``, ``check_layers``, ``check_arch``,
``ARCHS``, ``ALL_ARCHS``), and so are :class:`LayerInfo` and :func:`init_weights`.

>>> layer_names("vgg11")[:4]
['conv1_1', 'relu1_1', 'pool1', 'conv2_1']
>>> layer_index("vgg16", "relu2_2")
8
"""

from __future__ import annotations

from torch import nn

from lossnet.backbones.archs import (
    ALL_ARCHS,
    ARCHS,
    VGG_ARCHS,
    check_arch,
    check_layers,
    get_layer,
    is_vgg,
    layer_index,
    layer_info,
    layer_names,
)
from lossnet.backbones.base import LayerInfo, init_weights
from lossnet.backbones.pooling import L2Pool2d
from lossnet.errors import InputError
from lossnet.validation import check_choice

__all__ = [
    "ALL_ARCHS",
    "ARCHS",
    "POOLINGS",
    "VGG",
    "VGG_ARCHS",
    "LayerInfo",
    "check_arch",
    "check_layers",
    "check_vgg_arch",
    "classifier_shapes",
    "get_layer",
    "init_weights",
    "is_vgg",
    "layer_index",
    "layer_info",
    "layer_names",
]

#: The pooling a VGG can be built with: torchvision's 2x2 max-pool, or DISTS' L2 pooling.
POOLINGS = ("max", "l2")


def check_vgg_arch(arch: str, what: str = "this") -> str:
    """Return ``arch`` if it is a VGG; a known non-VGG name raises an :class:`InputError` saying ``what`` needs one."""
    if not is_vgg(arch):
        raise InputError(f"{what} needs a VGG ({', '.join(ARCHS)}); {arch!r} is not one")
    return arch


class VGG(nn.Module):
    """The convolutional part of a VGG network, ``features``, laid out as torchvision's.

    The ReLUs are not in-place so that a returned activation (a ``conv`` or ``bn``
    output) is never overwritten by the layer after it.

    Args:
        arch: one of :data:`ARCHS`, e.g. ``"vgg16"`` or ``"vgg19_bn"``.
        pooling: ``"max"`` (default): torchvision's 2x2 stride-2 max-pools. ``"l2"``: every max-pool
            is an :class:`~lossnet.backbones.pooling.L2Pool2d` instead (DISTS' anti-aliased pooling,
            Hénaff & Simoncelli 2016). It has no parameters, so the ``state_dict`` keys are the same
            and ImageNet VGG files load unchanged. It gives ``ceil(H / 2)`` where the max-pool gives
            ``floor(H / 2)``, so an input of any size keeps a non-empty map; the layer tables keep the
            max-pool ``min_size`` (the stride), a conservative rule for both.

    Example:
        >>> net = VGG("vgg16")
        >>> list(net.state_dict())[:2]
        ['features.0.weight', 'features.0.bias']
        >>> VGG("vgg11", pooling="l2").features[2]
        L2Pool2d()
    """

    def __init__(self, arch: str, pooling: str = "max") -> None:
        super().__init__()
        self.arch = check_vgg_arch(check_arch(arch), "VGG(arch)")
        self.pooling = check_choice(pooling, POOLINGS, "pooling")
        modules: list[nn.Module] = []
        in_channels = 3
        for info in layer_info(arch):
            if info.kind == "conv":
                modules.append(nn.Conv2d(in_channels, info.channels, kernel_size=3, padding=1))
                in_channels = info.channels
            elif info.kind == "bn":
                modules.append(nn.BatchNorm2d(info.channels))
            elif info.kind == "relu":
                modules.append(nn.ReLU(inplace=False))
            elif self.pooling == "l2":
                modules.append(L2Pool2d())
            else:
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*modules)
        init_weights(self)


def classifier_shapes() -> dict[str, tuple[int, ...]]:
    """The keys and shapes of torchvision's VGG classifier head (identical for every VGG).

    A torchvision checkpoint carries them; lossnet checks and then drops them.
    """
    return {
        "classifier.0.weight": (4096, 512 * 7 * 7),
        "classifier.0.bias": (4096,),
        "classifier.3.weight": (4096, 4096),
        "classifier.3.bias": (4096,),
        "classifier.6.weight": (1000, 4096),
        "classifier.6.bias": (1000,),
    }
