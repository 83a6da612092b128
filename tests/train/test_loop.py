import csv
import json
import math
from pathlib import Path

import pytest
import torch

from lossnet.data.defaults import default_image_path
from lossnet.data.io import load_image, save_image
from lossnet.errors import CheckpointError, InputError
from lossnet.checkpoint import load_checkpoint
from lossnet.runtime import CpuProbe
from lossnet.train.loop import train


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_training_lowers_the_loss(tiny, tmp_path):
    """Sixty steps of x2 super-resolution on one detailed 32 px crop: the pixel loss falls below half its start.

    The network starts at bicubic upsampling, so the first step's loss is bicubic's: this is learning, not
    the recovery from a bad first step (which the zero-initialised head of lossnet <= 0.1.0 made, and which
    an earlier version of this test measured instead).
    """
    crop = load_image(default_image_path("astronaut"))[..., 180:212, 180:212]  # the helmet's edge and the flag
    save_image(crop, tmp_path / "one" / "astronaut.png")
    one = str(tmp_path / "one")
    config = tiny("superres", loss="pixel", scale=2, data=one, val_data=one, flip=False, steps=60, lr=3e-3)
    result = train(config.replace(image_size=None, log_every=1, val_every=60, checkpoint_every=60))
    first = result.history[0]["total"]
    last = sum(r["total"] for r in result.history[-10:]) / 10
    assert last < 0.5 * first


@pytest.mark.slow  # 3 s: three trainings
def test_a_style_run_resumes_with_the_directions_it_would_have_drawn(tiny, tmp_path):
    """The style recipe's sliced-Wasserstein terms draw new directions at every call from their own generators: the
    checkpoint keeps those, and the validation at the stop (which draws too) leaves them as the training had them.
    Before, the resumed losses differed from the third decimal on (the terms restarted from their seeds)."""
    full = train(tiny("style", steps=6, out_dir=str(tmp_path / "full")))
    part = tiny("style", steps=6, out_dir=str(tmp_path / "part"), stop_after=3)
    first = train(part)
    kept = load_checkpoint(first.checkpoint).train_state["rng"]["modules"]
    assert kept and all(key.startswith("engine.terms.") for key in kept)  # one generator per sliced-Wasserstein layer
    resumed = train(part.replace(stop_after=None), resume=first.checkpoint)
    assert [r["total"] for r in resumed.history] == [r["total"] for r in full.history[3:]]
    assert resumed.replica_checksums == full.replica_checksums


@pytest.mark.slow  # 5 s: three trainings
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tiny, tmp_path):
    """Restore with one-cycle AdamW: JPEG quality, text, crops, flips and the schedule all resume exactly."""
    full = train(tiny("restore", steps=6, out_dir=str(tmp_path / "full")))
    part = tiny("restore", steps=6, out_dir=str(tmp_path / "part"), stop_after=3)
    first = train(part)
    assert first.step == 3 and first.model is None
    resumed = train(part.replace(stop_after=None), resume=first.checkpoint)
    assert resumed.step == 6
    assert [r["total"] for r in resumed.history] == [r["total"] for r in full.history[3:]]
    assert read_csv(tmp_path / "part" / "log.csv") == [
        {**r, "sec_per_step": r2["sec_per_step"]}
        for r, r2 in zip(read_csv(tmp_path / "full" / "log.csv"), read_csv(tmp_path / "part" / "log.csv"))
    ]
    assert resumed.replica_checksums == full.replica_checksums


def test_bf16_autocast_trains(tiny):
    result = train(tiny("superres", precision="bf16", steps=2))
    assert all(torch.isfinite(torch.tensor(r["total"])) for r in result.history)


def test_the_precision_is_resolved_once_logged_and_recorded(tiny, caplog):
    from lossnet.runtime import resolve

    auto = resolve("auto", "cpu")
    with caplog.at_level("INFO", logger="lossnet"):
        result = train(tiny("superres", steps=1))  # the default: auto
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("precision")] == [auto.summary]
    recorded = json.loads((result.out_dir / "run.json").read_text())["precision"]
    assert recorded == {**auto.to_dict(), "device": "cpu"}
    assert json.loads((result.out_dir / "config.json").read_text())["precision"] == "auto"


def test_fp16_trains_only_on_cuda(tiny, stub_cpu):
    """Where the CPU has native fp16 the runtime lets it through, and training refuses it (no GradScaler);
    where it has not, the runtime's refusal is the one every command gives (tests/test_cli_precision.py)."""
    flags = frozenset({"avx2", "avx512f", "avx512_bf16"})
    stub_cpu(CpuProbe("Xeon", "x86_64", "AVX512", True, flags | {"avx512_fp16", "amx_fp16"}))
    with pytest.raises(InputError, match="fp16 trains only on a CUDA GPU"):
        train(tiny("superres", precision="fp16", device="cpu"))
    stub_cpu(CpuProbe("EPYC", "x86_64", "AVX512", True, flags))
    with pytest.raises(InputError, match="precision='fp16' is refused on this CPU"):
        train(tiny("superres", precision="fp16", device="cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("precision", ["auto", "fp16", "fp32"])
def test_training_on_cuda_runs_in_each_precision_without_warnings(tiny, precision):
    """On a GPU: the run lands on CUDA, records it, and prints no raw Python warning (with fp16, GradScaler
    skips the first optimizer steps, and torch's lr_scheduler warned about it before lossnet silenced it)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(tiny("superres", device="cuda", precision=precision, steps=6))
    assert [str(w.message) for w in caught] == []
    assert all(math.isfinite(r["total"]) for r in result.history)
    recorded = json.loads((result.out_dir / "run.json").read_text())["precision"]
    assert recorded["device"] == "cuda"
    assert recorded["precision"] == {"auto": "bf16" if torch.cuda.is_bf16_supported() else "fp16"}.get(precision, precision)


def test_corrupt_and_unsupported_files_are_skipped_listed_and_logged_once(tiny, tmp_path, caplog):
    data = tmp_path / "data"
    for name in ("astronaut", "coffee", "chelsea"):
        save_image(load_image(default_image_path(name), size=96), data / f"{name}.png")
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    save_image(load_image(default_image_path("rocket"), size=96), data / "cut.jpg")
    (data / "cut.jpg").write_bytes((data / "cut.jpg").read_bytes()[:600])  # a truncated JPEG
    (data / "notes.txt").write_text("not an image")
    with caplog.at_level("INFO", logger="lossnet"):
        result = train(tiny("superres", data=str(data), val_data=str(data), steps=4, log_every=1))
    summary = json.loads((result.out_dir / "run.json").read_text())
    assert summary["ignored_files"] == 1  # notes.txt
    skipped = summary["skipped_files"]
    assert [Path(s["file"]).name for s in skipped] == ["broken.png", "cut.jpg"]  # the same in every run
    assert "cannot identify image" in skipped[0]["reason"] and "truncated" in skipped[1]["reason"].lower()
    assert [(p.name, r) for p, r in result.skipped_files] == [(Path(s["file"]).name, s["reason"]) for s in skipped]
    logged = [r.getMessage() for r in caplog.records if "unreadable training file" in r.getMessage()]
    assert len(logged) == 1 and "broken.png" in logged[0] and "cut.jpg" in logged[0]


def test_an_empty_folder_is_a_clear_error(tiny, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in the folder"):
        train(tiny("superres", data=str(tmp_path / "empty")))


def test_a_truncated_checkpoint_is_refused(tiny, tmp_path):
    first = train(tiny("superres", steps=4, stop_after=2))
    data = first.checkpoint.read_bytes()
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        train(tiny("superres", steps=4), resume=bad)


def test_resume_refuses_another_network(tiny):
    first = train(tiny("superres", steps=4, stop_after=2))
    other = tiny("superres", steps=4, model_kwargs={"channels": 4, "num_residual": 1, "head_kernel_size": 3})
    with pytest.raises(InputError, match="--model-kwargs cannot change when resuming"):
        train(other, resume=first.checkpoint)


class _RecordingWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is optional and not installed here)."""

    made: list["_RecordingWriter"] = []

    def __init__(self, log_dir, purge_step=None):
        self.log_dir, self.purge_step = log_dir, purge_step
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False
        _RecordingWriter.made.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, float(value), step))

    def close(self):
        self.closed = True


def test_tensorboard_gets_the_logged_scalars_and_a_resume_purges(tiny, tmp_path, monkeypatch):
    import sys
    import types

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = _RecordingWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    _RecordingWriter.made = []
    config = tiny("superres", steps=4, out_dir=str(tmp_path / "run"), stop_after=2)
    first = train(config)
    train(config.replace(stop_after=None), resume=first.checkpoint)

    before, after = _RecordingWriter.made
    assert before.log_dir == after.log_dir == str(tmp_path / "run" / "tensorboard")
    assert before.purge_step is None and after.purge_step == 2  # events after step 2 from the first run go
    assert before.closed and after.closed
    logged = read_csv(tmp_path / "run" / "log.csv")
    total = [(step, value) for tag, value, step in before.scalars + after.scalars if tag == "loss/total"]
    assert total == [(int(r["step"]), pytest.approx(float(r["total"]), rel=1e-5)) for r in logged]
    val_steps = sorted({step for tag, _, step in before.scalars + after.scalars if tag.startswith("val/")})
    assert val_steps == [2, 4]
