"""Train each task from the command line, then apply its checkpoint: the one train-then-apply suite.

The run's files, its checkpoint and its validation scores are checked, and ``lossnet apply``
must reproduce the trained network's output, computed here by hand, to one pixel level.
"""

from __future__ import annotations

import csv
import json

import pytest

from lossnet.checkpoint import load_checkpoint
from lossnet.cli import main
from lossnet.data.defaults import default_image_path
from lossnet.data.io import load_image, save_image
from lossnet.inference import load_model
from lossnet.train.config import task_config
from tests.inference.checkpoints import MULTIPLE, ONE_PIXEL, reference
from tests.train.conftest import TINY_MODELS

#: The task's recipe shrunk to 32 px crops, batch 2 and a random loss network (as the ``tiny`` fixture).
TINY = dict(crop_size=32, val_size=32, image_size=96, style_size=64, batch_size=2, steps=4, log_every=1,
            val_every=2, checkpoint_every=2)  # fmt: skip


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def train_flags(task: str, out) -> list[str]:
    kwargs = ",".join(f"{k}={v}" for k, v in TINY_MODELS[task].items())
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    return ["train", task, "--model-kwargs", kwargs, "--loss-weights", "none", "--out-dir", str(out), *flags]


@pytest.mark.parametrize("task", ["superres", "style", "colorize", "restore"])
def test_train_then_apply_each_task(task, tmp_path, capsys):
    out = tmp_path / task
    assert main(train_flags(task, out)) == 0
    assert "wrote" in capsys.readouterr().out

    # The run's files.
    for name in ("log.csv", "val.csv", "config.json", "run.json", "checkpoint.safetensors", "model.safetensors"):
        assert (out / name).is_file(), name
    rows = read_csv(out / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["total"]) > 0 for r in rows)
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    val = read_csv(out / "val.csv")
    assert [int(r["step"]) for r in val] == [2, 4]
    if task == "style":  # the training loss's terms on the validation images, not PSNR against the content
        assert all(float(val[-1][k]) > 0 for k in ("content", "style", "tv", "total")) and "psnr" not in val[-1]
    else:
        assert float(val[-1]["psnr"]) > 0 and -1 <= float(val[-1]["ssim"]) <= 1

    # The flags make the config the library makes, and the checkpoint records it.
    config = task_config(task, model_kwargs=TINY_MODELS[task], loss_weights=None, out_dir=str(out), **TINY)
    assert json.loads((out / "config.json").read_text()) == config.to_dict()
    meta = load_checkpoint(out / "model.safetensors").meta
    assert meta["config"] == config.to_dict() and meta["config"]["model_kwargs"] == TINY_MODELS[task]
    assert meta["task"] == task and meta["step"] == 4
    assert (task == "superres") == (meta["scale"] == 4)

    # `lossnet apply` reproduces the trained network's output, on a size the network does not take.
    image = load_image(default_image_path("coffee"), size=64)[..., :37, :53]
    save_image(image, tmp_path / "in" / "coffee.png")
    assert main(["apply", "--model", str(out / "model.safetensors"), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "applied"), "--tile", "0", "--device", "cpu",
                 "--precision", "fp32"]) == 0  # fmt: skip
    assert f"wrote 1 image to {tmp_path / 'applied'}" in capsys.readouterr().out
    model = load_model(out / "model.safetensors")
    expected = reference(model, load_image(tmp_path / "in" / "coffee.png"), task, MULTIPLE[task])
    written = load_image(tmp_path / "applied" / "coffee.png")
    assert written.shape == expected.shape
    assert (written - expected).abs().max() <= ONE_PIXEL + 1e-6
