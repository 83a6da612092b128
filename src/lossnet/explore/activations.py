"""What each layer responds to: its strongest channels' activations over the image (after Zeiler & Fergus 2014)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.viz import Cell, contact_sheet, overlay


@dataclass
class ChannelMap:
    """One channel's activation map.

    Attributes:
        layer: the layer name.
        channel: the channel index, or ``None`` for the mean over all channels.
        mean: the map's spatial mean.
        values: ``(1, 1, h, w)``, the layer's resolution, non-negative after a ReLU.
    """

    layer: str
    channel: int | None
    mean: float
    values: torch.Tensor

    @property
    def label(self) -> str:
        what = "all channels" if self.channel is None else f"ch {self.channel}"
        return f"{self.layer} {what}\nmean {self.mean:.3g}"


@torch.no_grad()
def activation_maps(extractor: FeatureExtractor, image: torch.Tensor, top_k: int = 4) -> dict[str, list[ChannelMap]]:
    """Per layer: the mean over channels, then the ``top_k`` channels with the largest spatial mean.

    Args:
        extractor: the loss network and the layers to show.
        image: ``(1, 3, H, W)`` in the extractor's input range.
        top_k: channels per layer (fewer if the layer has fewer).

    Returns:
        ``{layer: [mean map, strongest channel, next, ...]}``, strongest first.

    Example:
        >>> fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
        >>> maps = activation_maps(fx, torch.rand(1, 3, 8, 8), top_k=2)
        >>> [m.channel is None for m in maps["relu1_1"]], tuple(maps["relu1_1"][1].values.shape)
        ([True, False, False], (1, 1, 8, 8))
    """
    image = extractor.check(image, "image")
    out: dict[str, list[ChannelMap]] = {}
    for name, act in extractor(image[:1], validate=False).items():
        act = act.float()
        means = act.mean(dim=(0, 2, 3))
        top = torch.argsort(means, descending=True, stable=True)[: max(1, top_k)]
        maps = [ChannelMap(name, None, float(act.mean()), act.mean(1, keepdim=True))]
        maps += [ChannelMap(name, int(c), float(means[c]), act[:, int(c) : int(c) + 1]) for c in top]
        out[name] = maps
    return out


def activation_sheet(
    image: torch.Tensor, maps: dict[str, list[ChannelMap]], title: str = "", cell_size: int = 160
) -> Image.Image:
    """One row per layer: each map, scaled to its own maximum, overlaid on the (greyed) image."""
    size = (image.shape[-2], image.shape[-1])
    rows = [[Cell(image, "image")]]
    rows += [[Cell(overlay(image, m.values, size), m.label) for m in layer_maps] for layer_maps in maps.values()]
    return contact_sheet(rows, cell_size=cell_size, title=title)
