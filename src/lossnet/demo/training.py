"""Part 2 of the demo: train with a per-pixel loss and with a perceptual loss, and compare.

- x4 super-resolution: the same :class:`~lossnet.models.SuperResNet`, the same data,
  seed and number of steps, trained once with per-pixel MSE and once with Johnson et
  al.'s feature loss (relu2_2) with a pixel term (the task's ``lossnet_superres`` recipe);
- a short fast-style-transfer run (:class:`~lossnet.models.TransformerNet`, the style task's
  recipe ``lossnet_style``: Johnson's content layer, sliced Wasserstein at his four style layers);
- the held-out validation images (astronaut, chelsea) upscaled by bicubic, by each
  network, next to the ground truth, with PSNR/SSIM on the luma channel (4-pixel border
  shaved, as super-resolution papers report them) and the relu2_2 feature distance.

The pairs, the bicubic baseline and the scoring rule come from the task registry
(:mod:`lossnet.tasks`), and every number from :func:`lossnet.evaluation.scoring.score`, so
they are those ``lossnet eval`` reports for the same networks and images. Everything runs
through the public API (:func:`lossnet.train.train`, :func:`lossnet.inference.apply_model`), as a
user's script would.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from lossnet.inference import apply_model, load_model
from lossnet.atomic import write_text
from lossnet.data.defaults import load_default_image
from lossnet.data.folder import DEFAULT_SPLITS
from lossnet.data.io import save_image
from lossnet.metrics.style import StyleMeasures, style_measures
from lossnet.evaluation.scoring import PSNR_Y, SSIM_Y, Metric, feature_metric, score
from lossnet.metrics import FeatureDistance
from lossnet.runtime import Runtime, resolve
from lossnet.terms.registry import is_style_key
from lossnet.tasks import TASKS
from lossnet.train.config import TrainConfig, task_config
from lossnet.train.loop import train
from lossnet.viz import Cell, contact_sheet

SCALE = 4
#: Side of the style run's training crops (96 px: 300 steps fit the 5-minute budget on a 2-core AVX2 CPU in fp32).
STYLE_CROP = 96
#: The methods compared on the validation images, in sheet order.
METHODS = ("bicubic", "pixel MSE", "perceptual")
#: The name of each training run's progress bar.
BARS = {"pixel MSE": "SR pixel", "perceptual": "SR perceptual", "style": "style"}


@dataclass
class TrainingDemoResult:
    """What the training demo measured and wrote.

    Attributes:
        scores: method -> ``{"psnr_y", "ssim_y", "feature_relu2_2"}``, means over the validation images.
        per_image: ``(image, method)`` -> the same scores for one image.
        style_loss: the style run's summed style terms, first and last logged value.
        style_measures: the stylised content's colour and texture ratios and layout correlation
            (:func:`lossnet.metrics.style.style_measures`; ``None`` for a style given as a file).
        seconds: wall time of each training run.
        precision: the precision the runs and the demo's inference used, with the reason.
    """

    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    per_image: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    style_loss: tuple[float, float] = (0.0, 0.0)
    style_measures: StyleMeasures | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    sheet: Path | None = None
    table_csv: Path | None = None
    table_md: Path | None = None
    precision: str = ""


def style_run_config(
    out_dir: str | Path,
    weights: str | None = "auto",
    precision: str = "auto",
    *,
    steps: int = 300,
    style_weight: float = 1.0,
    size: int = 256,
    style_image: str = "ihc",
) -> TrainConfig:
    """The demo's fast-style-transfer run: the ``style`` recipe with a smaller network, ``steps`` steps of 96 px crops.

    One function, so that the demo and the test of its network (``tests/train/test_learning_demo_style.py``)
    train the same run.
    Arguments as :func:`run_training_demo`'s; ``out_dir`` is the run's own folder.

    >>> c = style_run_config("runs/style", "hed")
    >>> c.task, c.steps, c.crop_size, c.batch_size, c.model_kwargs
    ('style', 300, 96, 2, {'channels': 16, 'num_residual': 3})
    """
    return task_config(
        "style",
        model_kwargs={"channels": 16, "num_residual": 3},
        crop_size=min(STYLE_CROP, size) // 4 * 4,
        batch_size=2,
        steps=steps,
        val_every=steps,
        checkpoint_every=steps,
        style_image=style_image,
        style_size=size,
        sliced_wasserstein_layers={layer: style_weight for layer in ("relu1_2", "relu2_2", "relu3_3", "relu4_3")},
        out_dir=str(out_dir),
        image_size=size,
        # Validation crops fit in chelsea's shorter side (2/3 of its longer), which train() requires.
        val_size=min(STYLE_CROP, size * 2 // 3) // 4 * 4,
        loss_weights=weights,
        precision=precision,
        log_every=10,
    )


def run_training_demo(
    out_dir: Path,
    weights: str | None = "auto",
    *,
    sr_steps: int = 400,
    style_steps: int = 300,
    style_weight: float = 1.0,
    size: int = 256,
    crop_size: int = 64,
    style_image: str = "ihc",
    precision: str | Runtime = "auto",
    progress: bool = False,
) -> TrainingDemoResult:
    """Train the three networks into ``out_dir/runs`` and write ``comparison.png`` and ``results.{csv,md}``.

    Args:
        out_dir: the output folder.
        weights: VGG16 weights for the loss network, by name or path: ``auto`` (ImageNet where it can
            be had, else HED, logged), ``imagenet``, ``hed`` (works offline), a file.
        sr_steps: steps of each super-resolution run; style_steps: of the style run.
        style_weight: the weight of each of the recipe's four sliced-Wasserstein style layers
            (1, the recipe's; ``lossnet sweep`` shows the trade-off).
        size: longer side of the training and validation images.
        crop_size: side of the training crops (the super-resolution target's).
        style_image: a default image name (or file) to take the style from.
        precision: ``auto`` (bf16 where it is native, else fp32; see :mod:`lossnet.runtime`),
            ``fp32``, ``bf16``, or a :class:`~lossnet.runtime.Runtime` already resolved.
        progress: show a progress bar per run.
    """
    out_dir = Path(out_dir)
    runtime = resolve(precision, "auto")  # the device the trainer picks by default
    result = TrainingDemoResult(precision=runtime.summary)
    sr = task_config(
        "superres",
        model_kwargs={"channels": 32, "num_residual": 4, "head_kernel_size": 3},
        crop_size=crop_size,
        batch_size=4,
        steps=sr_steps,
        val_every=sr_steps,
        checkpoint_every=sr_steps,
        image_size=size,
        val_size=crop_size,
        loss_weights=weights,
        precision=runtime.precision,
        log_every=10,
    )
    runs = {
        "pixel MSE": sr.replace(loss="pixel", out_dir=str(out_dir / "runs" / "superres_pixel")),
        "perceptual": sr.replace(loss="perceptual", out_dir=str(out_dir / "runs" / "superres_perceptual")),
        "style": style_run_config(
            out_dir / "runs" / "style", weights, runtime.precision, steps=style_steps, style_weight=style_weight,
            size=size, style_image=style_image,
        ),
    }
    models = {}
    for name, config in runs.items():
        start = time.perf_counter()
        with _quiet_precision():  # the demo resolved the precision once, and says so once
            run = train(config, progress=BARS[name] if progress else False, overwrite=True)  # the demo owns its runs
        result.seconds[name] = time.perf_counter() - start
        models[name] = load_model(run.model)
        if name == "style":
            styles = [sum(v for k, v in row.items() if is_style_key(k)) for row in run.history]
            result.style_loss = (styles[0], styles[-1])

    feature = FeatureDistance("vgg16", ["relu2_2"], weights)
    weights_id = feature.extractor.weights_id
    columns = [PSNR_Y, SSIM_Y, feature_metric(feature)]  # the keys psnr_y, ssim_y, feature_relu2_2
    task = TASKS["superres"]
    rows: list[list[Cell]] = []
    for image in DEFAULT_SPLITS["val"]:
        low, truth = task.pair(load_default_image(image, size=size), scale=SCALE)
        with torch.no_grad():
            outputs = {
                "bicubic": task.baseline(low, SCALE),
                "pixel MSE": apply_model(models["pixel MSE"], low, precision=runtime),
                "perceptual": apply_model(models["perceptual"], low, precision=runtime),
            }
            for method, out in outputs.items():
                scores = score(task, out, truth, scale=SCALE, metrics=columns)
                result.per_image[(image, method)] = scores  # type: ignore[assignment]
        full = [Cell(F.interpolate(low, scale_factor=SCALE, mode="nearest"), f"{image}: input 1/{SCALE}")]
        zoom = [Cell(_zoom(F.interpolate(low, scale_factor=SCALE, mode="nearest")), "zoom")]
        for method, out in outputs.items():
            s = result.per_image[(image, method)]
            full.append(Cell(out, f"{method}: {s['psnr_y']:.2f} dB, {s['ssim_y']:.3f}"))
            zoom.append(Cell(_zoom(out), f"{method}, zoom"))
        full.append(Cell(truth, "ground truth"))
        zoom.append(Cell(_zoom(truth), "ground truth, zoom"))
        rows += [full, zoom]
    for method in METHODS:
        per = [result.per_image[(image, method)] for image in DEFAULT_SPLITS["val"]]
        result.scores[method] = {k: sum(p[k] for p in per) / len(per) for k in per[0]}

    content = load_default_image(DEFAULT_SPLITS["val"][-1], size=size)
    content = content[..., : content.shape[-2] // 4 * 4, : content.shape[-1] // 4 * 4]
    with torch.no_grad():
        stylised = apply_model(models["style"], content, tile=None, precision=runtime)
    style = load_default_image(style_image, size=size) if "/" not in style_image else None
    label = f"fast style transfer, {style_steps} steps, style weight {style_weight:g}"
    if style is not None:
        m = result.style_measures = style_measures(stylised.float(), content, style)
        label += f"\ncolour {m.colour:.2f}, texture {m.texture:.2f}, layout {m.layout:.2f}"
    rows.append(
        ([Cell(style, f"style: {style_image}")] if style is not None else [])
        + [Cell(content, "content"), Cell(stylised, label)]
    )
    title = (
        f"x{SCALE} super-resolution on held-out images, same network and {sr_steps} steps each: "
        f"per-pixel MSE vs perceptual (relu2_2, {weights_id}); labels: PSNR-Y dB, SSIM-Y"
    )
    result.sheet = save_image(contact_sheet(rows, cell_size=200, title=title), out_dir / "comparison.png")
    result.table_csv, result.table_md = _write_tables(result, columns, out_dir, sr_steps)
    return result


@contextlib.contextmanager
def _quiet_precision() -> Iterator[None]:
    """Drop the trainer's ``precision ...`` log line: the demo resolved the precision once and reports it once."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("precision ")

    logger = logging.getLogger("lossnet")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _zoom(x: torch.Tensor, frac: float = 0.3) -> torch.Tensor:
    """The central ``frac`` of the image, enlarged with nearest neighbours so pixels stay visible."""
    h, w = x.shape[-2:]
    ch, cw = max(1, int(h * frac)), max(1, int(w * frac))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, scale_factor=max(1, 200 // max(ch, cw)), mode="nearest")


def _write_tables(
    result: TrainingDemoResult, columns: list[Metric], out_dir: Path, steps: int
) -> tuple[Path, Path]:
    keys = [m.key for m in columns]
    csv_lines = ["image,method," + ",".join(keys)]
    for (image, method), s in result.per_image.items():
        csv_lines.append(f"{image},{method}," + ",".join(f"{s[k]:.6g}" for k in keys))
    for method, s in result.scores.items():
        csv_lines.append(f"mean,{method}," + ",".join(f"{s[k]:.6g}" for k in keys))
    md = [
        f"| x{SCALE} SR, held-out images ({steps} steps) | " + " | ".join(m.label for m in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for method, s in result.scores.items():
        md.append(f"| {method} | " + " | ".join(f"{s[m.key]:.{m.digits}f}" for m in columns) + " |")
    return (
        write_text(out_dir / "results.csv", "\n".join(csv_lines) + "\n"),
        write_text(out_dir / "results.md", "\n".join(md) + "\n"),
    )
