from __future__ import annotations

import torch

from lossnet import FeatureExtractor
from lossnet.explore.activations import activation_maps, activation_sheet


def test_strongest_channels_come_first_and_maps_are_the_activations() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
    image = torch.rand(1, 3, 16, 16)
    maps = activation_maps(fx, image, top_k=3)
    acts = fx(image)
    for layer, layer_maps in maps.items():
        assert len(layer_maps) == 4 and layer_maps[0].channel is None
        torch.testing.assert_close(layer_maps[0].values, acts[layer].mean(1, keepdim=True))
        means = acts[layer].mean(dim=(0, 2, 3))
        channels = [m.channel for m in layer_maps[1:]]
        assert [round(m.mean, 5) for m in layer_maps[1:]] == [
            round(float(v), 5) for v in means.sort(descending=True).values[:3]
        ]
        for m in layer_maps[1:]:
            assert torch.equal(m.values, acts[layer][:, m.channel : m.channel + 1])
        assert len(set(channels)) == 3
    sheet = activation_sheet(image, maps, cell_size=120)  # wide enough for "relu1_1 all channels" on one line
    # the 16 px image's row (a one-line caption), then one row per layer (two-line captions); never enlarged
    assert sheet.size == (4 * 126 + 6, (16 + 18 + 6) + 2 * (16 + 32 + 6) + 6)
