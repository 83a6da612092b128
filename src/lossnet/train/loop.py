"""The training loop: one function, :func:`train`, from a :class:`TrainConfig` to files on disk.

A run writes into ``config.out_dir``: ``config.json`` (the config as run); ``log.csv`` (step, epoch, learning
rate, every weighted loss term and ``total``, means since the previous row, seconds per step); ``val.csv``
(validation PSNR/SSIM, or for ``style`` the weighted training terms on the validation images: ``content``,
``style``, ``tv``, ``total``); ``shares.csv`` (each term's value and gradient share at validation steps);
``tensorboard/`` when installed; ``samples/step_XXXXXXX.png`` (input | output | target; for ``style``:
content | output | style image); ``checkpoint.safetensors`` (weights, optimizer, scheduler, scaler and RNG
states, for ``resume``); ``model.safetensors`` (the final weights, for ``lossnet apply``); ``run.json`` (a
summary: steps, last validation, skipped files and why, replica checksums, the style image, and the weights
a run in shares resolved to).

Runs never overwrite each other (:mod:`lossnet.train.runs`); a run locks its folder (:mod:`lossnet.train.lock`) and
keeps freed memory for its next step (:mod:`lossnet.memory`). The cheap checks (checkpoint, folder, style image,
data) come first; a refused run leaves no file or folder.

The pieces live beside this module: :mod:`~lossnet.train.runs` (the folder, resuming), :mod:`~lossnet.train.inputs`,
:mod:`~lossnet.train.step`, :mod:`~lossnet.train.validation`, :mod:`~lossnet.train.balance` (recipes in shares).

Under ``torchrun`` every process trains its shard with DistributedDataParallel and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from lossnet.atomic import write_text
from lossnet.checkpoint import Checkpoint, rng_state, save_checkpoint, set_rng_state
from lossnet.data.tasks import PairDataset
from lossnet.errors import InputError
from lossnet.memory import keep_freed_memory
from lossnet.models.registry import build_model, model_spec
from lossnet.runtime import resolve
from lossnet.tasks import TASKS
from lossnet.train.balance import SHARES_CSV, calibrate_run, log_balance, measure_run_shares, run_shares
from lossnet.train.batches import StepStream, step_batches
from lossnet.train.card import run_meta
from lossnet.train.config import TrainConfig, model_kwargs, resume_changes
from lossnet.train.distributed import World, gather, init_distributed, on_rank_0, shutdown
from lossnet.train.health import CollapseWatch
from lossnet.train.inputs import anchored, image_dataset
from lossnet.train.lock import hold_run_folder, look_at_run_folder
from lossnet.train.loss_network import training_loss
from lossnet.train.reporting import CsvLog, TensorBoardLog, checksum, log_skipped, progress_bar, sample_sheet
from lossnet.train.reporting import short_term
from lossnet.train.runs import (
    CHECKPOINT, FINAL_MODEL, RUN_FILES, TrainingInterrupted, TrainResult, check_occupied,
    check_steps_left, checkpoint_path, load_resumable, log_resume, open_run_folder, resume_config,
)
from lossnet.train.schedules import Constant, OneCycle, restart_schedule, step_schedule
from lossnet.train.step import check_weights, make_optimizer, train_step
from lossnet.train.styles import StylePalette, unchanged_target, load_styles, style_sources
from lossnet.train.validation import validation_outputs, validation_pairs, validation_scores

log = logging.getLogger("lossnet")

__all__ = ["CHECKPOINT", "FINAL_MODEL", "RUN_FILES", "TrainResult", "TrainingInterrupted", "checkpoint_path"]
__all__ += ["resume_config", "train"]


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
        TrainingDivergedError: the network's output or a loss term became NaN or infinite,
            named in the message (the step is not applied, a diverged network is never saved,
            and the last checkpoint on disk stays intact).
        TrainingInterrupted: Ctrl-C; the checkpoint of the last completed step was written.
        RunFolderInUseError: another run is training into ``config.out_dir``.
        InputError, DataUnavailableError, CheckpointError: bad config, data, output folder or checkpoint.
    """
    keep_freed_memory()
    world = init_distributed(config.device)
    run = None
    try:
        run = _Run(config, world, resume, progress, overwrite)  # checks and builds; writes nothing
        with hold_run_folder(Path(config.out_dir), world):
            run.claim(overwrite)
            return run.run()
    finally:
        # The DDP wrapper must go before its process group: freed after it, its Reducer's gloo threads
        # waited forever at exit, now and then (rank 1 of torchrun hung after rank 0 had finished).
        del run
        gc.collect()
        shutdown(world)


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
        config = anchored(config)  # the absolute paths, so that a resume from another folder reads the same files
        self.config, self.world, self.progress = config, world, progress
        self.device = world.device
        self.out = Path(config.out_dir)
        c = config
        self.runtime = resolve(c.precision, self.device)  # fp16 on a CPU without native fp16: refused there
        if self.runtime.precision == "fp16" and not self.runtime.grad_scaler:
            raise InputError(
                "precision fp16 trains only on a CUDA GPU (it relies on a GradScaler); "
                "use --precision auto or bf16 on CPU"
            )

        # Cheap checks first: the checkpoint, the output folder, the style image and the data.
        self.resume = checkpoint_path(resume) if resume is not None else None
        ckpt, self.changes = None, {}
        if self.resume is not None:
            ckpt = load_resumable(self.resume)
            self.changes = resume_changes(anchored(TrainConfig.from_dict(ckpt.meta["config"])), c)
            check_steps_left(c, self.resume, int(ckpt.meta["step"]))
        look_at_run_folder(self.out, self.resume, overwrite)  # claim() looks again, under the lock
        task = TASKS[c.task]
        styles = load_styles(c.style_image, c.style_size, task.multi_style) if task.needs_style_image else []
        self.style_images, self.style_sources = [s for s, _ in styles], [name for _, name in styles]
        for image, source in styles if world.is_main else ():
            log.info("style image: %s, %dx%d px", source, image.shape[-1], image.shape[-2])
        self.train_set = image_dataset(c, c.data, "train", c.crop_size, c.flip, "data")
        self.train_set[0]  # at least one image decodes (else InputError naming every file tried)
        conditions = len(styles) if task.multi_style else 0  # each item draws its style
        self.pairs = PairDataset(self.train_set, task.pair_maker, options=c.options, conditions=conditions, seed=c.seed)
        self.val_pairs = validation_pairs(image_dataset(c, c.val_data, "val", c.val_size, False, "val-data"), c)
        self.shard = math.ceil(len(self.pairs) / world.size)  # images per process and epoch
        self.skipped_logged = 0

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
        if self.style_images:
            self.loss.set_style_targets([image.to(self.device) for image in self.style_images])
        self._loss_target = StylePalette(self.style_images).recolour if c.recolour_target else unchanged_target
        self.balance, shares = None, run_shares(c)
        if shares is not None:  # resolved once, on the first batch; a resumed run has its weights in its config
            x, y, *index = next(iter(self._batches(0, 1)))  # (the loss's target: y in the style's colours, if asked)
            batch = (x, self._loss_target(y, *index), *index)
            self.config, self.balance = c, _ = calibrate_run(c, self.model, self.loss, batch, self.runtime, shares)
            log_balance(self.balance) if world.is_main else None

        style_params = getattr(self.model, "style_parameters", tuple)()
        self.optimizer = make_optimizer(c, self.model.parameters(), style_params)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._schedule())
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.runtime.grad_scaler)

        self.watch, self.collapse = CollapseWatch(), None
        self.last_val: dict[str, float] | None = None
        self.step = 0
        if ckpt is not None:
            self._restore(ckpt)
        self.net: nn.Module = self.model
        if world.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def claim(self, overwrite: bool) -> None:
        """Under the run folder's lock: the folder must be free, the run's own (resume) or ``overwrite``.

        Rank 0 looks, the others hear its answer: a rank that looked itself could find the files rank 0
        has begun to write, refuse, and leave rank 0 waiting for it.
        """
        self.to_clear = on_rank_0(self.world, lambda: check_occupied(self.out, self.resume, overwrite)) or []
        if self.world.is_main:
            self._log_skipped()

    # -- set-up ---------------------------------------------------------------------------
    def _log_skipped(self) -> None:
        """Log the unreadable training files not logged yet (each once)."""
        self.skipped_logged += log_skipped(self.train_set.skipped[self.skipped_logged :])

    def _schedule(self) -> Constant | OneCycle:
        return OneCycle(self.config.steps) if self.config.schedule == "onecycle" else Constant()

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
        set_rng_state(state["rng"], self.loss)  # the loss's own generators too: a style run's directions
        self.step = int(ckpt.meta["step"])
        if "lr" in self.changes or "steps" in self.changes:
            # The scheduler's state brought back the stored run's peak rate and schedule length
            # (the one-cycle object's `total`): this run's config rules from here on.
            restart_schedule(self.scheduler, self._schedule, c.lr)
        if self.world.is_main:
            log_resume(self.resume, self.step, c.steps, self.out, self.changes)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> TrainResult:
        c, world = self.config, self.world
        start = self.step
        stop = min(c.steps, c.stop_after) if c.stop_after is not None else c.steps
        csv_log = val_log = shares_log = tb = None
        if world.is_main:
            log.info("%s", self.runtime.summary)
            open_run_folder(self.out, c, bool(self.to_clear), self.resume)
            resume_step = start if start else None
            csv_log, val_log = CsvLog(self.out / "log.csv", resume_step), CsvLog(self.out / "val.csv", resume_step)
            shares_log = CsvLog(self.out / SHARES_CSV, resume_step)
            tb = TensorBoardLog(self.out, purge_step=start or None)
        bar = progress_bar(self.progress, f"train {c.task}", start, stop) if world.is_main else None

        history: list[dict[str, float]] = []
        val: dict[str, float] = {}
        sums: dict[str, torch.Tensor] = {}
        since, t_last = 0, time.perf_counter()
        batches = self._batches(start, stop)
        try:
            with contextlib.ExitStack() as stack:
                for x in (csv_log, val_log, shares_log):
                    if x is not None:
                        stack.enter_context(x)
                for batch in batches:
                    terms = self._train_step(*batch)
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
                            bar.set_postfix({short_term(k): f"{row[k]:.3g}" for k in terms}, refresh=False)
                        if world.is_main:
                            self._log_skipped()
                    if bar is not None:
                        bar.update(1)
                    if self.step % c.val_every == 0 or self.step == stop:
                        drawn = rng_state(self.loss)  # put back after: a style loss draws directions here too
                        if shares_log is not None:
                            shares_log.write(measure_run_shares(self.model, self.loss, batch, self.runtime, self.step))
                        val = self._validate(val_log, tb)
                        set_rng_state(drawn, self.loss)  # so a run stopped here resumes as if never stopped
                        if bar is not None and self.collapse is not None:
                            bar.set_description(f"train {c.task} (COLLAPSED? see log)", refresh=False)
                    if self.step % c.checkpoint_every == 0 or self.step == stop:
                        check_weights(self.model, self.step)  # a diverged network never replaces the checkpoint
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
            check_weights(self.model, self.step)
            final = self._save(FINAL_MODEL, with_state=False)
        if world.distributed:
            # Batch-norm running statistics are per process; DDP copies rank 0's at every forward. Do it once more
            # so that every replica ends as the one rank 0 saved.
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        checksums = [str(s) for s in gather(world, checksum(self.model))]
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
                **({"balance": self.balance.to_dict()} if self.balance else {}),
                "resolved_weights": c.resolved_weights,
                **({"style_image": self.style_sources[0]} if len(self.style_sources) == 1 else {}),
                **({"style_images": self.style_sources} if len(self.style_sources) > 1 else {}),
                "precision": self.runtime.to_dict(),
                "replica_checksums": checksums,
            }
            write_text(self.out / "run.json", json.dumps(summary, indent=2) + "\n")
        return result

    def _batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor, ...]]:
        c, world = self.config, self.world
        stream = StepStream(self.pairs, c.seed, world.rank, world.size)
        return step_batches(stream, c.batch_size, start, stop, c.num_workers, self.device, self.memory_format)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, *condition: torch.Tensor) -> dict[str, torch.Tensor]:
        self.lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses
        batch = (x, self._loss_target(y, *condition), *condition)
        terms = train_step(self.net, self.loss, self.optimizer, batch, self.runtime, self.scaler, step=self.step + 1)
        step_schedule(self.scheduler)
        return terms

    def _validate(self, val_log: CsvLog | None, tb: TensorBoardLog | None) -> dict[str, float]:
        """Validation scores and a sample sheet (rank 0 only; others return {}); see :mod:`lossnet.train.validation`."""
        if not self.world.is_main or not self.val_pairs:
            return {}
        c, pairs = self.config, self.val_pairs
        outputs = validation_outputs(self.model, pairs, self.runtime, self.device, self.memory_format, self.step)
        targets, index = [p[1] for p in pairs], torch.cat([p[2] for p in pairs]) if len(pairs[0]) > 2 else None
        raw, tgt = torch.cat(outputs), torch.cat(targets)
        inputs, content = [p[0] for p in pairs], self._loss_target(tgt, index)  # the content in the style's colours
        scores, summary = validation_scores(c, raw, content, self.loss, self.device, inputs, index)
        log.info("validation, step %d: %s", self.step, summary)
        styles = [self.style_images[int(k)] for k in index] if index is not None else self.style_images[:1] * len(pairs)
        self.collapse = self.watch.check(raw.clamp(0, 1), tgt, self.lr, self.step, styles or None)
        if self.collapse is not None:
            log.warning("%s: open the sample sheets in %s; try a lower --lr", self.collapse, self.out / "samples")
        self.last_val = scores  # for the model card
        if val_log is not None:
            val_log.write({"step": self.step, **scores})
        if tb is not None:
            tb.write(self.step, scores, "val/")
        title = f"{c.task}, loss {c.loss}, step {self.step}: {summary}"
        sheet = self.out / "samples" / f"step_{self.step:07d}.png"
        split = TASKS[c.task].split_input  # an input that holds its style image: content | output | style
        sample_sheet(inputs, outputs, targets, sheet, title, style=styles or None, split_input=split)
        return scores

    def _save(self, name: str, with_state: bool) -> Path | None:
        if not self.world.is_main:
            return None
        styles = style_sources(self.config.style_image) if TASKS[self.config.task].multi_style else None
        meta = run_meta(self.spec, self.config, self.step, self.model, self.loss, self.last_val, styles)
        parts = {"optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}
        state = {**{k: v.state_dict() for k, v in parts.items()}, "rng": rng_state(self.loss)} if with_state else None
        return save_checkpoint(self.out / name, self.model.state_dict(), meta, state)

