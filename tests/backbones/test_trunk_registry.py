"""One architecture registry: AlexNet and SqueezeNet 1.1 next to the VGGs, in the library and on the CLI."""

from __future__ import annotations

import pytest
import torch

import lossnet
from lossnet.backbones import vgg
from lossnet.backbones.archs import ALL_ARCHS, ARCHS
from lossnet.backbones.base import LayerInfo
from lossnet.backbones.small_trunks import SMALL_TRUNKS, TrunkLayer, trunk_layers
from lossnet.cli import main

VGGS = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def test_all_archs_lists_the_small_trunks_and_archs_stays_the_vggs() -> None:
    assert list(ARCHS) == VGGS and lossnet.ARCHS == ARCHS  # VGG-only callers (HED, .h5) keep their list
    assert list(ALL_ARCHS) == VGGS + ["alexnet", "squeezenet1_1"]
    assert lossnet.ALL_ARCHS == vgg.ALL_ARCHS == ALL_ARCHS
    assert set(SMALL_TRUNKS) < set(ALL_ARCHS)


@pytest.mark.parametrize("arch", ["alexnet", "squeezenet1_1"])
def test_every_arch_function_takes_the_small_trunks(arch: str) -> None:
    assert vgg.check_arch(arch) == arch
    infos = vgg.layer_info(arch)
    assert infos == trunk_layers(arch)  # one table, not two
    assert all(type(i) is LayerInfo for i in infos)
    assert vgg.layer_names(arch) == [i.name for i in infos]
    last = infos[-1]
    assert vgg.get_layer(arch, last.name) == last
    assert vgg.layer_index(arch, last.name) == len(infos) - 1
    assert lossnet.layer_names(arch) == vgg.layer_names(arch)


def test_trunk_layer_is_layer_info_with_real_min_sizes() -> None:
    assert TrunkLayer is LayerInfo
    relu5 = vgg.get_layer("alexnet", "relu5")
    assert (relu5.index, relu5.channels, relu5.downsampling, relu5.min_size) == (11, 256, 16, 31)
    # conv1 (11x11, stride 4, padding 2) needs 7 px for one output pixel: more than its stride
    assert vgg.get_layer("alexnet", "relu1").min_size == 7
    # the VGG rule is unchanged: min_size is the downsampling
    assert vgg.get_layer("vgg16", "relu5_3").min_size == 16
    assert LayerInfo("relu4_3", 22, "relu", 512, 8) == vgg.get_layer("vgg16", "relu4_3")


def test_check_layers_orders_small_trunk_names_and_suggests() -> None:
    assert vgg.check_layers("squeezenet1_1", ["fire9", "relu1", "fire3"]) == ["relu1", "fire3", "fire9"]
    with pytest.raises(lossnet.InputError, match="relu5"):
        vgg.check_layers("alexnet", ["relu_5"])
    with pytest.raises(lossnet.InputError, match="alexnet"):
        vgg.check_arch("alexnt")


def test_vgg_class_refuses_a_small_trunk() -> None:
    with pytest.raises(lossnet.InputError, match="alexnet"):
        vgg.VGG("alexnet")


def test_perceptual_loss_runs_on_alexnet() -> None:
    loss = lossnet.PerceptualLoss("alexnet", weights=None, feature_layers={"relu2": 1.0, "relu5": 0.5})
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    terms = loss.terms(x, y)
    assert set(terms) >= {"feature.relu2", "feature.relu5", "total"}
    assert float(terms["total"]) > 0


def _layers_table(capsys: pytest.CaptureFixture[str], arch: str) -> dict[str, list[str]]:
    assert main(["layers", arch]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "index", "channels", "stride", "min", "input"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_cli_layers_alexnet(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _layers_table(capsys, "alexnet")
    assert list(rows) == vgg.layer_names("alexnet")
    assert rows["relu5"] == ["11", "256", "16", "31"]  # index, channels, stride, min input


def test_cli_layers_squeezenet_and_vgg(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _layers_table(capsys, "squeezenet1_1")
    assert list(rows) == vgg.layer_names("squeezenet1_1")
    fire9 = vgg.get_layer("squeezenet1_1", "fire9")
    assert rows["fire9"] == ["12", "512", "16", str(fire9.min_size)]
    rows = _layers_table(capsys, "vgg16")
    assert rows["pool5"] == ["30", "512", "32", "32"]  # a VGG's min input is its stride


def test_cli_layers_help_lists_every_arch(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["layers", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for arch in ALL_ARCHS:
        assert arch in text
