"""FeatureExtractor on AlexNet, SqueezeNet 1.1, and VGGs with L2 pooling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import lossnet
from lossnet import FeatureExtractor
from lossnet.backbones.pooling import L2Pool2d
from lossnet.backbones.small_trunks import LPIPS_LAYERS, SmallTrunk
from lossnet.backbones.vgg import VGG, get_layer
from tests.backbones.reference import randomised_features, relu_names, torchvision_state_dict

# LPIPS layer shapes at 64 px, worked out by hand from the layer geometry:
# AlexNet: conv1 (11, stride 4, pad 2) 64 -> 15, pool (3, 2) -> 7, pool -> 3.
# SqueezeNet: conv1 (3, stride 2) 64 -> 31, ceil-mode pools (3, 2) -> 15 -> 7 -> 3.
SHAPES_64 = {
    "alexnet": {"relu1": (64, 15, 15), "relu2": (192, 7, 7), "relu3": (384, 3, 3), "relu4": (256, 3, 3),
                "relu5": (256, 3, 3)},
    "squeezenet1_1": {"relu1": (64, 31, 31), "fire3": (128, 15, 15), "fire5": (256, 7, 7), "fire6": (384, 3, 3),
                      "fire7": (384, 3, 3), "fire8": (512, 3, 3), "fire9": (512, 3, 3)},
}


def _trunk_file(arch: str, path: Path, seed: int = 0) -> SmallTrunk:
    """A SmallTrunk with seeded weights saved to ``path`` as torchvision lays it out (classifier included)."""
    torch.manual_seed(seed)
    net = SmallTrunk(arch).eval()
    with torch.no_grad():
        for p in net.parameters():  # non-zero biases too, so a bias that fails to load shows
            p.add_(torch.randn_like(p) * 0.05)
    sd = dict(net.state_dict())
    for key, shape in lossnet.backbones.loaders.head_shapes(arch).items():
        sd[key] = torch.randn(1).expand(*shape)  # stride 0: the file stays small
    torch.save(sd, path)
    return net


@pytest.mark.parametrize("arch", ["alexnet", "squeezenet1_1"])
def test_lpips_layers_shapes_and_values_match_the_trunk_by_hand(arch: str, tmp_path: Path) -> None:
    path = tmp_path / f"{arch}.pth"
    net = _trunk_file(arch, path)
    fx = FeatureExtractor(arch, list(LPIPS_LAYERS[arch]), weights=path)
    assert fx.arch == arch and fx.weights_id.startswith(f"file:{arch}.pth:")
    x = torch.rand(2, 3, 64, 64)
    out = fx(x)
    assert list(out) == list(LPIPS_LAYERS[arch])
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == SHAPES_64[arch]
    # the same as running SmallTrunk.features module by module on the preprocessed input
    h = fx.preprocess(x).contiguous(memory_format=torch.channels_last)  # the extractor's CPU layout: same sums
    with torch.no_grad():
        for name in LPIPS_LAYERS[arch]:
            ref = net.features[: get_layer(arch, name).index + 1](h)
            torch.testing.assert_close(out[name], ref, rtol=0, atol=0)
    deepest = get_layer(arch, LPIPS_LAYERS[arch][-1]).index
    assert len(fx.features) == deepest + 1
    assert not any(p.requires_grad for p in fx.parameters())


@pytest.mark.parametrize(("arch", "layer"), [("alexnet", "relu5"), ("squeezenet1_1", "fire9")])
def test_min_size_of_small_trunks(arch: str, layer: str) -> None:
    fx = FeatureExtractor(arch, ["relu1", layer], weights=None)
    need = get_layer(arch, layer).min_size
    assert fx.min_size == need > get_layer(arch, layer).downsampling
    if arch == "alexnet":
        assert need == 31
    assert min(fx(torch.rand(1, 3, need, need))[layer].shape[-2:]) >= 1
    with pytest.raises(lossnet.InputError, match=layer):
        fx(torch.rand(1, 3, need - 1, need + 10))
    # and the rule is tight: one pixel less really gives the bare trunk an empty (or invalid) map
    with torch.no_grad(), pytest.raises(RuntimeError):
        out = fx.features(torch.rand(1, 3, need - 1, need - 1))
        assert min(out.shape[-2:]) >= 1


def test_vgg_file_does_not_fit_alexnet(tmp_path: Path) -> None:
    path = tmp_path / "vgg11.pth"
    torch.save(torchvision_state_dict(randomised_features("vgg11")), path)
    with pytest.raises(lossnet.WeightsError, match="does not fit alexnet"):
        FeatureExtractor("alexnet", ["relu1"], weights=path)


def test_alexnet_file_does_not_fit_squeezenet_or_vgg(tmp_path: Path) -> None:
    path = tmp_path / "alexnet.pth"
    _trunk_file("alexnet", path)
    with pytest.raises(lossnet.WeightsError, match="does not fit squeezenet1_1"):
        FeatureExtractor("squeezenet1_1", ["relu1"], weights=path)
    with pytest.raises(lossnet.WeightsError, match="does not fit vgg11"):
        FeatureExtractor("vgg11", ["relu1_1"], weights=path)


def test_wrong_classifier_shape_is_refused(tmp_path: Path) -> None:
    net = SmallTrunk("alexnet")
    sd = dict(net.state_dict())
    sd["classifier.1.weight"] = torch.zeros(1).expand(4096, 25088)  # VGG's head, not AlexNet's 256*6*6
    path = tmp_path / "bad_head.pth"
    torch.save(sd, path)
    with pytest.raises(lossnet.WeightsError, match="classifier.1.weight"):
        FeatureExtractor("alexnet", ["relu1"], weights=path)


# -- L2 pooling -----------------------------------------------------------------------------------


def test_vgg_l2_pooling_keeps_keys_and_swaps_every_pool() -> None:
    max_net, l2_net = VGG("vgg16"), VGG("vgg16", pooling="l2")
    assert list(max_net.state_dict()) == list(l2_net.state_dict())
    pools = [i for i, m in enumerate(max_net.features) if isinstance(m, nn.MaxPool2d)]
    assert pools == [4, 9, 16, 23, 30]
    assert all(isinstance(l2_net.features[i], L2Pool2d) for i in pools)
    assert not any(isinstance(m, nn.MaxPool2d) for m in l2_net.features)
    l2_net.load_state_dict(max_net.state_dict())  # strict: the same parameters fit


def test_extractor_l2_pooling_shapes_values_and_repr(tmp_path: Path) -> None:
    path = tmp_path / "vgg16.pth"
    torch.save(torchvision_state_dict(randomised_features("vgg16")), path)  # an ImageNet-style VGG file loads
    relus = relu_names("vgg16")
    fx_max = FeatureExtractor("vgg16", ["relu2_2", "relu3_3"], weights=path)
    fx_l2 = FeatureExtractor("vgg16", ["relu2_2", "relu3_3"], weights=path, pooling="l2")
    assert fx_l2.pooling == "l2" and "pooling='l2'" in repr(fx_l2) and "pooling" not in repr(fx_max)
    assert isinstance(fx_l2.features[4], L2Pool2d) and relus["relu2_2"] == 8
    for (k, a), b in zip(fx_max.features.state_dict().items(), fx_l2.features.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 33, 33)
    out_max, out_l2 = fx_max(x), fx_l2(x)
    assert out_l2["relu2_2"].shape == (1, 128, 17, 17)  # ceil(33 / 2)
    assert out_max["relu2_2"].shape == (1, 128, 16, 16)  # floor(33 / 2)
    assert out_l2["relu3_3"].shape == (1, 256, 9, 9)  # ceil(17 / 2)
    even = torch.rand(1, 3, 32, 32)
    a, b = fx_max(even)["relu2_2"], fx_l2(even)["relu2_2"]
    assert a.shape == b.shape and not torch.allclose(a, b)
    # the conservative min-size rule is kept under L2 pooling
    assert fx_l2.min_size == fx_max.min_size == 4


@pytest.mark.parametrize("arch", ["alexnet", "squeezenet1_1"])
def test_l2_pooling_is_vgg_only(arch: str) -> None:
    with pytest.raises(lossnet.InputError, match="not a VGG"):
        FeatureExtractor(arch, ["relu1"], weights=None, pooling="l2")


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(lossnet.InputError, match="pooling"):
        FeatureExtractor("vgg11", ["relu1_1"], weights=None, pooling="avg")
    with pytest.raises(lossnet.InputError, match="pooling"):
        VGG("vgg11", pooling="mean")
