"""The one registry of loss-network architectures: the VGGs, AlexNet and SqueezeNet 1.1.

Every function that takes an ``arch`` goes through here, so all of them accept the same names
(:data:`ALL_ARCHS`). :data:`ARCHS` stays the eight VGGs, for what only a VGG can do (HED weights,
Keras ``.h5`` files, L2 pooling); :data:`SMALL_TRUNKS` are the LPIPS trunks of
:mod:`lossnet.backbones.small_trunks`.

VGG layer names are derived from the structure, block by block:
``conv{b}_{n}``, ``bn{b}_{n}`` (batch-norm variants), ``relu{b}_{n}`` and ``pool{b}``;
the small trunks' names are described in :mod:`lossnet.backbones.small_trunks`.

>>> layer_names("vgg11")[:4]
['conv1_1', 'relu1_1', 'pool1', 'conv2_1']
>>> layer_index("vgg16", "relu2_2"), layer_index("alexnet", "relu5")
(8, 11)
>>> ALL_ARCHS[-2:]
('alexnet', 'squeezenet1_1')
"""

from __future__ import annotations

from functools import cache

from lossnet.backbones.base import LayerInfo
from lossnet.backbones.small_trunks import SMALL_TRUNKS, trunk_layers
from lossnet.errors import InputError
from lossnet.validation import check_choice, suggest

# Output channels of each convolution, "M" for a 2x2 max-pool: the four VGG configurations.
_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

#: The VGG architectures (what HED weights, Keras files and ``pooling="l2"`` need).
ARCHS: tuple[str, ...] = tuple(name + suffix for name in _CONFIGS for suffix in ("", "_bn"))
VGG_ARCHS = ARCHS

#: Every architecture name lossnet knows: the VGGs, then AlexNet and SqueezeNet 1.1.
ALL_ARCHS: tuple[str, ...] = ARCHS + SMALL_TRUNKS


def check_arch(arch: str) -> str:
    """Return ``arch`` if it names an architecture lossnet knows (:data:`ALL_ARCHS`), else raise with suggestions."""
    return check_choice(arch, ALL_ARCHS, "architecture")


def is_vgg(arch: str) -> bool:
    """Whether ``arch`` (a known name) is one of the VGGs.

    >>> is_vgg("vgg16_bn"), is_vgg("alexnet")
    (True, False)
    """
    return check_arch(arch) in ARCHS


@cache
def layer_info(arch: str) -> tuple[LayerInfo, ...]:
    """Describe every layer of ``arch``'s feature stack, in order."""
    if check_arch(arch) in SMALL_TRUNKS:
        return trunk_layers(arch)
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
    >>> layer_names("squeezenet1_1")[-2:]
    ['fire8', 'fire9']
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
