"""``lossnet export`` on style_multi and style_any checkpoints writes files that ``lossnet apply`` runs, with the
style given as it is given to the checkpoint (``--style`` / ``--style-mix``; ``--style-image`` / ``--alpha``)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from PIL import Image

from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.cli import main
from lossnet.models import model_spec
from lossnet.train import train
from lossnet.train.config import task_config
from tests.export.networks import style_network

pytest.importorskip("onnxruntime", reason="the export extra (pip install 'lossnet[export]') is not installed")

FORMATS = {"onnx": "m.onnx", "torchscript": "m.pt"}
ADAIN = model_spec("AdaINNet", arch="vgg11", weights=None)  # a random trunk (kept in the checkpoint)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny style_multi run of 4 steps on the embedded images, a style_any checkpoint (its decoder untrained, and
    scaled so that its outputs are not clamped flat, as 2 training steps leave them), each exported to ONNX and
    TorchScript by the CLI, what export printed, and a photo and a style image of odd sizes."""
    root = tmp_path_factory.mktemp("styles")
    config = task_config(
        "style_multi", model_kwargs={"channels": 4, "num_residual": 1}, crop_size=32, val_size=32, image_size=96,
        style_size=64, batch_size=2, steps=4, loss_weights=None, out_dir=str(root / "style_multi"), val_every=4,
    )  # fmt: skip
    train(config)
    (root / "style_any").mkdir()
    meta = model_meta(ADAIN, task="style_any", step=2)
    adain = style_network("AdaINNet", ADAIN["kwargs"])
    save_checkpoint(root / "style_any" / "model.safetensors", adain.state_dict(), meta)
    printed = io.StringIO()
    for task in ("style_multi", "style_any"):
        for fmt, name in FORMATS.items():
            argv = ["export", "--model", str(root / task / "model.safetensors"), "--format", fmt]
            with contextlib.redirect_stdout(printed):
                assert main([*argv, "--out", str(root / task / name)]) == 0
    (root / "printed.txt").write_text(printed.getvalue())
    rng = np.random.default_rng(0)
    (root / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).save(root / "in" / "photo.png")
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(root / "style.png")
    return root


def _apply(model, root, out, *flags) -> np.ndarray:
    argv = ["apply", "--model", str(model), str(root / "in" / "photo.png"), "--out", str(out), "--precision", "fp32"]
    assert main([*argv, "--tile", "0", *flags]) == 0
    return np.asarray(Image.open(out / "photo.png"), dtype=np.int16)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_an_exported_style_multi_file_applies_a_style_and_a_mix_as_the_checkpoint_does(runs, fmt, capsys) -> None:
    run = runs / "style_multi"
    printed = (runs / "printed.txt").read_text()
    assert f"wrote {run / 'm.onnx'} (ONNX opset 17, float32): input image (B, 3, H, W)" in printed
    assert f"wrote {run / 'm.pt'} (TorchScript, float32): input image (B, 3, H, W)" in printed
    wants = []
    for flags in (["--style", "1"], ["--style", "0"], ["--style-mix", "0.3,0.7"]):
        wants.append(want := _apply(run / "model.safetensors", runs, run / "ckpt", *flags))
        got = _apply(run / FORMATS[fmt], runs, run / fmt, *flags)
        assert got.shape == want.shape == (45, 61, 3)
        assert np.abs(got - want).max() <= 1, (fmt, flags)  # one 8-bit step, where a value sits on a rounding edge
    assert np.abs(wants[0] - wants[1]).max() > 1 and want.std() > 5  # two styles, and not one flat colour
    argv = ["apply", "--model", str(run / FORMATS[fmt]), str(runs / "in"), "--out", str(run / "none")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds 2 styles (0 brick, 1 ihc); pick one with --style K" in err
    assert main(["info", str(run / FORMATS[fmt])]) == 0
    assert "styles: 0 brick, 1 ihc" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_an_exported_style_any_file_applies_a_style_image_and_alpha_as_the_checkpoint_does(runs, fmt, capsys) -> None:
    run = runs / "style_any"
    printed = (runs / "printed.txt").read_text()
    assert f"wrote {run / 'm.onnx'} (ONNX opset 17, float32): input content (B, 3, H, W)" in printed
    style = ["--style-image", str(runs / "style.png")]
    wants = []
    for flags in (style, [*style, "--alpha", "0.5"]):
        wants.append(want := _apply(run / "model.safetensors", runs, run / "ckpt", *flags))
        got = _apply(run / FORMATS[fmt], runs, run / fmt, *flags)
        assert got.shape == want.shape == (45, 61, 3)
        assert np.abs(got - want).max() <= 1, (fmt, flags)
        assert "AdaINNet (style_any, step 2" in capsys.readouterr().out
    assert np.abs(wants[0] - wants[1]).max() > 1 and want.std() > 5  # alpha matters, and not one flat colour
    base = ["apply", "--model", str(run / FORMATS[fmt]), str(runs / "in"), "--out", str(run / "no")]
    refusals = [
        ([], "is a style_any network: it takes its style at inference; give --style-image"),
        ([*style, "--mask", str(runs / "style.png")], "takes one style image and no mask"),
        ([*style, *style], "takes one style image and no mask"),
        ([*style, "--alpha", "2"], "alpha must be a number in [0, 1]"),
    ]
    for flags, message in refusals:
        assert main([*base, *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (flags, err)
