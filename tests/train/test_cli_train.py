import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lossnet.cli import main
from lossnet.checkpoint import load_checkpoint

from .conftest import TINY_MODELS


def tiny_flags(task, out):
    kwargs = ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in TINY_MODELS[task].items())
    return [
        "train", task, "--model-kwargs", kwargs, "--crop-size", "32", "--val-size", "32", "--image-size", "96",
        "--style-size", "64", "--batch-size", "2", "--steps", "2", "--loss-weights", "none", "--out-dir", str(out),
        "--log-every", "1", "--val-every", "2", "--checkpoint-every", "2", "--device", "cpu",
    ]  # fmt: skip


def test_flags_override_the_recipe(tmp_path, capsys):
    argv = ["train", "restore", "--print-config", "--lr", "0.01", "--jpeg-quality", "30", "--no-text"]
    assert main(argv + ["--feature-layers", "relu1_2=2", "--tv-weight", "none"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["lr"] == 0.01 and config["task_options"] == {"jpeg_quality": [30, 30], "text": False}
    assert config["feature_layers"] == {"relu1_2": 2.0} and config["tv_weight"] is None
    assert config["optimizer"] == "adamw"  # the rest is the recipe's


def test_resume_from_the_command_line_takes_the_stored_config(tmp_path, capsys):
    out = tmp_path / "sr"
    argv = tiny_flags("superres", out)
    argv[argv.index("--steps") + 1] = "4"
    assert main(argv + ["--stop-after", "2"]) == 0
    assert "--resume" in capsys.readouterr().out
    assert main(["train", "superres", "--resume", str(out / "checkpoint.safetensors"), "--stop-after", "none"]) == 0
    assert load_checkpoint(out / "model.safetensors").meta["step"] == 4


def test_resume_without_the_task_takes_the_runs_own_and_a_wrong_task_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sr"
    argv = tiny_flags("superres", out)
    argv[argv.index("--steps") + 1] = "4"
    assert main(argv + ["--stop-after", "2"]) == 0
    monkeypatch.chdir(tmp_path.parent)  # from another folder, with the run folder only
    capsys.readouterr()
    assert main(["train", "style", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is a 'superres' run, not 'style'" in err and f"lossnet train superres --resume {out}" in err
    assert main(["train", "--resume", str(out), "--stop-after", "none"]) == 0
    assert load_checkpoint(out / "model.safetensors").meta["step"] == 4


@pytest.mark.parametrize(("argv", "message"), [([], "give the task to train"), (["--resume"], "give the task")])
def test_no_task_and_no_run_to_resume_exits_2_naming_both_forms(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "lossnet train --resume RUN_FOLDER" in err and err.startswith("lossnet: error:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--crop-size", "30"], "multiple of scale"),
        (["--loss", "perceptul"], "Did you mean 'perceptual'"),
        (["--resume", "missing.safetensors"], "no such checkpoint"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "superres", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("lossnet: error:")


def test_truncated_checkpoint_exits_2(tmp_path, capsys):
    bad = tmp_path / "ckpt.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    assert main(["train", "superres", "--resume", str(bad)]) == 2
    assert "truncated, corrupt or not a lossnet checkpoint" in capsys.readouterr().err


def _run_or_dump(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; if it outlives ``timeout``, SIGABRT the whole group so that every
    Python process in it (torchrun and its ranks, PYTHONFAULTHANDLER=1) prints where it hangs, and fail with that.

    This run hung once in about 20 suites (rank 0 had written the model), and a bare timeout said nothing of where.
    """
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"torchrun did not end within {timeout} s; where each process stood:\n{err[-8000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow  # 7 s: two torchrun processes, each importing torch
def test_ddp_with_two_cpu_processes_keeps_the_replicas_identical(tmp_path):
    """torchrun, 2 processes, gloo: each trains its shard; DDP must keep the weights equal."""
    out = tmp_path / "ddp"
    argv = tiny_flags("superres", out)
    argv[argv.index("--steps") + 1] = "3"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LOSSNET_OFFLINE": "1", "PYTHONFAULTHANDLER": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lossnet", *argv]
    proc = _run_or_dump(cmd, env, Path(__file__).parent, timeout=180)
    # On failure, the ranks' own messages (a faulthandler dump comes first) and torchrun's summary (last): the
    # summary alone said only "rank 1 SIGABRT" the one time this failed (1 of about 60 runs, session 13).
    err = proc.stderr if len(proc.stderr) <= 8000 else f"{proc.stderr[:5000]}\n[...]\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, err
    # The ranks leave with os._exit (lossnet.train.distributed.end_process): what they printed is all there.
    assert "wrote " in proc.stdout and "validation: PSNR" in proc.stderr
    summary = json.loads((out / "run.json").read_text())
    checksums = summary["replica_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    # Rank 0 alone wrote the log: one row per step, not two.
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().split()[1:]] == ["1", "2", "3"]


@pytest.mark.parametrize("joined", [False, True])
def test_a_process_that_joined_a_group_ends_with_its_status_and_its_buffered_output(joined):
    """end_process: after a process group, os._exit with the status, streams flushed first; else it returns."""
    script = textwrap.dedent(f"""
        import sys
        import lossnet.train.distributed as d
        d._joined = {joined}
        print("buffered on stdout", end="")
        print("buffered on stderr", end="", file=sys.stderr)
        d.end_process(3)
        print(" and returned")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stderr == "buffered on stderr"
    if joined:
        assert (proc.returncode, proc.stdout) == (3, "buffered on stdout")
    else:
        assert (proc.returncode, proc.stdout) == (0, "buffered on stdout and returned\n")


def test_torchrun_with_more_processes_than_gpus_is_refused_with_the_fix(monkeypatch):
    """One process per GPU: a rank past the last GPU gets an InputError naming the count (torch's own error was
    'CUDA error: invalid device ordinal', seen on a one-GPU machine)."""
    from lossnet.errors import InputError
    from lossnet.train import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(distributed, "pick_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"LOCAL_RANK=1, but this machine has 1 CUDA GPU.*--nproc_per_node=1.*--device cpu"):
        distributed.init_distributed("cuda")
