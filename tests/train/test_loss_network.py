"""Which loss network a run uses offline, and the notes and errors that say so."""

from __future__ import annotations

import pytest

from lossnet.errors import InputError
from lossnet.train.config import task_config
from lossnet.train.loss_network import resolve_loss_network, training_loss

FASTAI = ["relu3_3", "relu4_3", "relu5_3"]


def test_recipe_network_kept_when_imagenet_can_be_had() -> None:
    chosen = resolve_loss_network("vgg16_bn", "auto", FASTAI, imagenet_available=True)
    assert (chosen.arch, chosen.weights, chosen.note) == ("vgg16_bn", "auto", "")


@pytest.mark.parametrize(("weights", "available", "why"), [("auto", False, "no ImageNet"), ("hed", True, "as asked")])
def test_fastai_layers_move_to_hed_vgg16_with_a_note(weights: str, available: bool, why: str) -> None:
    chosen = resolve_loss_network("vgg16_bn", weights, FASTAI, imagenet_available=available)
    assert (chosen.arch, chosen.weights) == ("vgg16", "hed")
    assert why in chosen.note and "--arch vgg16_bn --weights PATH" in chosen.note and "departure" in chosen.note


def test_explicit_loss_arch_wins() -> None:
    assert resolve_loss_network("vgg16_bn", "hed", FASTAI, loss_arch="vgg16").note == ""
    assert resolve_loss_network("vgg16_bn", "auto", FASTAI, loss_arch="vgg19").arch == "vgg19"


def test_layers_vgg16_lacks_are_a_one_line_error_naming_flags() -> None:
    with pytest.raises(InputError) as err:
        resolve_loss_network("vgg19", "hed", ["conv5_4"], imagenet_available=False)
    message = str(err.value)
    assert "conv5_4" in message and "--weights PATH" in message and "\n" not in message
    assert "batch norm" not in message  # the problem is depth, not normalisation


def test_offline_restore_recipe_builds_on_hed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default colorize/restore recipe works offline (LOSSNET_OFFLINE is set by conftest)."""
    loss, note = training_loss(task_config("restore"))
    assert loss.extractor is not None and loss.extractor.weights_id.startswith("hed:")
    assert set(loss.feature_layers) == set(FASTAI) and "HED" in note


def test_pixel_loss_needs_no_network() -> None:
    loss, note = training_loss(task_config("superres", loss="pixel"))
    assert loss.extractor is None and note == ""


def test_loss_arch_is_checked() -> None:
    with pytest.raises(InputError, match="loss_arch"):
        task_config("restore", loss_arch="resnet50")


def test_imagenet_weights_read_once_are_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """When ImageNet vgg16_bn can be had, the weights read to find out are the ones the loss uses."""
    import lossnet.train.loss_network as module
    from lossnet.backbones.preprocessing import TORCH
    from lossnet.backbones.weights import LoadedWeights

    reads = []

    def fake(arch: str) -> LoadedWeights:
        reads.append(arch)
        return LoadedWeights("imagenet:stub", "stub ImageNet weights", TORCH, None)

    monkeypatch.setattr(module, "_imagenet_weights", fake)
    loss, note = training_loss(task_config("restore"))
    assert reads == ["vgg16_bn"] and note == ""
    assert loss.extractor.arch == "vgg16_bn" and loss.extractor.weights_id == "imagenet:stub"


def test_lpips_and_dists_recipes_need_their_trunk_or_an_explicit_allowance() -> None:
    """Offline (HED only) the published metrics cannot be had: refused, unless allowed and then labelled."""
    from lossnet.errors import DistsUnavailableError, LpipsUnavailableError

    with pytest.raises(LpipsUnavailableError, match="allow-uncalibrated"):
        training_loss(task_config("superres", loss="lpips_vgg"))
    with pytest.raises(DistsUnavailableError):
        training_loss(task_config("superres", loss="dists", loss_weights="hed"))
    loss, note = training_loss(task_config("superres", loss="lpips_vgg", allow_uncalibrated=True))
    assert [t.key for t in loss.engine] == ["pixel", "lpips_like"]
    assert loss.extractor.weights_id.startswith("hed:")
    assert loss.extractor.layers == ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    loss, _ = training_loss(task_config("superres", loss="dists", allow_uncalibrated=True))
    assert [t.key for t in loss.engine] == ["dists_like"] and loss.extractor.pooling == "l2"
