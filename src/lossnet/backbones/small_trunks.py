"""AlexNet and SqueezeNet 1.1 feature stacks: the LPIPS trunks, laid out as torchvision's.

The modules are built as torchvision builds ``alexnet().features`` and
``squeezenet1_1().features``, so the ``state_dict`` keys (``features.0.weight``,
``features.3.squeeze.weight``, ...) are torchvision's and its ImageNet checkpoints load
unchanged. The classifier heads are not built.

Layer names are generated from the structure:

- AlexNet: ``conv1``..``conv5``, ``relu1``..``relu5``, and the pools ``pool1``, ``pool2``, ``pool5``;
- SqueezeNet 1.1: ``conv1``, ``relu1``, the fire modules ``fire2``..``fire9`` (numbered as in the
  paper; each returns its concatenated, ReLU'd expand outputs) and the pools ``pool1``, ``pool3``,
  ``pool5``.

A pool is named after the layer it follows (``pool3`` comes after ``fire3``).

LPIPS compares ``relu1``..``relu5`` of AlexNet and ``relu1``, ``fire3``, ``fire5``..``fire9`` of
SqueezeNet (:data:`LPIPS_LAYERS`).

>>> [i.name for i in trunk_layers("alexnet")][:4]
['conv1', 'relu1', 'pool1', 'conv2']
>>> [i.name for i in trunk_layers("squeezenet1_1") if i.kind == "fire"][:3]
['fire2', 'fire3', 'fire4']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from lossnet.backbones.base import LayerInfo, init_weights
from lossnet.validation import check_choice

#: The trunks defined here.
SMALL_TRUNKS = ("alexnet", "squeezenet1_1")

#: The layers LPIPS compares, per trunk, in order (their heads are ``lin0``, ``lin1``, ...).
LPIPS_LAYERS: dict[str, tuple[str, ...]] = {
    "alexnet": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "squeezenet1_1": ("relu1", "fire3", "fire5", "fire6", "fire7", "fire8", "fire9"),
}


@dataclass(frozen=True)
class _Op:
    """One entry of ``features``: its name, kind, output channels and geometry."""

    name: str
    kind: str  # conv | relu | pool | fire
    channels: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    ceil: bool = False
    squeeze: int = 0  # fire modules: squeeze channels (the expand branches have channels / 2 each)


def _alexnet() -> list[_Op]:
    return [
        _Op("conv1", "conv", 64, 11, 4, 2),
        _Op("relu1", "relu", 64),
        _Op("pool1", "pool", 64, 3, 2),
        _Op("conv2", "conv", 192, 5, 1, 2),
        _Op("relu2", "relu", 192),
        _Op("pool2", "pool", 192, 3, 2),
        _Op("conv3", "conv", 384, 3, 1, 1),
        _Op("relu3", "relu", 384),
        _Op("conv4", "conv", 256, 3, 1, 1),
        _Op("relu4", "relu", 256),
        _Op("conv5", "conv", 256, 3, 1, 1),
        _Op("relu5", "relu", 256),
        _Op("pool5", "pool", 256, 3, 2),
    ]


def _squeezenet1_1() -> list[_Op]:
    def fire(n: int, squeeze: int, expand: int) -> _Op:
        return _Op(f"fire{n}", "fire", 2 * expand, 3, 1, 1, squeeze=squeeze)

    def pool(n: int, channels: int) -> _Op:
        return _Op(f"pool{n}", "pool", channels, 3, 2, 0, ceil=True)

    return [
        _Op("conv1", "conv", 64, 3, 2, 0),
        _Op("relu1", "relu", 64),
        pool(1, 64),
        fire(2, 16, 64),
        fire(3, 16, 64),
        pool(3, 128),
        fire(4, 32, 128),
        fire(5, 32, 128),
        pool(5, 256),
        fire(6, 48, 192),
        fire(7, 48, 192),
        fire(8, 64, 256),
        fire(9, 64, 256),
    ]


_BUILDERS = {"alexnet": _alexnet, "squeezenet1_1": _squeezenet1_1}


#: The layer rows of the small trunks are the VGGs' :class:`~lossnet.backbones.base.LayerInfo`, with
#: ``min_size`` given (it is not the stride here). ``TrunkLayer`` is its old name, kept for callers.
TrunkLayer = LayerInfo


def _out(size: int, op: _Op) -> int:
    """The output length of ``op`` for an input of ``size`` (PyTorch's convolution and pooling arithmetic)."""
    if op.kind in ("relu", "fire"):  # fire: 1x1 and padded 3x3 convolutions keep the size
        return size
    span = size + 2 * op.padding - op.kernel + (op.stride - 1 if op.ceil else 0)
    n = span // op.stride + 1
    if op.ceil and (n - 1) * op.stride >= size + op.padding:  # the last window must start inside the input
        n -= 1
    return n


@cache
def trunk_layers(arch: str) -> tuple[LayerInfo, ...]:
    """Describe every layer of ``arch``'s ``features`` (``'alexnet'`` or ``'squeezenet1_1'``), in order.

    :func:`lossnet.backbones.vgg.layer_info` gives the same rows for these two names.

    >>> [(i.name, i.downsampling, i.min_size) for i in trunk_layers("alexnet") if i.name in ("relu1", "relu5")]
    [('relu1', 4, 7), ('relu5', 16, 31)]
    """
    check_choice(arch, SMALL_TRUNKS, "architecture")
    ops = _BUILDERS[arch]()
    infos, stride = [], 1
    for i, op in enumerate(ops):
        stride *= op.stride if op.kind in ("conv", "pool") else 1
        smallest = next(n for n in range(1, 4096) if _size_after(ops[: i + 1], n) > 0)
        infos.append(LayerInfo(op.name, i, op.kind, op.channels, stride, smallest))
    return tuple(infos)


def _size_after(ops: list[_Op], size: int) -> int:
    for op in ops:
        size = _out(size, op)
        if size <= 0:
            return 0
    return size


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1x1 squeeze, then concatenated 1x1 and 3x3 expands, each with a ReLU.

    Parameter names (``squeeze``, ``expand1x1``, ``expand3x3``) are torchvision's.
    """

    def __init__(self, in_channels: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1)


class SmallTrunk(nn.Module):
    """The ``features`` of AlexNet or SqueezeNet 1.1, with torchvision's ``state_dict`` keys.

    The top-level ReLUs are not in-place, so a returned ``conv`` output is never overwritten.

    Example:
        >>> net = SmallTrunk("alexnet")
        >>> list(net.state_dict())[:2]
        ['features.0.weight', 'features.0.bias']
        >>> net.features(torch.rand(1, 3, 224, 224)).shape
        torch.Size([1, 256, 6, 6])
    """

    def __init__(self, arch: str) -> None:
        super().__init__()
        self.arch = check_choice(arch, SMALL_TRUNKS, "architecture")
        modules: list[nn.Module] = []
        channels = 3
        for op in _BUILDERS[arch]():
            if op.kind == "conv":
                modules.append(nn.Conv2d(channels, op.channels, op.kernel, op.stride, op.padding))
            elif op.kind == "relu":
                modules.append(nn.ReLU(inplace=False))
            elif op.kind == "pool":
                modules.append(nn.MaxPool2d(op.kernel, op.stride, ceil_mode=op.ceil))
            else:
                modules.append(Fire(channels, op.squeeze, op.channels // 2))
            channels = op.channels
        self.features = nn.Sequential(*modules)
        init_weights(self)  # as the VGGs, so that random trunks (weights=None) have activations of a sane scale


def small_trunk_classifier_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """The keys and shapes of torchvision's classifier head for ``arch`` (checked, then dropped, on load)."""
    check_choice(arch, SMALL_TRUNKS, "architecture")
    if arch == "alexnet":
        return {
            "classifier.1.weight": (4096, 256 * 6 * 6),
            "classifier.1.bias": (4096,),
            "classifier.4.weight": (4096, 4096),
            "classifier.4.bias": (4096,),
            "classifier.6.weight": (1000, 4096),
            "classifier.6.bias": (1000,),
        }
    return {"classifier.1.weight": (1000, 512, 1, 1), "classifier.1.bias": (1000,)}
