"""The training loop: one function, :func:`train`, from a :class:`TrainConfig` to files on disk.

A run writes into ``config.out_dir``:

- ``config.json``: the config as run;
- ``log.csv``: step, epoch, learning rate, every weighted loss term and ``total`` (means
  since the previous row), seconds per step; ``val.csv``: validation PSNR/SSIM, or for
  ``style`` (where the content image is no target to score against) the training loss on
  the validation images: ``content`` (the feature terms), ``style`` (the Gram terms), ``tv``
  and ``total``, each weighted as in training;
  ``tensorboard/`` too when tensorboard is installed;
- ``samples/step_XXXXXXX.png``: input | output | target on validation images (for ``style``:
  content | output | style image);
- ``checkpoint.safetensors``: weights, optimizer, scheduler, scaler and RNG states, for
  ``resume``; ``model.safetensors``: the final weights alone, for ``lossnet apply``;
- ``run.json``: a summary (steps, last validation, each skipped file with its reason,
  replica checksums, and the style image for ``style``).

Runs never overwrite each other: a new run into a folder that holds another run's files is
refused unless ``overwrite`` (which first removes that run's files, and only those), and a
resume continues in the folder given to it (:func:`resume_config` picks the checkpoint's
own). Everything cheap (paths, the output folder, the checkpoint, the style image, the
data) is checked before the networks are built, and nothing is written before training starts.

Under ``torchrun`` every process trains its shard with DistributedDataParallel and
only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from lossnet import metrics
from lossnet.atomic import write_text
from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.folder import ImageFolder, default_dataset
from lossnet.data.io import image_size, load_image, resize_longer_side
from lossnet.data.tasks import PairDataset
from lossnet.errors import CheckpointError, InputError, TrainingDivergedError
from lossnet.models.registry import build_model, model_spec
from lossnet.runtime import resolve
from lossnet.train.batches import PositionRange, StepStream
from lossnet.checkpoint import Checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from lossnet.train.config import TrainConfig, cli_value, model_kwargs, resume_changes
from lossnet.train.health import CollapseWatch
from lossnet.train.loss_network import training_loss
from lossnet.train.distributed import World, gather, init_distributed, shutdown
from lossnet.train.reporting import CsvLog, TensorBoardLog, sample_sheet
from lossnet.train.schedules import Constant, OneCycle

log = logging.getLogger("lossnet")

CHECKPOINT = "checkpoint.safetensors"
FINAL_MODEL = "model.safetensors"
#: The files a run writes at the top of its folder; with ``samples/step_*.png`` and
#: ``tensorboard/events.out.tfevents.*`` they are what ``overwrite`` removes.
RUN_FILES = (CHECKPOINT, FINAL_MODEL, "config.json", "log.csv", "val.csv", "run.json")
_RUN_GLOBS = (("samples", "step_*.png"), ("tensorboard", "events.out.tfevents.*"))


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`train`; a ``KeyboardInterrupt`` that says where to resume from.

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
    """What :func:`train` returns (on every rank; only rank 0 wrote the files).

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
    stored = TrainConfig.from_dict(_load_resumable(path).meta["config"])
    config = stored.replace(**{"out_dir": str(path.parent), "stop_after": None, **overrides})
    resume_changes(stored, config)
    return config


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """``path``, or ``path/checkpoint.safetensors`` when ``path`` is a run folder."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def train(
    config: TrainConfig,
    resume: str | os.PathLike[str] | None = None,
    progress: bool | str = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train the config's network on its task with its loss; see the module docstring for the files.

    Args:
        config: the run (see :func:`~lossnet.train.config.task_config` for the recipes).
        resume: a ``checkpoint.safetensors`` (or its run folder) to continue from: weights,
            optimizer, scheduler and RNG states and the step are restored, and the data
            stream picks up where it stopped, so the losses equal an uninterrupted run's.
            ``config`` may differ from the stored one only in the fields of
            :data:`~lossnet.train.config.RESUME_CHANGEABLE` (each change is logged); build it
            with :func:`resume_config`. Outside the checkpoint's folder, its ``log.csv`` and
            ``val.csv`` are carried over.
        progress: show a progress bar with the loss terms and ETA (rank 0 only); a string names the bar.
        overwrite: ``config.out_dir`` may hold another run: its files (:data:`RUN_FILES`,
            sample sheets, TensorBoard events) are removed when training starts; other
            files in the folder are left alone. Without it such a folder is refused.

    Raises:
        TrainingDivergedError: a loss term became NaN or infinite (the step is not applied,
            and the last checkpoint on disk stays intact).
        TrainingInterrupted: Ctrl-C; the checkpoint of the last completed step was written.
        InputError, DataUnavailableError, CheckpointError: bad config, data, output folder or checkpoint.
    """
    world = init_distributed(config.device)
    try:
        return _Run(config, world, resume, progress, overwrite).run()
    finally:
        shutdown(world)


def _load_resumable(path: Path) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.train_state, dict) or "optimizer" not in ckpt.train_state or "config" not in ckpt.meta:
        sibling = path.parent / CHECKPOINT
        where = sibling if sibling.is_file() and sibling != path else f"a run's {CHECKPOINT}"
        raise CheckpointError(f"{path} is a final model, not a checkpoint (it has no optimizer state); resume from {where}")
    return ckpt


class _Run:
    """One training run's state; :meth:`run` is the loop."""

    def __init__(
        self,
        config: TrainConfig,
        world: World,
        resume: str | os.PathLike[str] | None,
        progress: bool | str,
        overwrite: bool = False,
    ):
        self.config, self.world, self.progress = config, world, progress
        self.device = world.device
        self.out = Path(config.out_dir)
        c = config
        if c.precision == "fp16" and self.device.type != "cuda":
            raise InputError(
                "precision fp16 needs a CUDA GPU (it relies on a GradScaler); use --precision auto or bf16 on CPU"
            )
        self.runtime = resolve(c.precision, self.device)

        # Cheap checks first: the checkpoint, the output folder, the style image and the data.
        self.resume = checkpoint_path(resume) if resume is not None else None
        ckpt, self.changes = None, {}
        if self.resume is not None:
            ckpt = _load_resumable(self.resume)
            self.changes = resume_changes(TrainConfig.from_dict(ckpt.meta["config"]), c)
            self._check_steps_left(int(ckpt.meta["step"]))
        self.to_clear = self._check_out_dir(overwrite)
        style = self._style_image() if c.task == "style" else None
        self.style_image: torch.Tensor | None = style
        self.train_set = self._dataset(c.data, "train", c.crop_size, c.flip, "data")
        self.train_set[0]  # at least one image decodes (else InputError naming every file tried)
        self.pairs = PairDataset(
            self.train_set, c.task, scale=c.scale, jpeg_quality=c.jpeg_quality, text=c.text, seed=c.seed
        )
        self.val_pairs = self._val_pairs()
        self.shard = math.ceil(len(self.pairs) / world.size)  # images per process and epoch
        self.skipped_logged = 0
        if world.is_main:
            self._log_skipped()

        torch.manual_seed(c.seed)  # the same initial weights on every rank
        self.spec = model_spec(c.model, **model_kwargs(c))
        self.model = build_model(self.spec).to(self.device)
        self.memory_format = torch.channels_last if c.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        loss, self.loss_network_note = training_loss(c)
        if self.loss_network_note and world.is_main:
            log.warning("%s", self.loss_network_note)
        self.loss = loss.to(self.device)
        self.loss_weights = self.loss.extractor.weights_id if self.loss.extractor else None
        if style is not None:
            self.loss.set_style_target(style.to(self.device))

        params = self.model.parameters()
        opt_cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(params, lr=c.lr, weight_decay=c.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._schedule())
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.runtime.grad_scaler)

        self.watch, self.collapse = CollapseWatch(), None
        self.step = 0
        if ckpt is not None:
            self._restore(ckpt)
        self.net: nn.Module = self.model
        if world.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # -- set-up ---------------------------------------------------------------------------
    def _check_steps_left(self, step: int) -> None:
        c = self.config
        if step >= c.steps:
            raise InputError(
                f"{self.resume} is already at step {step} of {c.steps}; ask for more --steps (e.g. --steps {2 * step})"
            )
        if c.stop_after is not None and c.stop_after <= step:
            raise InputError(
                f"nothing to do: {self.resume} is at step {step} and --stop-after is {c.stop_after}; "
                f"give a larger --stop-after, or leave it out to train to step {c.steps}"
            )

    def _check_out_dir(self, overwrite: bool) -> list[Path]:
        """Refuse an output folder that cannot be written or holds another run; returns the files to clear."""
        out = self.out
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
        found = _run_files(out)
        own = self.resume is not None and _same_folder(self.resume.parent, out)
        if own:
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

    def _style_image(self) -> torch.Tensor:
        name = self.config.style_image
        if name in DEFAULT_IMAGES:
            path = default_image_path(name)
        else:
            path = Path(name)
            fix = f"give one image file, or a default image: {', '.join(DEFAULT_IMAGES)}"
            if path.is_dir():
                raise InputError(f"--style-image {name} is a folder; {fix}")
            if not path.is_file():
                raise InputError(f"--style-image {name}: no such image file; {fix}")
        try:
            image = load_image(path)
        except (OSError, ValueError, Image.DecompressionBombError) as err:  # a non-image, a decompression bomb
            raise InputError(f"--style-image {name}: {err}") from None
        image = resize_longer_side(image, self.config.style_size)
        self.style_source = f"default {name!r} (scikit-image)" if name in DEFAULT_IMAGES else str(path)
        if self.world.is_main:
            log.info("style image: %s, %dx%d px", self.style_source, image.shape[-1], image.shape[-2])
        return image

    def _dataset(self, folder: str | None, split: str, crop: int, flip: bool, flag: str) -> ImageFolder:
        c = self.config
        cache = c.cache_images if c.cache_images is not None else folder is None
        if folder is None:
            return default_dataset(split, crop_size=crop, flip=flip, seed=c.seed, size=c.image_size, cache=cache)
        if not Path(folder).exists():
            raise InputError(f"--{flag} {folder}: no such folder; give the folder that holds your images")
        return ImageFolder(folder, crop_size=crop, flip=flip, seed=c.seed, size=c.image_size, cache=cache)

    def _log_skipped(self) -> None:
        """Log the unreadable training files not logged yet (each once)."""
        new = self.train_set.skipped[self.skipped_logged :]
        if new:
            log.warning(
                "skipped %d unreadable training file%s: %s",
                len(new),
                "s" if len(new) > 1 else "",
                "; ".join(f"{p} ({reason})" for p, reason in new),
            )
        self.skipped_logged += len(new)

    def _schedule(self) -> Constant | OneCycle:
        return OneCycle(self.config.steps) if self.config.schedule == "onecycle" else Constant()

    def _val_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        val = self._dataset(c.val_data, "val", c.val_size, False, "val-data")
        _check_val_sizes(val.files[: c.val_images], c)
        pairs = PairDataset(val, c.task, scale=c.scale, jpeg_quality=c.jpeg_quality, text=c.text, seed=c.seed + 1)
        return [tuple(t[None] for t in pairs[i]) for i in range(min(c.val_images, len(val)))]  # type: ignore[misc]

    def _restore(self, ckpt: Checkpoint) -> None:
        c = self.config
        if ckpt.meta.get("model") != self.spec:
            raise InputError(
                f"{self.resume} holds {ckpt.meta.get('model')}, but this config builds {self.spec}; "
                "resume with the checkpoint's own config (lossnet train --resume takes it from the file)"
            )
        state = ckpt.train_state
        self.model.load_state_dict(ckpt.model_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step = int(ckpt.meta["step"])
        if "lr" in self.changes or "steps" in self.changes:
            # The scheduler's state brought back the stored run's peak rate and schedule length
            # (the one-cycle object's `total`): this run's config rules from here on.
            sched, groups = self.scheduler, self.optimizer.param_groups
            sched.lr_lambdas = [self._schedule() for _ in groups]
            sched.base_lrs = [c.lr for _ in groups]
            for group, fn in zip(groups, sched.lr_lambdas, strict=True):
                group["initial_lr"] = c.lr
                group["lr"] = c.lr * fn(sched.last_epoch)
            sched._last_lr = [g["lr"] for g in groups]
        if self.world.is_main:
            log.info("resuming %s at step %d of %d, writing to %s", self.resume, self.step, c.steps, self.out)
            for name, (was, now) in self.changes.items():
                if name == "out_dir" or (name == "stop_after" and now is None):
                    continue
                log.info("resume: %s %s -> %s", name, cli_value(was), cli_value(now))

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> TrainResult:
        c, world = self.config, self.world
        start = self.step
        stop = min(c.steps, c.stop_after) if c.stop_after is not None else c.steps
        csv_log = val_log = tb = None
        if world.is_main:
            log.info("%s", self.runtime.summary)
            self.out.mkdir(parents=True, exist_ok=True)
            if self.to_clear:
                _clear_run(self.out)
                log.info("--overwrite: removed the previous run's files from %s", self.out)
            if self.resume is not None and not _same_folder(self.resume.parent, self.out):
                for name in ("log.csv", "val.csv"):  # the new folder continues the run's logs
                    if (self.resume.parent / name).is_file():
                        shutil.copyfile(self.resume.parent / name, self.out / name)
            write_text(self.out / "config.json", json.dumps(c.to_dict(), indent=2) + "\n")
            resume_step = start if start else None
            csv_log, val_log = CsvLog(self.out / "log.csv", resume_step), CsvLog(self.out / "val.csv", resume_step)
            tb = TensorBoardLog(self.out, purge_step=start or None)
        bar = None
        if self.progress and world.is_main:
            from tqdm.auto import tqdm

            desc = self.progress if isinstance(self.progress, str) else f"train {c.task}"
            bar = tqdm(total=stop, initial=start, desc=desc, unit="step", dynamic_ncols=True)

        history: list[dict[str, float]] = []
        val: dict[str, float] = {}
        sums: dict[str, torch.Tensor] = {}
        since, t_last = 0, time.perf_counter()
        batches = self._batches(start, stop)
        try:
            with contextlib.ExitStack() as stack:
                for x in (csv_log, val_log):
                    if x is not None:
                        stack.enter_context(x)
                for x, y in batches:
                    terms = self._train_step(x, y)
                    self.step += 1
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v
                    since += 1
                    if self.step % c.log_every == 0 or self.step == stop:
                        now = time.perf_counter()
                        row = {
                            "step": self.step,
                            "epoch": (self.step * c.batch_size) // self.shard,
                            "lr": self.lr,
                            **{k: float(v) / since for k, v in sums.items()},
                            "sec_per_step": (now - t_last) / since,
                        }
                        history.append(row)
                        sums, since, t_last = {}, 0, now
                        if csv_log is not None:
                            csv_log.write(row)
                            tb.write(self.step, {k: row[k] for k in terms}, "loss/")  # type: ignore[union-attr]
                        if bar is not None:
                            bar.set_postfix({_short(k): f"{row[k]:.3g}" for k in terms}, refresh=False)
                        if world.is_main:
                            self._log_skipped()
                    if bar is not None:
                        bar.update(1)
                    if self.step % c.val_every == 0 or self.step == stop:
                        val = self._validate(val_log, tb)
                        if bar is not None and self.collapse is not None:
                            bar.set_description(f"train {c.task} (COLLAPSED? see log)", refresh=False)
                    if self.step % c.checkpoint_every == 0 or self.step == stop:
                        self._save(CHECKPOINT, with_state=True)
        except KeyboardInterrupt:
            saved: Path | None = None
            if self.step > start:
                self._save(CHECKPOINT, with_state=True)
                saved = self.out / CHECKPOINT
            elif self.resume is not None:  # no step yet: the checkpoint resumed from still holds step `start`
                saved = self.resume
            raise TrainingInterrupted(self.step, saved) from None
        finally:
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()

        final = None
        if self.step == c.steps:
            final = self._save(FINAL_MODEL, with_state=False)
        if world.distributed:
            # Batch-norm running statistics are per process; DDP copies rank 0's at every forward. Do it once more
            # so that every replica ends as the one rank 0 saved.
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        checksums = [str(s) for s in gather(world, _checksum(self.model))]
        result = TrainResult(
            self.out,
            self.step,
            self.out / CHECKPOINT,
            final,
            history,
            val,
            list(self.train_set.skipped),
            checksums,
        )
        if world.is_main:
            self._log_skipped()
            summary = {
                "step": self.step,
                "steps": c.steps,
                "val": val,
                "skipped_files": [{"file": str(p), "reason": reason} for p, reason in result.skipped_files],
                "ignored_files": self.train_set.num_ignored,
                "loss_weights": self.loss_weights,
                "loss_network_note": self.loss_network_note,
                **({"style_image": self.style_source} if c.task == "style" else {}),
                "precision": self.runtime.to_dict(),
                "replica_checksums": checksums,
            }
            write_text(self.out / "run.json", json.dumps(summary, indent=2) + "\n")
        return result

    def _batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        stream = StepStream(self.pairs, c.seed, self.world.rank, self.world.size)
        loader = DataLoader(
            stream,
            batch_size=c.batch_size,
            sampler=PositionRange(start * c.batch_size, stop * c.batch_size),
            num_workers=c.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        for x, y in loader:
            yield (
                x.to(self.device, non_blocking=True, memory_format=self.memory_format),
                y.to(self.device, non_blocking=True, memory_format=self.memory_format),
            )

    def _autocast(self) -> contextlib.AbstractContextManager:
        return self.runtime.autocast()

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        self.net.train()
        with self._autocast():
            out = self.net(x)
            terms = self.loss.terms(out.float() if out.dtype != torch.float32 else out, y)
        values = torch.stack([t.detach().float() for t in terms.values()])
        if not bool(torch.isfinite(values).all()):
            bad = [(k, float(v)) for k, v in zip(terms, values, strict=True) if not math.isfinite(float(v))]
            raise TrainingDivergedError(
                f"loss term {bad[0][0]!r} became {bad[0][1]} at step {self.step + 1} "
                f"({', '.join(f'{k} = {v}' for k, v in bad)}); the step was not applied and the last checkpoint is intact. "
                "Lower --lr, train in --precision fp32, or check the data."
            )
        self.lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def _validate(self, val_log: CsvLog | None, tb: TensorBoardLog | None) -> dict[str, float]:
        """Validation scores and a sample sheet (rank 0 only; others return {}).

        PSNR/SSIM against the targets; for ``style``, the training loss's weighted content,
        style and TV terms on the validation images instead (their "target" is the content
        image, which a stylised output should not match pixel for pixel).
        """
        if not self.world.is_main or not self.val_pairs:
            return {}
        self.model.eval()
        outputs = []
        with self._autocast():
            for x, _ in self.val_pairs:
                outputs.append(self.model(x.to(self.device, memory_format=self.memory_format)).float().cpu())
        targets = [y for _, y in self.val_pairs]
        c = self.config
        raw, tgt = torch.cat(outputs), torch.cat(targets)
        out = raw.clamp(0, 1)
        if c.task == "style":
            scores = self._style_scores(raw, tgt)
            summary = ", ".join(f"{k} {v:.4g}" for k, v in scores.items())
        else:
            # Super-resolution papers score the luma channel with a border of `scale` pixels shaved off.
            sr = c.task == "superres"
            opts = {"y_channel": sr, "shave": c.scale if sr else 0}
            scores = {"psnr": float(metrics.psnr(out, tgt, **opts)), "ssim": float(metrics.ssim(out, tgt, **opts))}
            summary = f"PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}"
        self.collapse = self.watch.check(out, tgt, self.lr, self.step)
        if self.collapse is not None:
            log.warning("%s: open the sample sheets in %s; try a lower --lr", self.collapse, self.out / "samples")
        if val_log is not None:
            val_log.write({"step": self.step, **scores})
        if tb is not None:
            tb.write(self.step, scores, "val/")
        sample_sheet(
            [x for x, _ in self.val_pairs],
            outputs,
            targets,
            self.out / "samples" / f"step_{self.step:07d}.png",
            title=f"{c.task}, loss {c.loss}, step {self.step}: {summary}",
            style=self.style_image,
        )
        return scores

    def _style_scores(self, out: torch.Tensor, content: torch.Tensor) -> dict[str, float]:
        """The training loss's weighted terms on the validation outputs, summed into content, style, tv and total."""
        terms = self.loss.terms(out.to(self.device), content.to(self.device))
        scores = {
            "content": float(sum(v for k, v in terms.items() if k.startswith("feature.") or k == "pixel")),
            "style": float(sum(v for k, v in terms.items() if k.startswith("style."))),
        }
        if "tv" in terms:
            scores["tv"] = float(terms["tv"])
        scores["total"] = float(terms["total"])
        return scores

    def _save(self, name: str, with_state: bool) -> Path | None:
        if not self.world.is_main:
            return None
        from lossnet.checkpoint import model_meta

        c = self.config
        meta = model_meta(
            self.spec,
            task=c.task,
            scale=c.scale if c.task == "superres" else None,
            step=self.step,
            config=c.to_dict(),
            loss_weights=self.loss_weights,
        )
        state = None
        if with_state:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng_state(),
            }
        return save_checkpoint(self.out / name, self.model.state_dict(), meta, state)


def _run_files(folder: Path) -> list[Path]:
    """The files of a lossnet run in ``folder`` (see :data:`RUN_FILES`)."""
    if not folder.is_dir():
        return []
    found = [folder / name for name in RUN_FILES if (folder / name).exists()]
    for sub, pattern in _RUN_GLOBS:
        found += sorted((folder / sub).glob(pattern))
    return found


def _clear_run(folder: Path) -> None:
    """Remove a previous run's files from ``folder``: its logs and samples first, its weights last; nothing else."""
    for sub, pattern in _RUN_GLOBS:
        for path in sorted((folder / sub).glob(pattern)):
            path.unlink()
        with contextlib.suppress(OSError):  # kept when the user keeps other files there
            (folder / sub).rmdir()
    for name in reversed(RUN_FILES):
        (folder / name).unlink(missing_ok=True)


def _same_folder(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b) or (a.exists() and b.exists() and a.samefile(b))


def _check_val_sizes(files: list[Path], c: TrainConfig) -> None:
    """Refuse validation images too small for ``val_size`` (they would be scored as an upscaled blur).

    A validation image is cropped to ``val_size``; one smaller than that is upscaled first.
    For super-resolution the network's input is the crop downscaled by ``scale``, so the
    image must have at least ``val_size / scale`` pixels on its shorter side, so that the
    input is no blur of fewer pixels; for the other tasks, ``val_size``.
    """
    sr = c.task == "superres"
    need = math.ceil(c.val_size / c.scale) if sr else c.val_size
    for path in files:
        w, h = image_size(path)
        resized = ""
        f = c.image_size / max(h, w) if c.image_size is not None else 1.0
        if f < 1:  # downsized as lossnet.data.io.resize_longer_side does (an upsized image gains no real pixels)
            h, w = max(1, round(h * f)), max(1, round(w * f))
            resized = f" after --image-size {c.image_size}"
        if min(h, w) < need:
            largest = min(h, w) * (c.scale if sr else 1)
            raise InputError(
                f"validation image {path} is {w}x{h} pixels{resized}, smaller than the {need} px its shorter side "
                f"needs for --val-size {c.val_size}" + (f" at --scale {c.scale} ({c.val_size}/{c.scale})" if sr else "")
                + f"; its scores would measure an upscaled blur. Use --val-size {largest} or less, or larger "
                "validation images (--val-data DIR)"
            )


def _short(term: str) -> str:
    """``feature.relu2_2`` -> ``f.relu2_2`` for the progress bar."""
    head, _, tail = term.partition(".")
    return f"{head[0]}.{tail}" if tail else term


def _checksum(model: nn.Module) -> str:
    """sha256 prefix of the parameters (what DDP keeps equal by averaging gradients)."""
    h = hashlib.sha256()
    for k, v in sorted(model.named_parameters()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
