"""AlexNet and SqueezeNet 1.1 trunks: torchvision's keys and shapes, generated names, size rules."""

import pytest
import torch

from lossnet.backbones.small_trunks import LPIPS_LAYERS, SmallTrunk, small_trunk_classifier_shapes, trunk_layers
from lossnet.backbones.calibration import LPIPS_CHANNELS

# torchvision's state-dict keys and shapes, written out by hand from torchvision.models.alexnet / squeezenet1_1.
ALEXNET_KEYS = {
    "features.0.weight": (64, 3, 11, 11), "features.3.weight": (192, 64, 5, 5), "features.6.weight": (384, 192, 3, 3),
    "features.8.weight": (256, 384, 3, 3), "features.10.weight": (256, 256, 3, 3),
}
FIRES = {3: (64, 16, 64), 4: (128, 16, 64), 6: (128, 32, 128), 7: (256, 32, 128),
         9: (256, 48, 192), 10: (384, 48, 192), 11: (384, 64, 256), 12: (512, 64, 256)}


def _weights(sd):
    return {k: tuple(v.shape) for k, v in sd.items() if k.endswith("weight")}


def test_alexnet_keys_are_torchvisions():
    assert _weights(SmallTrunk("alexnet").state_dict()) == ALEXNET_KEYS
    assert len(SmallTrunk("alexnet").state_dict()) == 10


def test_squeezenet_keys_are_torchvisions():
    expected = {"features.0.weight": (64, 3, 3, 3)}
    for i, (cin, s, e) in FIRES.items():
        expected |= {f"features.{i}.squeeze.weight": (s, cin, 1, 1), f"features.{i}.expand1x1.weight": (e, s, 1, 1),
                     f"features.{i}.expand3x3.weight": (e, s, 3, 3)}
    assert _weights(SmallTrunk("squeezenet1_1").state_dict()) == expected


@pytest.mark.parametrize(("arch", "shape"), [("alexnet", (256, 6, 6)), ("squeezenet1_1", (512, 13, 13))])
def test_224_px_gives_torchvisions_feature_map(arch, shape):
    with torch.no_grad():
        assert tuple(SmallTrunk(arch).features(torch.rand(1, 3, 224, 224)).shape[1:]) == shape


@pytest.mark.parametrize("arch", ["alexnet", "squeezenet1_1"])
def test_layer_table_matches_the_network(arch):
    net, infos = SmallTrunk(arch).eval(), trunk_layers(arch)
    assert [i.index for i in infos] == list(range(len(net.features)))
    x = torch.rand(1, 3, 97, 131)
    with torch.no_grad():
        for info, module in zip(infos, net.features, strict=True):
            x = module(x)
            assert x.shape[1] == info.channels, info.name
    # min_size: the smallest input that gives a non-empty output at that layer, and one less gives none.
    deepest = infos[-1]
    with torch.no_grad():
        assert min(net.features(torch.rand(1, 3, deepest.min_size, deepest.min_size)).shape[-2:]) >= 1
        with pytest.raises(RuntimeError):
            net.features(torch.rand(1, 3, deepest.min_size - 1, deepest.min_size - 1))


@pytest.mark.parametrize(("arch", "net"), [("alexnet", "alex"), ("squeezenet1_1", "squeeze")])
def test_lpips_layers_have_the_heads_channels(arch, net):
    channels = {i.name: i.channels for i in trunk_layers(arch)}
    assert tuple(channels[n] for n in LPIPS_LAYERS[arch]) == LPIPS_CHANNELS[net]


def test_classifier_shapes():
    assert small_trunk_classifier_shapes("alexnet")["classifier.1.weight"] == (4096, 9216)
    assert small_trunk_classifier_shapes("squeezenet1_1") == {"classifier.1.weight": (1000, 512, 1, 1),
                                                              "classifier.1.bias": (1000,)}
