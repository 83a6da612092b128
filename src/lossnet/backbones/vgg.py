"""VGG loss networks (Simonyan & Zisserman, arXiv:1409.1556) with generated layer names.

The layers are built exactly as torchvision builds ``vgg*.features``, so the
``state_dict`` keys (``features.0.weight``, ...) are torchvision's and its checkpoints
load unchanged. The classifier head is not built: a loss network never uses it.

Layer names are derived from the structure, block by block:
``conv{b}_{n}``, ``bn{b}_{n}`` (batch-norm variants), ``relu{b}_{n}`` and ``pool{b}``.

>>> layer_names("vgg11")[:4]
['conv1_1', 'relu1_1', 'pool1', 'conv2_1']
>>> layer_index("vgg16", "relu2_2")
8
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from torch import nn

from lossnet.errors import InputError
from lossnet.validation import check_choice, suggest

# Output channels of each convolution, "M" for a 2x2 max-pool: the four VGG configurations.
_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

#: Every architecture name lossnet knows.
ARCHS: tuple[str, ...] = tuple(name + suffix for name in _CONFIGS for suffix in ("", "_bn"))


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a VGG ``features`` stack.

    Attributes:
        name: the human name, e.g. ``"relu2_2"``.
        index: its position in ``features`` (the number in ``features.{index}.weight``).
        kind: ``"conv"``, ``"bn"``, ``"relu"`` or ``"pool"``.
        channels: number of output channels.
        downsampling: the total stride at its output (1, 2, 4, 8, 16 or 32).
    """

    name: str
    index: int
    kind: str
    channels: int
    downsampling: int

    @property
    def min_size(self) -> int:
        """The smallest input height/width for which this layer's output is non-empty."""
        return self.downsampling


def check_arch(arch: str) -> str:
    """Return ``arch`` if it names a VGG lossnet knows, else raise with suggestions."""
    return check_choice(arch, ARCHS, "architecture")


@cache
def layer_info(arch: str) -> tuple[LayerInfo, ...]:
    """Describe every layer of ``arch``'s feature stack, in order."""
    check_arch(arch)
    base, batch_norm = arch.removesuffix("_bn"), arch.endswith("_bn")
    layers: list[LayerInfo] = []
    block, n, channels, stride = 1, 0, 3, 1
    for item in _CONFIGS[base]:
        if item == "M":
            stride *= 2
            layers.append(LayerInfo(f"pool{block}", len(layers), "pool", channels, stride))
            block, n = block + 1, 0
            continue
        n, channels = n + 1, int(item)
        kinds = ("conv", "bn", "relu") if batch_norm else ("conv", "relu")
        for kind in kinds:
            layers.append(LayerInfo(f"{kind}{block}_{n}", len(layers), kind, channels, stride))
    return tuple(layers)


def layer_names(arch: str) -> list[str]:
    """List the layer names of ``arch`` in forward order.

    >>> layer_names("vgg16")[-3:]
    ['conv5_3', 'relu5_3', 'pool5']
    >>> "bn1_1" in layer_names("vgg16_bn")
    True
    """
    return [info.name for info in layer_info(arch)]


def get_layer(arch: str, name: str) -> LayerInfo:
    """Return the :class:`LayerInfo` of layer ``name``; an unknown name raises with suggestions."""
    for info in layer_info(arch):
        if info.name == name:
            return info
    names = layer_names(arch)
    raise InputError(f"{arch} has no layer {name!r}.{suggest(name, names)} Valid names: lossnet.layer_names({arch!r}).")


def layer_index(arch: str, name: str) -> int:
    """Position of layer ``name`` in ``features``."""
    return get_layer(arch, name).index


class VGG(nn.Module):
    """The convolutional part of a VGG network, ``features``, laid out as torchvision's.

    The ReLUs are not in-place so that a returned activation (a ``conv`` or ``bn``
    output) is never overwritten by the layer after it.

    Args:
        arch: one of :data:`ARCHS`, e.g. ``"vgg16"`` or ``"vgg19_bn"``.

    Example:
        >>> net = VGG("vgg16")
        >>> list(net.state_dict())[:2]
        ['features.0.weight', 'features.0.bias']
    """

    def __init__(self, arch: str) -> None:
        super().__init__()
        self.arch = check_arch(arch)
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
            else:
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*modules)
        init_weights(self)


def init_weights(net: nn.Module) -> None:
    """torchvision's VGG initialisation (Kaiming fan-out convolutions, zero biases, unit batch norm).

    Every random trunk (``weights=None``) starts this way, so that their activations have a sane scale.
    """
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


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


def check_layers(arch: str, layers: object) -> list[str]:
    """Validate a collection of layer names for ``arch``; return them as a list in forward order."""
    if isinstance(layers, str):
        layers = [layers]
    try:
        names = list(layers)  # type: ignore[call-overload]
    except TypeError:
        raise InputError(f"layers must be a list of layer names such as ['relu2_2']; got {layers!r}") from None
    if not names:
        raise InputError(f"at least one layer is needed; valid names: lossnet.layer_names({arch!r})")
    infos = {get_layer(arch, str(name)).index: str(name) for name in names}
    return [infos[i] for i in sorted(infos)]
