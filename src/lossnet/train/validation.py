"""Validation during training: the fixed validation pairs, and their scores through the shared :func:`score`.

A task with a ground truth is scored with :func:`lossnet.evaluation.scoring.score`, the
function ``lossnet eval`` and the demo call, with the task's headline pair
(:func:`~lossnet.evaluation.scoring.headline_metrics`): PSNR and SSIM on the luma with
``scale`` pixels shaved for super-resolution, on RGB over the whole image otherwise. They
are logged as ``psnr`` and ``ssim``. ``style`` has no ground truth: its validation reports
the training loss's weighted terms on the validation images instead.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from lossnet.data.folder import ImageFolder
from lossnet.data.io import image_size
from lossnet.data.tasks import PairDataset
from lossnet.errors import InputError, TrainingDivergedError
from lossnet.evaluation.scoring import headline_metrics, score
from lossnet.runtime import Runtime
from lossnet.tasks import TASKS
from lossnet.terms.registry import is_style_key
from lossnet.train.config import TrainConfig
from lossnet.train.styles import style_sources

Pairs = list[tuple[torch.Tensor, torch.Tensor]]


def check_val_sizes(files: list[Path], c: TrainConfig) -> None:
    """Refuse validation images too small for ``val_size`` (they would be scored as an upscaled blur).

    A validation image is cropped to ``val_size``; one smaller than that is upscaled first.
    For super-resolution the network's input is the crop downscaled by ``scale``, so the
    image must have at least ``val_size / scale`` pixels on its shorter side, so that the
    input is no blur of fewer pixels; for the other tasks, ``val_size``.
    """
    scale = TASKS[c.task].scale(c.task_options)
    sr = scale != 1
    need = math.ceil(c.val_size / scale)
    for path in files:
        w, h = image_size(path)
        resized = ""
        f = c.image_size / max(h, w) if c.image_size is not None else 1.0
        if f < 1:  # downsized as lossnet.data.io.resize_longer_side does (an upsized image gains no real pixels)
            h, w = max(1, round(h * f)), max(1, round(w * f))
            resized = f" after --image-size {c.image_size}"
        if min(h, w) < need:
            largest = min(h, w) * scale
            raise InputError(
                f"validation image {path} is {w}x{h} pixels{resized}, smaller than the {need} px its shorter side "
                f"needs for --val-size {c.val_size}" + (f" at --scale {scale} ({c.val_size}/{scale})" if sr else "")
                + f"; its scores would measure an upscaled blur. Use --val-size {largest} or less, or larger "
                "validation images (--val-data DIR)"
            )


def validation_pairs(val: ImageFolder, c: TrainConfig) -> Pairs:
    """The first ``val_images`` validation pairs ``(1, C, H, W)``, fixed for the whole run (seeded ``seed + 1``).

    A multi-style run's pairs add their style index ``(1,)``: image ``i`` in style ``i`` modulo the styles.
    """
    check_val_sizes(val.files[: c.val_images], c)
    task = TASKS[c.task]
    styles = len(style_sources(c.style_image)) if task.multi_style else 0
    pairs = PairDataset(val, task.pair_maker, options=c.options, conditions=styles, seed=c.seed + 1)
    out = [tuple(t[None] for t in pairs[i]) for i in range(min(c.val_images, len(val)))]
    return [(x, y, torch.tensor([i % styles])) if styles else (x, y) for i, (x, y, *_) in enumerate(out)]


@torch.no_grad()
def validation_outputs(
    model: nn.Module,
    pairs: Pairs,
    runtime: Runtime,
    device: torch.device,
    memory_format: torch.memory_format,
    step: int,
) -> list[torch.Tensor]:
    """The network's raw outputs on the validation inputs (given each pair's condition where it has one), float32
    on the CPU (the model is put in eval mode).

    Raises:
        TrainingDivergedError: an output is NaN or infinite (the weights diverged at ``step``).
    """
    model.eval()
    outputs = []
    with runtime.autocast():
        for x, _, *condition in pairs:
            conditions = [t.to(device) for t in condition]
            outputs.append(model(x.to(device, memory_format=memory_format), *conditions).float().cpu())
    if not all(bool(torch.isfinite(out).all()) for out in outputs):
        raise TrainingDivergedError(
            f"the network's output on the validation images became NaN or infinite after step {step}: its weights "
            "have diverged; nothing was saved for this step and the last checkpoint is intact. Lower --lr, train "
            "in --precision fp32, or check the data."
        )
    return outputs


@torch.no_grad()
def validation_scores(
    c: TrainConfig,
    raw: torch.Tensor,
    targets: torch.Tensor,
    loss: nn.Module,
    device: torch.device,
    inputs: list[torch.Tensor] | None = None,
    target_index: torch.Tensor | None = None,
) -> tuple[dict[str, float], str]:
    """The scores of the outputs ``raw`` against ``targets`` (both ``(N, 3, H, W)``), and a one-line summary.

    Given the network's ``inputs`` (each ``(1, C, h, w)``), a task with a baseline (bicubic, the
    JPEG, the grey input) is also scored by it, as ``baseline_psnr`` and ``baseline_ssim``, so
    that whether training helped is visible in the log (see :func:`validation_summary`).
    """
    task = TASKS[c.task]
    scale = task.scale(c.task_options)
    if not task.has_truth:
        index = None if target_index is None else target_index.to(device)
        scores = style_scores(loss, raw.to(device), targets.to(device), index)
        return scores, validation_summary(c.task, scores)
    psnr, ssim = headline_metrics(task)
    found = score(task, raw, targets, scale=scale, metrics=[psnr, ssim])
    scores = {"psnr": float(found[psnr.key]), "ssim": float(found[ssim.key])}  # type: ignore[arg-type]
    if inputs is not None and task.baseline_fn is not None:
        base = torch.cat([task.baseline(x.float(), scale) for x in inputs])
        found = score(task, base, targets, scale=scale, metrics=[psnr, ssim])
        scores["baseline_psnr"], scores["baseline_ssim"] = float(found[psnr.key]), float(found[ssim.key])  # type: ignore
    return scores, validation_summary(c.task, scores)


def validation_summary(task: str, scores: dict[str, float]) -> str:
    """One line for the log, the sample sheet and the CLI, with the baseline's scores beside the network's.

    >>> validation_summary("superres", {"psnr": 27.314, "ssim": 0.8123, "baseline_psnr": 26.48, "baseline_ssim": 0.79})
    'PSNR 27.31 dB (bicubic 26.48), SSIM 0.812 (bicubic 0.790)'
    >>> validation_summary("style", {"content": 1.5, "style": 2.25, "total": 3.75})
    'content 1.5, style 2.25, total 3.75'
    """
    if "psnr" not in scores:
        return ", ".join(f"{k} {v:.4g}" for k, v in scores.items())
    if "baseline_psnr" not in scores:
        return f"PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}"
    name = (TASKS[task].baseline_name or "baseline").split(" ")[0]  # 'JPEG q{quality}': the quality varies per image
    return (
        f"PSNR {scores['psnr']:.2f} dB ({name} {scores['baseline_psnr']:.2f}), "
        f"SSIM {scores['ssim']:.3f} ({name} {scores['baseline_ssim']:.3f})"
    )


def style_scores(
    loss: nn.Module, out: torch.Tensor, content: torch.Tensor, target_index: torch.Tensor | None = None
) -> dict[str, float]:
    """The training loss's weighted terms on the validation outputs, summed into content, style, tv and total.

    Each term counts where the table of families puts it: the style image's families (Gram, MRF,
    sliced Wasserstein, ...) in style, the content's (feature, pixel, ...) in content.
    """
    terms = loss.terms(out, content, target_index)
    scores = {
        "content": float(sum(v for k, v in terms.items() if k not in ("total", "tv") and not is_style_key(k))),
        "style": float(sum(v for k, v in terms.items() if is_style_key(k))),
    }
    if "tv" in terms:
        scores["tv"] = float(terms["tv"])
    scores["total"] = float(terms["total"])
    return scores
