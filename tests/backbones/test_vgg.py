"""VGG definitions: layer names, indices and the torchvision layout."""

from __future__ import annotations

import pytest
from torch import nn

import lossnet
from lossnet.backbones.vgg import VGG, LayerInfo, check_layers, get_layer, layer_index, layer_info, layer_names
from tests.backbones.reference import ALL_ARCHS, make_layers, relu_names

# Typed from torchvision (module counts of vgg*.features) and from the usual perceptual-loss indices.
N_MODULES = {
    "vgg11": 21,
    "vgg13": 25,
    "vgg16": 31,
    "vgg19": 37,
    "vgg11_bn": 29,
    "vgg13_bn": 35,
    "vgg16_bn": 44,
    "vgg19_bn": 53,
}
N_CONVS = {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16}

VGG11_NAMES = [
    "conv1_1",
    "relu1_1",
    "pool1",
    "conv2_1",
    "relu2_1",
    "pool2",
    "conv3_1",
    "relu3_1",
    "conv3_2",
    "relu3_2",
    "pool3",
    "conv4_1",
    "relu4_1",
    "conv4_2",
    "relu4_2",
    "pool4",
    "conv5_1",
    "relu5_1",
    "conv5_2",
    "relu5_2",
    "pool5",
]
VGG16_INDICES = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29, "pool5": 30, "conv4_2": 19}
VGG19_INDICES = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "conv4_2": 21, "relu5_1": 29, "relu5_4": 35}
VGG16_BN_RELUS = [2, 5, 9, 12, 16, 19, 22, 26, 29, 32, 36, 39, 42]


def expected_names(arch: str) -> list[str]:
    """The layer names walked from the torchvision module list built in reference.py."""
    names, block, n = [], 1, 0
    for m in make_layers(arch):
        if isinstance(m, nn.MaxPool2d):
            names.append(f"pool{block}")
            block, n = block + 1, 0
        elif isinstance(m, nn.Conv2d):
            n += 1
            names.append(f"conv{block}_{n}")
        elif isinstance(m, nn.BatchNorm2d):
            names.append(f"bn{block}_{n}")
        else:
            names.append(f"relu{block}_{n}")
    return names


def test_archs_are_the_eight_torchvision_vggs() -> None:
    assert sorted(lossnet.ARCHS) == sorted(ALL_ARCHS)


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_layer_names_match_torchvision_structure(arch: str) -> None:
    names = layer_names(arch)
    assert names == expected_names(arch)
    assert len(names) == N_MODULES[arch]
    assert len(set(names)) == len(names), "layer names must be unique"
    assert names[-1] == "pool5"
    base = arch.removesuffix("_bn")
    assert sum(n.startswith("conv") for n in names) == N_CONVS[base]
    assert sum(n.startswith("relu") for n in names) == N_CONVS[base]
    assert sum(n.startswith("pool") for n in names) == 5
    n_bn = sum(n.startswith("bn") for n in names)
    assert n_bn == (N_CONVS[base] if arch.endswith("_bn") else 0)
    # every name maps back to its own index, and the index is the position in the torchvision stack
    for i, name in enumerate(names):
        assert layer_index(arch, name) == i


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_relu_indices_match_reference(arch: str) -> None:
    for name, index in relu_names(arch).items():
        assert layer_index(arch, name) == index


def test_vgg11_names_literal() -> None:
    assert layer_names("vgg11") == VGG11_NAMES


def test_vgg16_known_indices() -> None:
    assert sum(n.startswith("conv") for n in layer_names("vgg16")) == 13
    for name, index in VGG16_INDICES.items():
        assert layer_index("vgg16", name) == index


def test_vgg19_known_indices_and_conv5_4_only_in_vgg19() -> None:
    for name, index in VGG19_INDICES.items():
        assert layer_index("vgg19", name) == index
    for arch in lossnet.ARCHS:
        assert ("conv5_4" in layer_names(arch)) == arch.startswith("vgg19")


def test_vgg16_bn_relu_indices() -> None:
    relus = [info.index for info in layer_info("vgg16_bn") if info.kind == "relu"]
    assert relus == VGG16_BN_RELUS
    assert layer_index("vgg16_bn", "bn1_1") == 1
    assert layer_index("vgg16_bn", "relu2_2") == 12


def test_bn_layers_only_in_bn_variants() -> None:
    for arch in lossnet.ARCHS:
        has_bn = any(n.startswith("bn") for n in layer_names(arch))
        assert has_bn == arch.endswith("_bn")


def test_layer_info_kinds_channels_and_strides() -> None:
    info = get_layer("vgg16", "relu4_3")
    assert info == LayerInfo("relu4_3", 22, "relu", 512, 8)
    assert get_layer("vgg19", "relu3_1").channels == 256
    assert get_layer("vgg19", "relu3_1").downsampling == 4
    assert get_layer("vgg11", "pool1").downsampling == 2
    assert get_layer("vgg11", "pool1").channels == 64
    assert get_layer("vgg13_bn", "bn2_2").kind == "bn"


def test_layer_info_min_size() -> None:
    assert get_layer("vgg16", "pool5").min_size == 32
    assert get_layer("vgg16", "relu1_1").min_size == 1
    assert get_layer("vgg16", "relu5_3").min_size == 16
    assert get_layer("vgg19_bn", "pool1").min_size == 2


@pytest.mark.parametrize("arch", ["vgg11", "vgg16_bn", "vgg19"])
def test_min_size_is_the_smallest_non_empty_input(arch: str) -> None:
    # Independent check with output-size arithmetic: each 2x2/2 pool floors the size by 2.
    for info in layer_info(arch):
        pools = info.downsampling.bit_length() - 1

        def out_size(s: int, pools: int = pools) -> int:
            for _ in range(pools):
                s //= 2
            return s

        assert out_size(info.min_size) >= 1
        assert out_size(info.min_size - 1) == 0 or info.min_size == 1


@pytest.mark.parametrize(("typo", "closest"), [("rlu2_2", "relu2_2"), ("conv_4_2", "conv4_2"), ("pool_5", "pool5")])
def test_unknown_layer_name_suggests_closest(typo: str, closest: str) -> None:
    with pytest.raises(lossnet.InputError) as exc:
        get_layer("vgg16", typo)
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert repr(typo) in msg
    # the closest name is the first suggestion
    assert f"Did you mean {closest!r}" in msg


def test_unknown_layer_name_suggests_same_block() -> None:
    # relu2_3 is as similar to relu2_2 as to relu3_3, relu4_3, relu5_3: the same block must be suggested
    with pytest.raises(lossnet.InputError) as exc:
        get_layer("vgg16", "relu2_3")
    suggestions = str(exc.value).split("Did you mean", 1)[1].split("?", 1)[0]
    assert "'relu2_2'" in suggestions


def test_unknown_layer_name_through_check_layers() -> None:
    with pytest.raises(ValueError, match="conv5_4"):
        check_layers("vgg16", ["relu1_1", "conv5_4"])


def test_check_layers_orders_and_deduplicates() -> None:
    assert check_layers("vgg16", ["relu3_3", "relu1_2", "relu3_3"]) == ["relu1_2", "relu3_3"]
    assert check_layers("vgg16", "relu2_2") == ["relu2_2"]
    with pytest.raises(lossnet.InputError):
        check_layers("vgg16", [])
    with pytest.raises(lossnet.InputError):
        check_layers("vgg16", 5)


def test_unknown_arch_lists_valid_ones() -> None:
    with pytest.raises(lossnet.InputError) as exc:
        layer_names("vgg17")
    msg = str(exc.value)
    for arch in lossnet.ARCHS:
        assert repr(arch) in msg
    assert "Did you mean" in msg
    with pytest.raises(ValueError):
        VGG("resnet50")


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_vgg_state_dict_is_torchvision_layout(arch: str) -> None:
    ours = VGG(arch).state_dict()
    ref = {f"features.{k}": v for k, v in make_layers(arch).state_dict().items()}
    assert list(ours) == list(ref)
    for key in ref:
        assert ours[key].shape == ref[key].shape, key
    # no classifier is built
    assert not any(k.startswith("classifier") for k in ours)


def test_vgg_relus_are_not_inplace() -> None:
    net = VGG("vgg11")
    relus = [m for m in net.features if isinstance(m, nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)
