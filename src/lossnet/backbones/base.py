"""What every trunk shares: the :class:`LayerInfo` row of a layer table, and the weight initialisation.

Kept apart from the trunks so that ``vgg``, ``small_trunks`` and the registry in ``archs`` can all
import it without importing each other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a trunk's ``features`` stack (a VGG, AlexNet or SqueezeNet 1.1).

    Attributes:
        name: the human name, e.g. ``"relu2_2"`` (VGG), ``"relu5"`` (AlexNet) or ``"fire3"`` (SqueezeNet).
        index: its position in ``features`` (the number in ``features.{index}.weight``).
        kind: ``"conv"``, ``"bn"``, ``"relu"``, ``"pool"`` or ``"fire"``.
        channels: number of output channels.
        downsampling: the total stride at its output (1, 2, 4, ... for a VGG; 4, 8, 16, ... for AlexNet).
        min_size: the smallest input height/width for which this layer's output is non-empty.
            Left out (0), it is ``downsampling``, which is right for a VGG (3x3 padded convolutions and
            2x2 stride-2 max-pools). The small trunks give it: their 11x11 stride-4 or unpadded 3x3
            stride-2 first convolution and 3x3 (ceil-mode) pools need more than the stride.

    >>> LayerInfo("relu2_2", 8, "relu", 128, 2).min_size
    2
    """

    name: str
    index: int
    kind: str
    channels: int
    downsampling: int
    min_size: int = 0

    def __post_init__(self) -> None:
        if not self.min_size:
            object.__setattr__(self, "min_size", self.downsampling)


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
