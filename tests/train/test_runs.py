"""Runs as a user handles them: copied, resumed from elsewhere, restarted into a used folder, interrupted.

Every run here goes through the command line (``lossnet.cli.main``), with a tiny network
and the pixel loss, so that each takes a few seconds.
"""

import csv
import hashlib
import json
import logging
import os
import shlex
import shutil
from pathlib import Path

import pytest

import lossnet.train.loop
from lossnet.cli import main
from lossnet.data.defaults import default_image_path
from lossnet.data.io import load_image, save_image
from lossnet.checkpoint import load_checkpoint

from .test_cli_train import tiny_flags


def flags(out, steps=4, **extra):
    """Tiny superres flags with the pixel loss (no loss network), ``steps`` steps, extra ``--flag value`` pairs."""
    argv = tiny_flags("superres", out) + ["--loss", "pixel"]
    argv[argv.index("--steps") + 1] = str(steps)
    for name, value in extra.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


def run(argv, capsys):
    """``main(argv)`` -> (exit status, stdout, stderr); argparse's exits count as a status too."""
    try:
        rc = main(argv)
    except SystemExit as stop:
        rc = stop.code
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def steps_logged(folder):
    with open(Path(folder) / "log.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def command_after(text, marker):
    """The shell command printed after ``marker`` on its line, as argv for ``main`` (``lossnet`` dropped)."""
    line = next(line for line in text.splitlines() if marker in line)
    words = shlex.split(line.split(marker, 1)[1].rstrip(")"))
    assert words[0] == "lossnet"
    return words[1:]


def test_a_copied_run_resumes_in_its_own_folder(tmp_path, capsys):
    full = tmp_path / "runs" / "full"
    assert run(flags(full, stop_after=2), capsys)[0] == 0
    copy = tmp_path / "runs" / "fc"
    shutil.copytree(full, copy)
    before = snapshot(full)

    assert run(["train", "superres", "--resume", str(copy / "checkpoint.safetensors")], capsys)[0] == 0
    assert snapshot(full) == before  # the original run is untouched
    assert load_checkpoint(copy / "model.safetensors").meta["step"] == 4
    assert steps_logged(copy) == [1, 2, 3, 4]
    assert json.loads((copy / "config.json").read_text())["out_dir"] == str(copy)


def test_resume_from_another_directory_writes_only_beside_the_checkpoint(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "runs" / "sr"
    assert run(flags(run_dir, stop_after=2), capsys)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run(["train", "superres", "--resume", str(run_dir / "checkpoint.safetensors")], capsys)[0] == 0
    assert list(elsewhere.iterdir()) == []  # no ./runs/... here
    assert load_checkpoint(run_dir / "model.safetensors").meta["step"] == 4


def test_relative_data_and_style_paths_are_stored_absolute_so_a_resume_elsewhere_reads_them(
    tmp_path, capsys, monkeypatch
):
    """``--data photos`` given in one folder and resumed from another: the run stores the absolute path (the
    relative one names nothing there), and giving the same folder again is no change, where another is refused."""
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    for name in ("astronaut", "chelsea"):
        save_image(load_image(default_image_path(name)), home / "photos" / f"{name}.png")
    save_image(load_image(default_image_path("ihc")), home / "ink.png")
    monkeypatch.chdir(home)
    argv = tiny_flags("style", "runs/st") + ["--data", "photos", "--style-image", "ink.png", "--stop-after", "1"]
    assert run(argv, capsys)[0] == 0
    stored = json.loads((home / "runs" / "st" / "config.json").read_text())
    assert (stored["data"], stored["style_image"]) == (str(home / "photos"), str(home / "ink.png"))
    assert json.loads(run(argv[:2] + ["--print-config", "--style-image", "brick"], capsys)[1])["style_image"] == "brick"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    checkpoint = str(home / "runs" / "st" / "checkpoint.safetensors")
    rc, _, err = run(["train", "style", "--resume", checkpoint], capsys)
    assert rc == 0, err
    assert load_checkpoint(home / "runs" / "st" / "model.safetensors").meta["step"] == 2
    assert list(elsewhere.iterdir()) == []
    rc, _, err = run(["train", "style", "--resume", checkpoint, "--steps", "3", "--data", "photos"], capsys)
    assert rc == 2 and "--data cannot change" in err and str(home / "photos") in err, err  # no ./photos here

    monkeypatch.chdir(home)  # the same folder, given again as it was first given: not a change
    assert run(["train", "style", "--resume", checkpoint, "--steps", "3", "--data", "photos"], capsys)[0] == 0


def test_resume_into_another_out_dir_carries_the_log_over(tmp_path, capsys):
    first = tmp_path / "a"
    assert run(flags(first, stop_after=2), capsys)[0] == 0
    before = snapshot(first)
    fork = tmp_path / "b"
    assert run(["train", "superres", "--resume", str(first), "--out-dir", str(fork)], capsys)[0] == 0
    assert snapshot(first) == before
    assert steps_logged(fork) == [1, 2, 3, 4]
    assert load_checkpoint(fork / "model.safetensors").meta["step"] == 4


def test_an_occupied_out_dir_is_refused_and_overwrite_replaces_only_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(flags(out, steps=2), capsys)[0] == 0
    (out / "notes.txt").write_text("mine")
    save_image(load_image(default_image_path("coffee"), size=16), out / "samples" / "mine.png")
    before = snapshot(out)

    rc, _, err = run(flags(out, steps=3), capsys)
    assert rc == 2 and err.count("\n") == 1 and err.startswith("lossnet: error:")
    assert f"--resume {out / 'checkpoint.safetensors'}" in err and "--overwrite" in err
    assert snapshot(out) == before

    assert run(flags(out, steps=3, val_every=3) + ["--overwrite"], capsys)[0] == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["mine.png", "step_0000003.png"]
    assert json.loads((out / "config.json").read_text())["steps"] == 3
    assert steps_logged(out) == [1, 2, 3]
    assert load_checkpoint(out / "model.safetensors").meta["step"] == 3


def test_flags_changed_on_resume_are_applied_and_logged_or_refused(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    assert run(flags(out, steps=4, stop_after=2), capsys)[0] == 0
    before = snapshot(out)

    rc, _, err = run(["train", "superres", "--resume", str(out), "--batch-size", "4"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "--batch-size cannot change" in err
    rc, _, err = run(["train", "superres", "--resume", str(out), "--loss", "perceptual"], capsys)
    assert rc == 2 and "--loss cannot change" in err
    assert snapshot(out) == before

    argv = ["train", "superres", "--resume", str(out), "--steps", "6", "--lr", "0.0005", "--log-every", "2"]
    with caplog.at_level(logging.INFO, logger="lossnet"):
        assert run(argv, capsys)[0] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert "resume: steps 4 -> 6" in messages and "resume: lr 0.0003 -> 0.0005" in messages
    stored = json.loads((out / "config.json").read_text())
    assert (stored["steps"], stored["lr"], stored["log_every"], stored["stop_after"]) == (6, 0.0005, 2, None)
    assert load_checkpoint(out / "model.safetensors").meta["config"] == stored  # what ran
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 4, 6]  # every step before, every second after
    assert [float(r["lr"]) for r in rows] == [0.0003, 0.0003, 0.0005, 0.0005]


def test_a_longer_one_cycle_run_on_resume_follows_the_new_schedule(tiny, tmp_path):
    from lossnet.train.loop import resume_config, train
    from lossnet.train.schedules import OneCycle

    quick = dict(loss="pixel", val_every=100, checkpoint_every=100)
    first = train(tiny("restore", steps=4, stop_after=2, out_dir=str(tmp_path / "r"), **quick))
    result = train(resume_config(first.checkpoint, steps=8), resume=first.checkpoint)
    lrs = [row["lr"] for row in result.history]
    assert lrs == pytest.approx([1e-3 * OneCycle(8)(i) for i in range(2, 8)], rel=1e-6)


def test_the_printed_hints_run_as_printed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(flags("runs/sr", stop_after=2), capsys)
    assert rc == 0 and "stopped at step 2 of 4" in out
    rc, out, _ = run(command_after(out, "continue with: "), capsys)
    assert rc == 0 and load_checkpoint(tmp_path / "runs/sr/model.safetensors").meta["step"] == 4

    save_image(load_image(default_image_path("coffee"), size=24), tmp_path / "photo.png")
    apply = command_after(out, "apply it with: ")
    apply = ["photo.png" if w == "IMAGE" else "applied" if w == "OUT" else w for w in apply]
    assert run(apply, capsys)[0] == 0
    assert load_image(tmp_path / "applied" / "photo.png").shape[-2:] == (4 * 16, 4 * 24)


@pytest.mark.parametrize("task", ["style_multi", "style_any"])
def test_a_style_networks_apply_hint_runs_as_printed(task, tmp_path, capsys, monkeypatch):
    """The hint names what apply needs for these networks (a style index, a style image): as printed before, with
    IMAGE and OUT alone, apply refused a multi-style network and a style_any one."""
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(tiny_flags(task, "runs/s"), capsys)
    assert rc == 0, err
    photo = load_image(default_image_path("coffee"), size=32)
    save_image(photo, tmp_path / "photo.png")
    fill = {"IMAGE": "photo.png", "OUT": "applied", "STYLE": str(default_image_path("brick"))}
    apply = [fill.get(w, w) for w in command_after(out, "apply it with: ")]
    assert {"--style", "--style-image"} & set(apply)
    rc, _, err = run(apply, capsys)
    assert rc == 0, err
    assert load_image(tmp_path / "applied" / "photo.png").shape == photo.shape


def test_ctrl_c_says_where_the_checkpoint_is_and_how_to_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    step = lossnet.train.loop._Run._train_step
    calls = []

    def interrupted_at_third(self, x, y):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, x, y)

    monkeypatch.setattr(lossnet.train.loop._Run, "_train_step", interrupted_at_third)
    rc, _, err = run(flags("runs/sr", checkpoint_every=100), capsys)
    assert rc == 130 and "the checkpoint of step 2 is runs/sr/checkpoint.safetensors" in err
    assert load_checkpoint(tmp_path / "runs/sr/checkpoint.safetensors").meta["step"] == 2
    monkeypatch.setattr(lossnet.train.loop._Run, "_train_step", step)
    assert run(command_after(err, "resume with: "), capsys)[0] == 0
    assert steps_logged(tmp_path / "runs/sr") == [1, 2, 3, 4]


def test_only_rank_0_prints_hints(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")  # as torchrun sets it for the second process (a world of one here)
    rc, out, err = run(flags(tmp_path / "run", steps=2, stop_after=1), capsys)
    assert rc == 0 and out == "" and "--resume" not in err


# -- every mistake: one line on stderr, exit 2, nothing written, no network loaded ----------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run (checkpoint.safetensors and model.safetensors)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(flags(out, steps=2)) == 0
    return out


def broken_folder(root):
    folder = root / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff nor a jpeg")
    save_image(load_image(default_image_path("coffee"), size=64), folder / "c.jpg")
    data = (folder / "c.jpg").read_bytes()
    (folder / "c.jpg").write_bytes(data[: len(data) // 2])  # truncated
    return folder


CASES = {
    "final model as checkpoint": (
        lambda t, f: ["train", "superres", "--resume", str(f / "model.safetensors")],
        ["is a final model, not a checkpoint", "resume from", "checkpoint.safetensors"],
    ),
    "out-dir is a file": (
        lambda t, f: flags(t / "file.txt"),
        ["--out-dir", "is a file, not a folder"],
    ),
    "out-dir inside a file": (
        lambda t, f: flags(t / "file.txt" / "run"),
        ["cannot be created", "is a file"],
    ),
    "cache-images maybe": (
        lambda t, f: flags(t / "run") + ["--cache-images", "maybe"],
        ["--cache-images", "true/false, yes/no or 1/0", "'maybe'"],
    ),
    "flip 2": (
        lambda t, f: flags(t / "run") + ["--flip", "2"],
        ["--flip", "true/false, yes/no or 1/0", "'2'"],
    ),
    "style image is a folder": (
        lambda t, f: ["train", "style", "--style-image", str(t), "--out-dir", str(t / "run")],
        ["--style-image", "is a folder; give one image file"],
    ),
    "style image missing": (
        lambda t, f: ["train", "style", "--style-image", str(t / "nope.png"), "--out-dir", str(t / "run")],
        ["--style-image", "no such image file"],
    ),
    "data missing": (
        lambda t, f: flags(t / "run") + ["--data", str(t / "nope")],
        ["--data", "no such folder"],
    ),
    "data unreadable": (
        lambda t, f: flags(t / "run") + ["--data", str(broken_folder(t))],
        ["all 3 files", "a.png (", "b.jpg (", "c.jpg (", "truncated"],
    ),
    "occupied out-dir": (
        lambda t, f: flags(f),
        ["already holds a run", "--resume", "--overwrite"],
    ),
    "resume with another batch size": (
        lambda t, f: ["train", "superres", "--resume", str(f), "--steps", "4", "--batch-size", "8"],
        ["--batch-size cannot change when resuming", "--batch-size 2"],
    ),
    "resume a finished run": (
        lambda t, f: ["train", "superres", "--resume", str(f)],
        ["already at step 2 of 2", "--steps"],
    ),
    "resume with a smaller stop-after": (
        lambda t, f: ["train", "superres", "--resume", str(f), "--steps", "4", "--stop-after", "1"],
        ["nothing to do", "--stop-after"],
    ),
    "resume as another task": (
        lambda t, f: ["train", "style", "--resume", str(f)],
        ["is a 'superres' run", "lossnet train superres --resume"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_mistake_is_one_line_exit_2_and_writes_nothing(case, finished, tmp_path, capsys, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the networks were built before the cheap checks")

    monkeypatch.setattr(lossnet.train.loop, "build_model", no_network)
    monkeypatch.setattr(lossnet.train.loop, "training_loss", no_network)
    (tmp_path / "file.txt").write_text("a file")
    make, expected = CASES[case]
    argv = make(tmp_path, finished)
    before, before_run = snapshot(tmp_path), snapshot(finished.parent)
    rc, out, err = run(argv, capsys)
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("lossnet: error:") and "Traceback" not in err, err
    assert all(text in err for text in expected), err
    assert ".skipped" not in err
    assert snapshot(tmp_path) == before and snapshot(finished.parent) == before_run
    assert not (tmp_path / "run").exists()


def test_an_unwritable_out_dir_is_one_line(tmp_path, capsys):
    target = Path("/sys/lossnet-test-run")  # sysfs refuses new entries, even to root
    try:
        target.mkdir()
    except OSError:
        pass
    else:
        target.rmdir()
        pytest.skip("/sys is writable here")
    rc, _, err = run(flags(target), capsys)
    assert rc == 2 and err.count("\n") == 1 and "--out-dir /sys/lossnet-test-run is not writable" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_dir_is_one_line(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        rc, _, err = run(flags(folder / "run"), capsys)
    finally:
        folder.chmod(0o700)
    assert rc == 2 and err.count("\n") == 1 and "is not writable" in err


# -- help and logs -------------------------------------------------------------------------------


def test_train_help_gives_every_flag_help_and_every_config_flag_its_default(capsys):
    from lossnet.cli import build_parser

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        assert action.help, action.option_strings
        if action.option_strings and action.dest not in ("help", "resume", "overwrite", "print_config"):
            if not action.option_strings[0].startswith("--no-"):
                assert "(default: " in action.help, action.option_strings
    rc, out, _ = run(["train", "--help"], capsys)
    assert rc == 0
    text = " ".join(out.split())
    assert "relu2_2=1,relu3_3=0.5" in text and '{"relu2_2"' not in text
    assert (
        "--crop-size INT Side of the random square training crops (the target's size). "
        "(default: 256 for style/style_multi/style_any, 288 for superres, 128 for colorize/restore)"
    ) in text


@pytest.mark.parametrize(
    ("text", "value"), [("false", False), ("0", False), ("No", False), ("TRUE", True), ("1", True), ("yes", True)]
)
def test_booleans_parse_strictly(text, value, capsys):
    rc, out, _ = run(["train", "superres", "--print-config", "--cache-images", text, "--flip", text], capsys)
    config = json.loads(out)
    assert rc == 0 and config["cache_images"] is value and config["flip"] is value
    rc, out, _ = run(["train", "superres", "--print-config", "--no-flip", "--cache-images", "none"], capsys)
    config = json.loads(out)
    assert config["flip"] is False and config["cache_images"] is None


def test_verbose_keeps_other_libraries_at_warning(monkeypatch, capsys):
    from lossnet.cli import _Formatter

    root, ours = logging.getLogger(), logging.getLogger("lossnet")
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(ours, "level", ours.level)
    assert main(["-v", "layers"]) == 0
    assert logging.getLogger("PIL.PngImagePlugin").getEffectiveLevel() == logging.WARNING
    assert ours.getEffectiveLevel() == logging.DEBUG
    record = logging.LogRecord("PIL.Image", logging.WARNING, "", 0, "careful", None, None)
    assert _Formatter().format(record) == "PIL: careful"
    record = logging.LogRecord("lossnet.train", logging.INFO, "", 0, "hello", None, None)
    assert _Formatter().format(record) == "lossnet: hello"
