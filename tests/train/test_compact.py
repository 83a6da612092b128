"""``lossnet train superres --model Compact``: every loss, resume, tiled apply and the export apps load."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from safetensors.torch import load_file

from lossnet.checkpoint import load_checkpoint
from lossnet.cli import main
from lossnet.data.defaults import default_image_path
from lossnet.data.io import load_image, save_image
from lossnet.inference import load_model
from lossnet.losses.presets import PRESETS
from lossnet.models import Compact, compact_hyperparameters
from lossnet.train import train
from lossnet.train.config import LOSS_KINDS
from tests.inference.checkpoints import ONE_PIXEL, reference

TINY_COMPACT = {"num_feat": 8, "num_conv": 2}


def flags(out, steps: int = 4) -> list[str]:
    return [
        "train", "superres", "--model", "Compact", "--model-kwargs", "num_feat=8,num_conv=2", "--crop-size", "32",
        "--val-size", "32", "--image-size", "96", "--batch-size", "2", "--steps", str(steps), "--loss-weights", "none",
        "--out-dir", str(out), "--log-every", "1", "--val-every", "2", "--checkpoint-every", "2",
    ]  # fmt: skip


def losses(out) -> list[float]:
    with open(out / "log.csv", newline="") as f:
        return [float(row["total"]) for row in csv.DictReader(f)]


def test_train_stop_resume_apply_tiled_and_export(tmp_path, capsys) -> None:
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(flags(whole)) == 0
    assert main(flags(part) + ["--stop-after", "2"]) == 0
    assert load_checkpoint(part / "checkpoint.safetensors").meta["step"] == 2
    assert main(["train", "superres", "--resume", str(part / "checkpoint.safetensors"), "--stop-after", "none"]) == 0
    capsys.readouterr()

    # The resumed run is the uninterrupted one: same losses, same weights.
    meta = load_checkpoint(part / "model.safetensors").meta
    assert meta["step"] == 4 and meta["model"] == {"name": "Compact", "kwargs": {"scale": 4, "in_channels": 3,
                                                                              **TINY_COMPACT}}  # fmt: skip
    assert losses(part) == pytest.approx(losses(whole), rel=1e-6) and all(math.isfinite(v) for v in losses(part))
    model, again = load_model(part / "model.safetensors"), load_model(whole / "model.safetensors")
    for (key, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), key
    assert isinstance(model, Compact) and model.body[-1].weight.abs().sum() > 0  # it trained

    # `lossnet apply` in tiles: this network sees 4 px around a pixel (num_conv + 2 3x3 convs), and a 16 px
    # overlap gives each tile 16 / 4 = 4 px of context, so the tiles reproduce the whole-image output.
    image = load_image(default_image_path("coffee"), size=96)[..., :61, :93]
    save_image(image, tmp_path / "in" / "coffee.png")
    argv = ["apply", "--model", str(part / "model.safetensors"), "--input", str(tmp_path / "in"), "--output",
            str(tmp_path / "out"), "--tile", "32", "--overlap", "16", "--device", "cpu",
            "--precision", "fp32"]  # fmt: skip
    assert main(argv) == 0
    assert "Compact x4" in capsys.readouterr().out
    expected = reference(model, load_image(tmp_path / "in" / "coffee.png"), "superres", 1).clamp(0, 1)
    written = load_image(tmp_path / "out" / "coffee.png")
    assert written.shape == expected.shape == (1, 3, 61 * 4, 93 * 4)
    assert (written - expected).abs().max() <= ONE_PIXEL / 2 + 1e-6  # 8-bit rounding only

    # The export upscaler apps load holds the trained weights under the published names.
    assert main(["export", "--model", str(part / "model.safetensors"), "--format", "spandrel",
                 "--output", str(tmp_path / "compact_x4.safetensors")]) == 0  # fmt: skip
    assert "upscaler apps detect it" in capsys.readouterr().out
    weights = load_file(tmp_path / "compact_x4.safetensors")
    assert compact_hyperparameters(weights) == {"scale": 4, "in_channels": 3, "out_channels": 3, **TINY_COMPACT,
                                                "act_type": "prelu"}  # fmt: skip
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "loss", [pytest.param(k, marks=pytest.mark.slow) if k in PRESETS else k for k in (*LOSS_KINDS, *PRESETS)]
)
def test_trains_with_every_loss(loss, tiny) -> None:
    config = tiny("superres", model="Compact", model_kwargs=TINY_COMPACT, loss=loss, steps=2, allow_uncalibrated=True)
    result = train(config)
    assert result.step == 2 and all(math.isfinite(row["total"]) for row in result.history)
    assert load_checkpoint(result.model).meta["model"]["name"] == "Compact"
    assert math.isfinite(result.val["psnr"]) and result.val["psnr"] > 10
