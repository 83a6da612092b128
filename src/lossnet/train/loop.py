"""The training loop: one function, :func:`train`, from a :class:`TrainConfig` to files on disk.

A run writes into ``config.out_dir``:

- ``config.json``: the config as run;
- ``log.csv``: step, epoch, learning rate, every weighted loss term and ``total`` (means
  since the previous row), seconds per step; ``val.csv``: validation PSNR/SSIM;
  ``tensorboard/`` too when tensorboard is installed;
- ``samples/step_XXXXXXX.png``: input | output | target on validation images;
- ``checkpoint.safetensors``: weights, optimizer, scheduler, scaler and RNG states, for
  ``resume``; ``model.safetensors``: the final weights alone, for ``lossnet apply``;
- ``run.json``: a summary (steps, last validation, skipped files, replica checksums).

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
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from lossnet import metrics
from lossnet.atomic import write_text
from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.folder import ImageFolder, default_dataset
from lossnet.data.io import load_image, resize_longer_side
from lossnet.data.tasks import PairDataset
from lossnet.errors import InputError, TrainingDivergedError
from lossnet.losses.perceptual import PerceptualLoss
from lossnet.models.registry import build_model, model_spec
from lossnet.runtime import resolve
from lossnet.train.batches import PositionRange, StepStream
from lossnet.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from lossnet.train.config import TrainConfig, loss_kwargs, model_kwargs
from lossnet.train.distributed import World, gather, init_distributed, shutdown
from lossnet.train.reporting import CsvLog, TensorBoardLog, sample_sheet
from lossnet.train.schedules import Constant, OneCycle

log = logging.getLogger("lossnet")

CHECKPOINT = "checkpoint.safetensors"
FINAL_MODEL = "model.safetensors"


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank; only rank 0 wrote the files).

    Attributes:
        out_dir: the run folder.
        step: the last completed step.
        checkpoint: the resumable checkpoint; ``model``: the final weights (``None`` if
            the run stopped early with ``stop_after``).
        history: one dict per logged row of ``log.csv``, in this process's run.
        val: the last validation scores (``psnr``, ``ssim``).
        skipped_files: unreadable training files skipped so far.
        replica_checksums: one sha256 prefix of the parameters per process (all equal when DDP works).
    """

    out_dir: Path
    step: int
    checkpoint: Path
    model: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    val: dict[str, float] = field(default_factory=dict)
    skipped_files: int = 0
    replica_checksums: list[str] = field(default_factory=list)


def resume_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """The config stored in a checkpoint, with ``overrides`` (e.g. more ``steps``) applied."""
    return TrainConfig.from_dict(load_checkpoint(path).meta["config"]).replace(**overrides)


def train(config: TrainConfig, resume: str | os.PathLike[str] | None = None, progress: bool = False) -> TrainResult:
    """Train the config's network on its task with its loss; see the module docstring for the files.

    Args:
        config: the run (see :func:`~lossnet.train.config.task_config` for the recipes).
        resume: a ``checkpoint.safetensors`` to continue from: weights, optimizer,
            scheduler and RNG states and the step are restored, and the data stream
            picks up where it stopped, so the losses equal an uninterrupted run's.
        progress: show a progress bar with the loss terms and ETA (rank 0 only).

    Raises:
        TrainingDivergedError: a loss term became NaN or infinite (the step is not applied,
            and the last checkpoint on disk stays intact).
        InputError, DataUnavailableError, CheckpointError: bad config, data or checkpoint.
    """
    world = init_distributed(config.device)
    try:
        return _Run(config, world, resume, progress).run()
    finally:
        shutdown(world)


class _Run:
    """One training run's state; :meth:`run` is the loop."""

    def __init__(self, config: TrainConfig, world: World, resume: str | os.PathLike[str] | None, progress: bool):
        self.config, self.world, self.progress = config, world, progress
        self.device = world.device
        self.out = Path(config.out_dir)
        c = config
        if c.precision == "fp16" and self.device.type != "cuda":
            raise InputError(
                "precision fp16 needs a CUDA GPU (it relies on a GradScaler); use --precision auto or bf16 on CPU"
            )
        self.runtime = resolve(c.precision, self.device)

        torch.manual_seed(c.seed)  # the same initial weights on every rank
        self.spec = model_spec(c.model, **model_kwargs(c))
        self.model = build_model(self.spec).to(self.device)
        self.memory_format = torch.channels_last if c.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.loss = PerceptualLoss(weights=c.loss_weights, **loss_kwargs(c)).to(self.device)
        self.loss_weights = self.loss.extractor.weights_id if self.loss.extractor else None
        if c.task == "style":
            self.loss.set_style_target(self._style_image().to(self.device))

        self.train_set = self._dataset(c.data, "train", c.crop_size, c.flip)
        self.pairs = PairDataset(
            self.train_set, c.task, scale=c.scale, jpeg_quality=c.jpeg_quality, text=c.text, seed=c.seed
        )
        self.val_pairs = self._val_pairs()
        self.shard = math.ceil(len(self.pairs) / world.size)  # images per process and epoch

        params = self.model.parameters()
        opt_cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(params, lr=c.lr, weight_decay=c.weight_decay)
        schedule = OneCycle(c.steps) if c.schedule == "onecycle" else Constant()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.runtime.grad_scaler)

        self.step = 0
        if resume is not None:
            self._restore(resume)
        self.net: nn.Module = self.model
        if world.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # -- set-up ---------------------------------------------------------------------------
    def _dataset(self, folder: str | None, split: str, crop: int, flip: bool) -> ImageFolder:
        c = self.config
        cache = c.cache_images if c.cache_images is not None else folder is None
        if folder is None:
            return default_dataset(split, crop_size=crop, flip=flip, seed=c.seed, size=c.image_size, cache=cache)
        return ImageFolder(folder, crop_size=crop, flip=flip, seed=c.seed, size=c.image_size, cache=cache)

    def _val_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        val = self._dataset(c.val_data, "val", c.val_size, False)
        pairs = PairDataset(val, c.task, scale=c.scale, jpeg_quality=c.jpeg_quality, text=c.text, seed=c.seed + 1)
        return [tuple(t[None] for t in pairs[i]) for i in range(min(c.val_images, len(val)))]  # type: ignore[misc]

    def _style_image(self) -> torch.Tensor:
        name = self.config.style_image
        path = default_image_path(name) if name in DEFAULT_IMAGES else name
        return resize_longer_side(load_image(path), self.config.style_size)

    def _restore(self, path: str | os.PathLike[str]) -> None:
        ckpt = load_checkpoint(path)
        if ckpt.meta.get("model") != self.spec:
            raise InputError(
                f"{path} holds {ckpt.meta.get('model')}, but this config builds {self.spec}; "
                "resume with the checkpoint's own config (lossnet train --resume takes it from the file)"
            )
        state = ckpt.train_state or {}
        self.model.load_state_dict(ckpt.model_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step = int(ckpt.meta["step"])
        if self.step >= self.config.steps:
            raise InputError(f"{path} is already at step {self.step} of {self.config.steps}; ask for more --steps")

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> TrainResult:
        c, world = self.config, self.world
        start = self.step
        stop = min(c.steps, c.stop_after) if c.stop_after is not None else c.steps
        if stop <= start:
            raise InputError(f"nothing to do: the run is at step {start} and stop_after is {c.stop_after}")
        csv_log = val_log = tb = None
        if world.is_main:
            log.info("%s", self.runtime.summary)
            self.out.mkdir(parents=True, exist_ok=True)
            write_text(self.out / "config.json", json.dumps(c.to_dict(), indent=2) + "\n")
            resume_step = start if start else None
            csv_log, val_log = CsvLog(self.out / "log.csv", resume_step), CsvLog(self.out / "val.csv", resume_step)
            tb = TensorBoardLog(self.out, purge_step=start or None)
        bar = None
        if self.progress and world.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=stop, initial=start, desc=f"train {c.task}", unit="step", dynamic_ncols=True)

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
                    if bar is not None:
                        bar.update(1)
                    if self.step % c.val_every == 0 or self.step == stop:
                        val = self._validate(val_log, tb)
                    if self.step % c.checkpoint_every == 0 or self.step == stop:
                        self._save(CHECKPOINT, with_state=True)
        except KeyboardInterrupt:
            if self.step > start:
                self._save(CHECKPOINT, with_state=True)
                log.info("interrupted at step %d; resume with --resume %s", self.step, self.out / CHECKPOINT)
            raise
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
            self.train_set.num_skipped,
            checksums,
        )
        if world.is_main:
            summary = {
                "step": self.step,
                "steps": c.steps,
                "val": val,
                "skipped_files": result.skipped_files,
                "ignored_files": self.train_set.num_ignored,
                "loss_weights": self.loss_weights,
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
        """PSNR/SSIM on the validation pairs, and a sample sheet (rank 0 only; others return {})."""
        if not self.world.is_main or not self.val_pairs:
            return {}
        self.model.eval()
        outputs = []
        with self._autocast():
            for x, _ in self.val_pairs:
                outputs.append(self.model(x.to(self.device, memory_format=self.memory_format)).float().cpu())
        targets = [y for _, y in self.val_pairs]
        # Super-resolution papers score the luma channel with a border of `scale` pixels shaved off.
        sr = self.config.task == "superres"
        opts = {"y_channel": sr, "shave": self.config.scale if sr else 0}
        out, tgt = torch.cat(outputs).clamp(0, 1), torch.cat(targets)
        scores = {"psnr": float(metrics.psnr(out, tgt, **opts)), "ssim": float(metrics.ssim(out, tgt, **opts))}
        if val_log is not None:
            val_log.write({"step": self.step, **scores})
        if tb is not None:
            tb.write(self.step, scores, "val/")
        sample_sheet(
            [x for x, _ in self.val_pairs],
            outputs,
            targets,
            self.out / "samples" / f"step_{self.step:07d}.png",
            title=f"{self.config.task}, loss {self.config.loss}, step {self.step}: "
            f"PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}",
        )
        return scores

    def _save(self, name: str, with_state: bool) -> Path | None:
        if not self.world.is_main:
            return None
        c = self.config
        meta = {
            "model": self.spec,
            "task": c.task,
            "scale": c.scale if c.task == "superres" else None,
            "step": self.step,
            "config": c.to_dict(),
            "loss_weights": self.loss_weights,
        }
        state = None
        if with_state:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng_state(),
            }
        return save_checkpoint(self.out / name, self.model.state_dict(), meta, state)


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
