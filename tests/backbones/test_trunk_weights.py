"""Weights for AlexNet and SqueezeNet 1.1: ImageNet through torch.hub, and what only a VGG has (HED, .h5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lossnet
from lossnet import FeatureExtractor
from lossnet.backbones.small_trunks import SmallTrunk
from lossnet.backbones.weights import (
    IMAGENET_URLS,
    imagenet_digest,
    is_imagenet,
    load_weights,
    parse_weights_id,
)


def test_imagenet_urls_and_digests() -> None:
    assert IMAGENET_URLS["alexnet"] == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert IMAGENET_URLS["squeezenet1_1"] == "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"
    assert imagenet_digest("alexnet") == "7be5be79"
    assert imagenet_digest("squeezenet1_1") == "b8a52dc0"
    assert parse_weights_id("imagenet:alexnet-owt-7be5be79").digest == "7be5be79"
    assert parse_weights_id("imagenet:squeezenet1_1-b8a52dc0").digest == "b8a52dc0"
    assert is_imagenet("imagenet:alexnet-owt-7be5be79", "alexnet")
    assert is_imagenet("file:copy.pth:b8a52dc0", "squeezenet1_1")
    assert not is_imagenet("imagenet:alexnet-owt-7be5be79", "squeezenet1_1")


def test_alexnet_imagenet_offline_error(empty_hub: Path) -> None:
    with pytest.raises(lossnet.WeightsUnavailableError) as exc:
        load_weights("alexnet", "imagenet")
    msg = str(exc.value)
    assert isinstance(exc.value, FileNotFoundError)
    assert "alexnet-owt-7be5be79.pth" in msg and "LOSSNET_OFFLINE" in msg and str(empty_hub) in msg
    assert "weights=None" in msg and "weights='hed'" not in msg  # HED is not offered where it cannot work
    with pytest.raises(lossnet.WeightsUnavailableError, match="squeezenet1_1-b8a52dc0.pth"):
        FeatureExtractor("squeezenet1_1", ["relu1"], weights="imagenet")
    # The default is "auto" (was "imagenet"): no HED fallback for squeezenet1_1, and the error says so.
    no_fallback = r"weights='auto': .*squeezenet1_1-b8a52dc0\.pth.* only for vgg16"
    with pytest.raises(lossnet.WeightsUnavailableError, match=no_fallback):
        FeatureExtractor("squeezenet1_1", ["relu1"])


def test_alexnet_imagenet_from_hub_cache(empty_hub: Path) -> None:
    torch.manual_seed(3)
    net = SmallTrunk("alexnet")
    empty_hub.mkdir(parents=True)
    sd = dict(net.state_dict())
    sd.update({k: torch.zeros(1).expand(*s) for k, s in lossnet.backbones.loaders.head_shapes("alexnet").items()})
    torch.save(sd, empty_hub / "alexnet-owt-7be5be79.pth")
    loaded = load_weights("alexnet", "imagenet")
    assert loaded.id == "imagenet:alexnet-owt-7be5be79" and is_imagenet(loaded, "alexnet")
    assert loaded.preprocessing.name == "torch"
    fx = FeatureExtractor("alexnet", ["relu2"], weights="imagenet")
    for key, value in fx.features.state_dict().items():
        assert torch.equal(value, net.features.state_dict()[key]), key


@pytest.mark.parametrize("arch", ["alexnet", "squeezenet1_1"])
def test_hed_is_refused_for_small_trunks(arch: str) -> None:
    with pytest.raises(lossnet.WeightsError, match="not a VGG") as exc:
        load_weights(arch, "hed")
    assert arch in str(exc.value) and "weights='imagenet'" in str(exc.value)
    with pytest.raises(lossnet.WeightsError, match="hed"):
        FeatureExtractor(arch, ["relu1"], weights="hed")


def test_auto_has_no_fallback_for_alexnet(empty_hub: Path) -> None:
    with pytest.raises(lossnet.WeightsUnavailableError, match="only for vgg16"):
        load_weights("alexnet", "auto")


def test_keras_file_is_refused_for_alexnet(tmp_path: Path) -> None:
    path = tmp_path / "alexnet.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")  # never opened: refused before reading
    with pytest.raises(lossnet.WeightsError, match="VGGs only") as exc:
        load_weights("alexnet", path)
    assert not isinstance(exc.value, FileNotFoundError)
