"""The lock a run holds on its folder (lossnet/train/lock.py): two runs never write into one folder at once.

The runs that hold the lock here are other processes (a paused ``lossnet train``, or a small script
that takes the lock), since that is what the lock is for. They tell the test that they hold it by a
line on their stdout, and wait on their stdin, so nothing here waits on a timer.
"""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lossnet.train.lock
import lossnet.train.loop
from lossnet.checkpoint import load_checkpoint
from lossnet.errors import InputError, RunFolderInUseError
from lossnet.train.lock import LOCK_FILE, RunLock
from lossnet.train.runs import clear_run, run_files

from .test_runs import flags, run, snapshot, steps_logged

#: A training run that stops before step 3 (steps 1-2 and step 2's checkpoint written) and says so
#: on stdout, then waits for a line on stdin before it goes on; or, with "lock" for argv, a process
#: that takes the lock on a folder, says so, and waits.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    def wait():
        print("holding", flush=True)
        sys.stdin.readline()

    if sys.argv[1] == "lock":
        from lossnet.train.lock import RunLock

        lock = RunLock.acquire(Path(sys.argv[2]))
        wait()
        lock.release()
    else:
        import lossnet.train.loop as loop
        from lossnet.cli import main

        step = loop._Run._train_step

        def paused(self, x, y):
            if self.step == 2:
                wait()
            return step(self, x, y)

        loop._Run._train_step = paused
        sys.exit(main(sys.argv[1:]))
    """
)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1", "LOSSNET_OFFLINE": "1"}


@pytest.fixture
def holder(tmp_path):
    """Start a holder process (``HOLDER``) with these arguments; returns it once it holds the lock."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    started = []

    def start(*args):
        log = open(tmp_path / f"holder{len(started)}.err", "w")
        proc = subprocess.Popen(
            [sys.executable, str(script), *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=ENV, cwd=tmp_path,
        )  # fmt: skip
        started.append((proc, log))
        line = proc.stdout.readline()  # blocks until it holds the lock (or ends: then "")
        assert line == "holding\n", Path(log.name).read_text()[-3000:]
        return proc

    yield start
    for proc, log in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def kill_9(proc):
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def refused(err, pid):
    """Whether ``err`` is the CLI's one line refusing a run because process ``pid`` holds the folder."""
    assert err.count("\n") == 1 and err.startswith("lossnet: error: --out-dir") and "Traceback" not in err, err
    return f"in use by another training run (pid {pid} on {socket.gethostname()}" in err


@pytest.mark.slow  # 5.5 s: three training processes
def test_a_second_run_is_refused_while_the_first_runs_and_a_killed_first_can_be_resumed(holder, tmp_path, capsys):
    out = tmp_path / "run"
    first = holder(*flags(out, steps=4))  # a real training, paused after step 2's checkpoint
    before = snapshot(out)
    assert LOCK_FILE in before and json.loads((out / LOCK_FILE).read_text())["pid"] == first.pid

    second = subprocess.run(
        [sys.executable, "-m", "lossnet", *flags(out, steps=4)], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert second.returncode == 2 and refused(second.stderr, first.pid)
    for argv in (flags(out, steps=4) + ["--overwrite"], ["train", "superres", "--resume", str(out)]):
        rc, _, err = run(argv, capsys)  # the same in this process, with the flags that would write anyway
        assert rc == 2 and refused(err, first.pid)
    assert snapshot(out) == before  # nothing written, the lock file untouched

    kill_9(first)
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == first.pid  # stale: the file stays, the lock not
    assert run(["train", "superres", "--resume", str(out)], capsys)[0] == 0
    assert steps_logged(out) == [1, 2, 3, 4]
    assert load_checkpoint(out / "model.safetensors").meta["step"] == 4
    assert not (out / LOCK_FILE).exists()


def test_a_killed_run_leaves_a_stale_lock_that_overwrite_takes_over(holder, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(flags(out, steps=2), capsys)[0] == 0
    first = holder("lock", out)
    rc, _, err = run(flags(out, steps=3) + ["--overwrite"], capsys)
    assert rc == 2 and refused(err, first.pid)
    assert load_checkpoint(out / "model.safetensors").meta["step"] == 2

    kill_9(first)
    assert (out / LOCK_FILE).exists()
    assert run(flags(out, steps=3, val_every=3) + ["--overwrite"], capsys)[0] == 0
    assert steps_logged(out) == [1, 2, 3] and load_checkpoint(out / "model.safetensors").meta["step"] == 3
    assert not (out / LOCK_FILE).exists()


#: Under torchrun: each rank tries to hold the folder, writes what came of it to rank<N>.txt, then
#: waits for the others (so that torchrun, which stops a job when one rank ends, stops none early).
RANKS = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch.distributed as dist

    from lossnet.train.distributed import init_distributed
    from lossnet.train.lock import hold_run_folder

    world = init_distributed("cpu")
    try:
        with hold_run_folder(Path(sys.argv[1]), world) as lock:
            outcome = "held" if lock is not None else "nothing"
    except Exception as err:
        outcome = f"{type(err).__name__}: {err} [{getattr(err, 'pid', None)}]"
    Path(sys.argv[2], f"rank{world.rank}.txt").write_text(outcome)
    dist.barrier()
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_under_torchrun_rank_0_holds_the_folder_and_every_rank_hears_of_a_refusal(holder, tmp_path):
    (tmp_path / "ranks.py").write_text(RANKS)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "ranks.py"]

    def ranks(out):
        cmd = [*torchrun, out, tmp_path]
        done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        return [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)]

    assert ranks(tmp_path / "free") == ["held", "nothing"]
    first = holder("lock", tmp_path / "busy")
    outcomes = ranks(tmp_path / "busy")
    named = [o.startswith("RunFolderInUseError: --out-dir") and o.endswith(f"[{first.pid}]") for o in outcomes]
    assert named == [True, True], outcomes


def test_the_lock_is_held_from_before_the_folder_is_looked_at_until_the_run_ends(tiny, tmp_path, monkeypatch):
    out = tmp_path / "a" / "run"
    seen = {}
    check = lossnet.train.loop.check_occupied
    step = lossnet.train.loop._Run._train_step

    def looked_at(folder, *args):
        seen["folder"] = sorted(os.listdir(folder))
        return check(folder, *args)

    def second_run_meanwhile(self, x, y):
        if self.step == 1:
            with pytest.raises(RunFolderInUseError, match=f"pid {os.getpid()} on") as info:
                RunLock.acquire(out)
            seen["holder"] = (info.value.pid, info.value.host)
        return step(self, x, y)

    monkeypatch.setattr(lossnet.train.loop, "check_occupied", looked_at)
    monkeypatch.setattr(lossnet.train.loop._Run, "_train_step", second_run_meanwhile)
    lossnet.train.loop.train(tiny("superres", loss="pixel", steps=2, out_dir=str(out)))
    assert seen == {"folder": [LOCK_FILE], "holder": (os.getpid(), socket.gethostname())}
    assert LOCK_FILE not in os.listdir(out)
    RunLock.acquire(out).release()  # free


@pytest.mark.parametrize("stop", [RuntimeError("boom"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_the_lock_is_released_when_a_run_stops(stop, tiny, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def fails(self, x, y):
        raise stop

    monkeypatch.setattr(lossnet.train.loop._Run, "_train_step", fails)
    with pytest.raises(type(stop)):
        lossnet.train.loop.train(tiny("superres", loss="pixel", steps=2, out_dir=str(out)))
    assert LOCK_FILE not in os.listdir(out)
    RunLock.acquire(out).release()


def test_a_mistake_found_under_the_lock_leaves_no_folder(tiny, tmp_path):
    out = tmp_path / "new" / "run"
    with pytest.raises(InputError, match="--data"):
        lossnet.train.loop.train(tiny("superres", loss="pixel", out_dir=str(out), data=str(tmp_path / "nope")))
    assert os.listdir(tmp_path) == []


def test_a_stale_lock_file_is_no_run_file(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text('{"pid": 1, "host": "gone"}\n')
    (out / "log.csv").write_text("step\n1\n")
    assert run_files(out) == [out / "log.csv"]
    clear_run(out)
    assert os.listdir(out) == [LOCK_FILE]

    lock = RunLock.acquire(out)  # nobody holds it: taken over, and the file rewritten
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert os.listdir(out) == []


def test_a_forked_child_does_not_keep_the_lock_once_its_parent_is_gone(tmp_path):
    # A DataLoader worker is such a child; here the parent's "death" is closing its descriptor.
    lock = RunLock.acquire(tmp_path)
    forked, forked_w = os.pipe()
    done_r, done = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child: fork's hooks have run once it is here)
        os.write(forked_w, b"x")
        os.read(done_r, 1)
        os._exit(0)
    try:
        assert os.read(forked, 1) == b"x"
        os.close(lock.fd)  # as the kernel does when the holder is killed
        lossnet.train.lock._HELD.discard(lock.fd)
        RunLock.acquire(tmp_path).release()  # the child, still alive, holds nothing
    finally:
        os.write(done, b"x")
        os.waitpid(child, 0)
        for fd in (forked, forked_w, done_r, done):
            os.close(fd)


def test_without_flock_runs_are_not_locked_and_a_warning_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(lossnet.train.lock, "fcntl", None)
    assert RunLock.acquire(tmp_path / "run") is None
    assert "not locked" in caplog.text and not (tmp_path / "run").exists()

    class NoLocks:  # a file system that refuses flock (some network mounts)
        LOCK_EX = LOCK_NB = LOCK_UN = 0

        @staticmethod
        def flock(fd, op):
            raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lossnet.train.lock, "fcntl", NoLocks)
    caplog.clear()
    assert RunLock.acquire(tmp_path / "run") is None
    assert "cannot be locked here (No locks available)" in caplog.text
    assert not (tmp_path / "run").exists()
