"""``lossnet export`` and ``lossnet info``: a trained model, its two exports, one card."""

from __future__ import annotations

import csv
import hashlib

import pytest

import lossnet
from lossnet.cli import main
from lossnet.train import train
from lossnet.train.config import loss_kwargs, task_config

pytest.importorskip("onnxruntime", reason="the export extra (pip install 'lossnet[export]') is not installed")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny super-resolution run of 2 steps on the embedded default images (under a second)."""
    out = tmp_path_factory.mktemp("run") / "sr"
    config = task_config(
        "superres", model_kwargs={"channels": 8, "num_residual": 1, "head_kernel_size": 3}, scale=2, crop_size=32,
        val_size=32, image_size=96, batch_size=2, steps=2, loss_weights=None, out_dir=str(out), val_every=2,
    )  # fmt: skip
    train(config)
    return out, config


def _info(path, capsys) -> dict[str, str]:
    assert main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    return dict(line.split(": ", 1) for line in lines)


def test_info_prints_the_same_card_for_a_trained_model_and_its_two_exports(trained, capsys) -> None:
    out, config = trained
    model = out / "model.safetensors"
    assert main(["export", "--model", str(model), "--format", "onnx", "--output", str(out / "sr.onnx")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out / 'sr.onnx'} (ONNX opset 17, float32)") and "checked against PyTorch" in printed
    assert main(["export", "--model", str(model), "--format", "torchscript", "--output", str(out / "sr.pt")]) == 0
    capsys.readouterr()

    cards = {path.suffix: _info(path, capsys) for path in (model, out / "sr.onnx", out / "sr.pt")}
    for suffix, card in cards.items():
        path = {".safetensors": model, ".onnx": out / "sr.onnx", ".pt": out / "sr.pt"}[suffix]
        assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cards[".safetensors"]["file"] == f"{model} (safetensors)"
    assert cards[".onnx"]["file"] == f"{out / 'sr.onnx'} (onnx, ONNX opset 17)"
    assert cards[".pt"]["file"] == f"{out / 'sr.pt'} (torchscript)"

    card = cards[".safetensors"]
    assert card["task"] == "superres"
    assert card["network"] == (
        'SuperResNet x2 {"scale": 2, "channels": 8, "num_residual": 1, "head_kernel_size": 3}; '
        "size rule: H and W multiples of 1, at least 2"
    )
    # The resolved weights: the recipe's, as the trainer built its loss from the config.
    kwargs = loss_kwargs(config)
    expected = [f"pixel {kwargs['pixel_weight']:g}"] + [f"feature.{k} {v:g}" for k, v in kwargs["feature_layers"].items()]
    assert card["loss"] == "perceptual (lossnet_superres): " + ", ".join(expected)
    assert card["trunk"] == "vgg16, weights random"
    assert (card["steps"], card["data"], card["lossnet version"]) == ("2", "embedded default", lossnet.__version__)
    with open(out / "val.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert list(last) == ["step", "psnr", "ssim", "baseline_psnr", "baseline_ssim"]
    assert card["validation"] == ", ".join(f"{k} {float(v):.4g}" for k, v in last.items() if k != "step")
    same = ("task", "network", "loss", "trunk", "steps", "data", "validation", "lossnet version")
    for suffix in (".onnx", ".pt"):
        assert {k: cards[suffix][k] for k in same} == {k: card[k] for k in same}
        assert cards[suffix]["interface"] == (
            "input (B, 3, H, W) float32 RGB in [0, 1], H and W multiples of 1 and at least 2; output (B, 3, 2H, 2W) in [0, 1]"
        )
    assert "interface" not in card


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "torchscript", "--fp16"], "fp16 is for ONNX files"),
        (["--format", "torchscript", "--opset", "17"], "opset is for ONNX files"),
        (["--opset", "9"], "opset must be an int in 11-20"),
        (["--output", "x.bin"], "ends in .onnx"),
        (["--format", "spandrel"], "no upscaler app detects SuperResNet"),
        (["--format", "spandrel", "--fp16"], "fp16 is for ONNX files"),
    ],
)
def test_export_refusals_are_one_line(trained, tmp_path, capsys, flags, message) -> None:
    out, _ = trained
    argv = ["export", "--model", str(out / "model.safetensors"), "--output", str(tmp_path / "m.onnx"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_export_of_an_export_and_info_of_a_missing_file(trained, tmp_path, capsys) -> None:
    out, _ = trained
    model = out / "model.safetensors"
    assert main(["export", "--model", str(model), "--output", str(tmp_path / "a.onnx")]) == 0
    capsys.readouterr()
    assert main(["export", "--model", str(tmp_path / "a.onnx"), "--output", str(tmp_path / "b.onnx")]) == 2
    assert "is already an exported onnx file; export from the .safetensors model" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.safetensors")]) == 2
    assert "no such model file" in capsys.readouterr().err
