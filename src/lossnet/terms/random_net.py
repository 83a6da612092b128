"""Weight-free perceptual term: Gram matrices of a seeded random convolutional network.

Ustyuzhaninov, Brendel, Gatys & Bethge (ICLR 2017, "What does it take to generate natural
textures?") showed that the Gram matrices of a convolutional network with *random* filters already
synthesise convincing textures, and Amir & Weiss (CVPR 2021, "Understanding and Simplifying Perceptual
Distances") that random-filter features carry much of what a trained trunk's do for comparing images.
This term needs no weight file: the network is a function of its seed alone.

The network: ``stages`` blocks of a 3x3 convolution (``channels`` filters, no bias, padding 1) and a
ReLU, with a 2x2 average pooling between blocks. Its filters are drawn as ``N(0, 2 / fan_in)`` (He
initialisation) with a ``torch.Generator`` seeded with ``seed``, on the CPU, in float64, then cast to
float32, so that the same seed gives the same network on every machine. Images are mapped from
``input_range`` to ``[-1, 1]`` (grey images repeated to three channels). The term is

``RN(x, y) = sum_s mse(G(phi_s(x)), G(phi_s(y)))``

over the blocks ``s``, with lossnet's Gram matrix (normalised by ``C*H*W``, :func:`~lossnet.functional.gram_matrix`).

Departures: Ustyuzhaninov et al.'s best random network is a single layer of many multi-scale filters;
this one gets its scales from pooling between a few small blocks, which costs less per call. It is a
texture/style term: for content, add a pixel term or a feature term on a trunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lossnet.errors import InputError
from lossnet.functional.gram import gram_matrix
from lossnet.functional.reduction import reduce
from lossnet.terms.base import Features, Statistics, Term
from lossnet.validation import Range, check_image, check_input_range, check_positive_int, check_weight


def random_net_weights(
    seed: int = 0, channels: int = 64, stages: int = 3, in_channels: int = 3, dtype: torch.dtype = torch.float32
) -> list[torch.Tensor]:
    """The filters of the random network, ``[(channels, in, 3, 3), (channels, channels, 3, 3), ...]``.

    Drawn as ``N(0, 2 / fan_in)`` in float64 on the CPU from ``torch.Generator().manual_seed(seed)``, then
    cast to ``dtype``: the same on every machine for a given seed.

    >>> [tuple(w.shape) for w in random_net_weights(0, channels=8, stages=2)]
    [(8, 3, 3, 3), (8, 8, 3, 3)]
    >>> torch.equal(random_net_weights(5)[0], random_net_weights(5)[0])
    True
    """
    check_positive_int(channels, "channels")
    check_positive_int(stages, "stages")
    generator = torch.Generator().manual_seed(int(seed))
    weights, fan = [], in_channels
    for _ in range(stages):
        w = torch.randn(channels, fan, 3, 3, generator=generator, dtype=torch.float64) * math.sqrt(2.0 / (fan * 9))
        weights.append(w.to(dtype))
        fan = channels
    return weights


class RandomNet(nn.Module):
    """The seeded random network; returns each block's features. Its filters are non-persistent buffers.

    Args:
        seed: seeds the filters.
        channels: filters per block.
        stages: blocks (each after the first at half the previous resolution).
        input_range: the images' range; they are mapped to ``[-1, 1]``.

    Shape:
        input ``(B, C, H, W)`` with C in {1, 3} and H, W at least ``2 ** (stages - 1)``; output a list of
        ``(B, channels, H / 2^s, W / 2^s)``.

    Example:
        >>> [tuple(f.shape) for f in RandomNet(channels=4, stages=2)(torch.rand(1, 3, 8, 8))]
        [(1, 4, 8, 8), (1, 4, 4, 4)]
    """

    def __init__(self, seed: int = 0, channels: int = 64, stages: int = 3, input_range: Range = (0.0, 1.0)) -> None:
        super().__init__()
        self.seed, self.channels, self.stages = int(seed), channels, stages
        self.input_range = check_input_range(input_range)
        for i, w in enumerate(random_net_weights(seed, channels, stages)):
            self.register_buffer(f"weight{i}", w, persistent=False)

    @property
    def min_size(self) -> int:
        """The smallest height and width the network takes."""
        return 2 ** (self.stages - 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if min(x.shape[-2:]) < self.min_size:
            raise InputError(
                f"the random network's {self.stages} blocks need images of at least {self.min_size}x{self.min_size} "
                f"pixels; got {tuple(x.shape[-2:])}. Use larger images or fewer stages (random_net_stages)"
            )
        low, high = self.input_range
        h = (x - low) * (2.0 / (high - low)) - 1.0
        h = h.expand(-1, 3, -1, -1) if h.shape[1] == 1 else h
        features = []
        for i in range(self.stages):
            if i:
                h = F.avg_pool2d(h, 2)
            w = getattr(self, f"weight{i}")
            h = F.relu(F.conv2d(h, w.to(h.dtype), padding=1))
            features.append(h)
        return features

    def grams(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each block's Gram matrix ``(B, channels, channels)``, float32."""
        return [gram_matrix(f.float()) for f in self(x)]

    def extra_repr(self) -> str:
        return f"seed={self.seed}, channels={self.channels}, stages={self.stages}"


def _distance(gx: list[torch.Tensor], gy: list[torch.Tensor]) -> torch.Tensor:
    if gy[0].shape[0] not in (1, gx[0].shape[0]):
        raise InputError(
            f"the target has batch {gy[0].shape[0]}; use one style image or one per prediction (batch {gx[0].shape[0]})"
        )
    return torch.stack([(a - b).pow(2).flatten(1).mean(1) for a, b in zip(gx, gy, strict=True)]).sum(0)


def random_net_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    seed: int = 0,
    channels: int = 64,
    stages: int = 3,
    input_range: Range = (0.0, 1.0),
    reduction: str = "mean",
) -> torch.Tensor:
    """The random-network Gram loss between two images (see the module docstring).

    Args:
        pred: ``(B, C, H, W)``, C in {1, 3}, values in ``input_range``.
        target: ``(B, C, H', W')`` or ``(1, C, H', W')`` (a style image of any size).
        seed, channels, stages: the random network.
        input_range: ``(0, 1)``, ``(-1, 1)`` or ``(0, 255)``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``(B,)``).

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> float(random_net_loss(x, x))
        0.0
        >>> random_net_loss(x, torch.rand(1, 3, 24, 20), reduction="none").shape
        torch.Size([2])
    """
    return RandomNetLoss(seed, channels, stages, input_range, reduction).to(pred.device)(pred, target)


class RandomNetLoss(nn.Module):
    """Module form of :func:`random_net_loss`; takes the same arguments and builds the network once.

    Example:
        >>> loss = RandomNetLoss(seed=1, channels=16)
        >>> loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)).item() > 0
        True
    """

    def __init__(
        self,
        seed: int = 0,
        channels: int = 64,
        stages: int = 3,
        input_range: Range = (0.0, 1.0),
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.net, self.reduction = RandomNet(seed, channels, stages, input_range), reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = check_image(pred, "prediction", self.net.input_range)
        target = check_image(target, "target", self.net.input_range)
        return reduce(_distance(self.net.grams(pred), self.net.grams(target)), self.reduction)


class RandomNetTerm(Term):
    """The random-network Gram term on the images, key ``"random_net"``; it keeps the target's Gram matrices.

    It reads no trunk layer (the network is its own), so a loss of this term alone loads no weights.
    """

    def __init__(
        self,
        weight: float = 1.0,
        seed: int = 0,
        channels: int = 64,
        stages: int = 3,
        input_range: Range = (0.0, 1.0),
        key: str = "random_net",
    ) -> None:
        super().__init__()
        self.key, self.weight = key, check_weight(weight, f"{key} weight")
        self.net = RandomNet(seed, channels, stages, input_range)

    def target_statistics(self, image: torch.Tensor, features: Features) -> Statistics:
        return {f"gram{i}": g for i, g in enumerate(self.net.grams(image))}

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        kept = [target[f"gram{i}"] for i in range(self.net.stages)]  # type: ignore[index]
        return _distance(self.net.grams(image), kept)


#: The family's public functions and modules (exported at the top level from its table entry).
EXPORTS = (RandomNet, RandomNetLoss, random_net_loss)
