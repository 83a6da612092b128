"""A run's folder: its files, the checks before writing into it, and resuming from its checkpoint.

Runs never overwrite each other: a new run into a folder that holds another run's files is
refused unless ``overwrite`` (which first removes that run's files, and only those), and a
resume continues in the folder given to it (:func:`resume_config` picks the checkpoint's own).
Two runs never write into one folder at once: each holds the folder's lock (:mod:`~lossnet.train.lock`)
from before it looks at the folder (:func:`check_occupied`) until it ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossnet.atomic import write_text
from lossnet.checkpoint import Checkpoint, load_checkpoint
from lossnet.errors import CheckpointError, InputError
from lossnet.train.config import TrainConfig, cli_value, resume_changes
from lossnet.train.inputs import anchored

CHECKPOINT = "checkpoint.safetensors"
FINAL_MODEL = "model.safetensors"
#: The files a run writes at the top of its folder; with ``samples/step_*.png`` and
#: ``tensorboard/events.out.tfevents.*`` they are what ``overwrite`` removes.
RUN_FILES = (CHECKPOINT, FINAL_MODEL, "config.json", "log.csv", "val.csv", "shares.csv", "run.json")
log = logging.getLogger("lossnet")
_RUN_GLOBS = (("samples", "step_*.png"), ("tensorboard", "events.out.tfevents.*"))


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`~lossnet.train.loop.train`; a ``KeyboardInterrupt`` that says where to resume from.

    Attributes:
        step: the step of ``checkpoint``.
        checkpoint: the resumable checkpoint on disk (written at the interrupted step when a
            step was completed), or ``None`` when there is none.
    """

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step, self.checkpoint = step, checkpoint


@dataclass
class TrainResult:
    """What :func:`~lossnet.train.loop.train` returns (on every rank; only rank 0 wrote the files).

    Attributes:
        out_dir: the run folder.
        step: the last completed step.
        checkpoint: the resumable checkpoint; ``model``: the final weights (``None`` if
            the run stopped early with ``stop_after``).
        history: one dict per logged row of ``log.csv``, in this process's run.
        val: the last validation scores (``psnr``, ``ssim``; for ``style``: ``content``, ``style``,
            ``tv``, ``total``).
        skipped_files: ``(path, reason)`` of each unreadable training file skipped (those found
            when the dataset was built, and those that failed to decode later in this process).
        replica_checksums: one sha256 prefix of the parameters per process (all equal when DDP works).
    """

    out_dir: Path
    step: int
    checkpoint: Path
    model: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    val: dict[str, float] = field(default_factory=dict)
    skipped_files: list[tuple[Path, str]] = field(default_factory=list)
    replica_checksums: list[str] = field(default_factory=list)


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """``path``, or ``path/checkpoint.safetensors`` when ``path`` is a run folder."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def load_resumable(path: Path) -> Checkpoint:
    """The checkpoint at ``path``, which must hold a run's training state (not a final model)."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.train_state, dict) or "optimizer" not in ckpt.train_state or "config" not in ckpt.meta:
        sibling = path.parent / CHECKPOINT
        where = sibling if sibling.is_file() and sibling != path else f"a run's {CHECKPOINT}"
        raise CheckpointError(f"{path} is a final model, not a checkpoint (it has no optimizer state); resume from {where}")
    return ckpt


def resume_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """The config to continue the run of checkpoint ``path`` with, ``overrides`` (e.g. more ``steps``) applied.

    The run continues in the checkpoint's own folder unless ``out_dir`` is overridden, and
    ``stop_after`` (a pause, not part of the run) is cleared unless given again, so the
    resumed run goes on to ``steps``.

    Args:
        path: a ``checkpoint.safetensors``, or the run folder that holds one.

    Raises:
        FileNotFoundError: no such checkpoint.
        CheckpointError: ``path`` is a final model or not a lossnet checkpoint.
        InputError: an override changes a field that defines the run (see
            :data:`~lossnet.train.config.RESUME_CHANGEABLE`).
    """
    path = checkpoint_path(path)
    stored = anchored(TrainConfig.from_dict(load_resumable(path).meta["config"]))  # (older runs: relative paths)
    config = anchored(stored.replace(**{"out_dir": str(path.parent), "stop_after": None, **overrides}))
    resume_changes(stored, config)
    return config


def check_steps_left(config: TrainConfig, resume: Path, step: int) -> None:
    """Refuse a resume with nothing left to do (``step`` already at ``steps`` or ``stop_after``)."""
    if step >= config.steps:
        raise InputError(
            f"{resume} is already at step {step} of {config.steps}; ask for more --steps (e.g. --steps {2 * step})"
        )
    if config.stop_after is not None and config.stop_after <= step:
        raise InputError(
            f"nothing to do: {resume} is at step {step} and --stop-after is {config.stop_after}; "
            f"give a larger --stop-after, or leave it out to train to step {config.steps}"
        )


def check_writable(out: Path) -> None:
    """Refuse an output folder that is a file, or cannot be created or written (before anything is made in it)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out-dir {out} is a file, not a folder; give a folder (it is created if missing)")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"--out-dir {out} cannot be created: {existing} is a file; give another --out-dir")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise InputError(
            f"--out-dir {out} is not writable ({err.strerror or err} in {existing}); give a folder you can write to"
        ) from None


def check_occupied(out: Path, resume: Path | None, overwrite: bool) -> list[Path]:
    """Refuse an output folder that holds another run (unless ``overwrite``); returns the files to clear.

    Called under the folder's lock (:mod:`~lossnet.train.lock`), so that no run starts or ends
    in the folder between this look and the writes that follow it.
    """
    found = run_files(out)
    if resume is not None and same_folder(resume.parent, out):
        if overwrite:
            raise InputError(
                "--overwrite starts a new run, so it cannot be combined with --resume into the checkpoint's own "
                f"folder ({out}); leave out --overwrite to continue the run"
            )
        return []
    if found and not overwrite:
        hint = f"continue it with --resume {out / CHECKPOINT}, " if (out / CHECKPOINT).is_file() else ""
        raise InputError(
            f"--out-dir {out} already holds a run ({', '.join(str(p.relative_to(out)) for p in found[:4])}"
            f"{', ...' if len(found) > 4 else ''}); {hint}replace it with --overwrite, or give another --out-dir"
        )
    return found


def run_files(folder: Path) -> list[Path]:
    """The files of a lossnet run in ``folder`` (see :data:`RUN_FILES`).

    The lock file (:data:`~lossnet.train.lock.LOCK_FILE`) is none of them: a stale one, left by a
    killed run, neither makes a folder look occupied nor is removed by ``overwrite``.
    """
    if not folder.is_dir():
        return []
    found = [folder / name for name in RUN_FILES if (folder / name).exists()]
    for sub, pattern in _RUN_GLOBS:
        found += sorted((folder / sub).glob(pattern))
    return found


def clear_run(folder: Path) -> None:
    """Remove a previous run's files from ``folder``: its logs and samples first, its weights last; nothing else."""
    for sub, pattern in _RUN_GLOBS:
        for path in sorted((folder / sub).glob(pattern)):
            path.unlink()
        with contextlib.suppress(OSError):  # kept when the user keeps other files there
            (folder / sub).rmdir()
    for name in reversed(RUN_FILES):
        (folder / name).unlink(missing_ok=True)


def same_folder(a: Path, b: Path) -> bool:
    """Whether two paths name the same folder."""
    return os.path.abspath(a) == os.path.abspath(b) or (a.exists() and b.exists() and a.samefile(b))


def open_run_folder(out: Path, config: TrainConfig, to_clear: bool, resume: Path | None) -> None:
    """Make the run folder: clear a previous run (``--overwrite``), carry a resumed run's logs, write the config."""
    out.mkdir(parents=True, exist_ok=True)
    if to_clear:
        clear_run(out)
        log.info("--overwrite: removed the previous run's files from %s", out)
    if resume is not None and not same_folder(resume.parent, out):
        for name in ("log.csv", "val.csv"):  # the new folder continues the run's logs
            if (resume.parent / name).is_file():
                shutil.copyfile(resume.parent / name, out / name)
    write_text(out / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")


def log_resume(resume: Path | None, step: int, steps: int, out: Path, changes: dict[str, tuple[Any, Any]]) -> None:
    """Log where a resumed run continues, and each config field it changes (as the command line spells it)."""
    log.info("resuming %s at step %d of %d, writing to %s", resume, step, steps, out)
    for name, (was, now) in changes.items():
        if name == "out_dir" or (name == "stop_after" and now is None):
            continue
        log.info("resume: %s %s -> %s", name, cli_value(was), cli_value(now))
