"""How an output is scored against its ground truth: the metrics registry and :func:`score`.

Every number lossnet reports about a network's output, in ``lossnet eval``'s tables, in
the trainer's validation (``val.csv``) and in the demo's comparison, comes from
:func:`score`, so the three agree by construction. The task decides the border
(:meth:`lossnet.tasks.Task.shave`: ``scale`` pixels for super-resolution, as its papers
do, none otherwise); the metric decides the rest.

Each column is declared once, as a :class:`Metric`:

==============  ===============  ======  ==================================================
key             label            better  what
==============  ===============  ======  ==================================================
``psnr_y``      PSNR-Y (dB)      higher  :func:`lossnet.metrics.psnr` on the BT.601 luma
``ssim_y``      SSIM-Y           higher  :func:`lossnet.metrics.ssim` on the BT.601 luma
``psnr_rgb``    PSNR-RGB (dB)    higher  PSNR on the three RGB channels
``ssim_rgb``    SSIM-RGB         higher  SSIM on the three RGB channels
``feature_L``   feature L        lower   :class:`lossnet.metrics.FeatureDistance` at layers ``L``
``lpips``       LPIPS-VGG        lower   :class:`lossnet.metrics.LPIPS`
==============  ===============  ======  ==================================================

The deep metrics need a network, so they are made by :func:`feature_metric` and
:func:`lpips_metric` from one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from lossnet import metrics
from lossnet.errors import InputError
from lossnet.tasks import Task, get_task
from lossnet.validation import check_image

#: ``(output, truth) -> (B,)`` or a scalar: one metric on ``(B, 3, H, W)`` images in [0, 1], border already shaved.
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Metric:
    """One metric, and its column in the tables.

    Attributes:
        key: the CSV header and the score's key, e.g. ``'psnr_y'``.
        label: the Markdown header, e.g. ``'PSNR-Y (dB)'``.
        higher_is_better: the direction of improvement.
        digits: decimals shown in the Markdown table.
        fn: computes it (see :data:`MetricFn`); ``None`` when it cannot be computed here, and
            its value is then ``None`` (``n/a`` in the tables).
    """

    key: str
    label: str
    higher_is_better: bool
    digits: int
    fn: MetricFn | None = None


def _pixel(fn: Callable[..., torch.Tensor], y_channel: bool) -> MetricFn:
    """A pixel metric in float64, one value per image."""
    return lambda x, y: fn(x.double(), y.double(), y_channel=y_channel, reduction="none")


#: The pixel metrics, in the tables' order.
PSNR_Y = Metric("psnr_y", "PSNR-Y (dB)", True, 2, _pixel(metrics.psnr, True))
SSIM_Y = Metric("ssim_y", "SSIM-Y", True, 4, _pixel(metrics.ssim, True))
PSNR_RGB = Metric("psnr_rgb", "PSNR-RGB (dB)", True, 2, _pixel(metrics.psnr, False))
SSIM_RGB = Metric("ssim_rgb", "SSIM-RGB", True, 4, _pixel(metrics.ssim, False))
PIXEL_METRICS: tuple[Metric, ...] = (PSNR_Y, SSIM_Y, PSNR_RGB, SSIM_RGB)


def headline_metrics(task: str | Task) -> tuple[Metric, Metric]:
    """The task's ``(PSNR, SSIM)`` pair that validation reports: on the luma for super-resolution, else RGB."""
    return (PSNR_Y, SSIM_Y) if get_task(task).y_channel else (PSNR_RGB, SSIM_RGB)


def _on(module: nn.Module) -> MetricFn:
    """Run a metric network on its own device, in float32."""

    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        param = next(module.parameters(), None)
        device = param.device if param is not None else x.device
        return module(x.to(device, torch.float32), y.to(device, torch.float32))

    return fn


def feature_metric(feature: metrics.FeatureDistance) -> Metric:
    """The column of a :class:`~lossnet.metrics.FeatureDistance`: ``feature_relu2_2`` (lower is closer)."""
    layers = "+".join(feature.layers)
    return Metric(f"feature_{layers}", f"feature {layers}", False, 4, _on(feature))


def lpips_metric(lpips: nn.Module | None) -> Metric:
    """The LPIPS-VGG column; ``lpips=None`` gives the column with no values (``n/a``)."""
    return Metric("lpips", "LPIPS-VGG", False, 4, None if lpips is None else _on(lpips))


@torch.no_grad()
def score(
    task: str | Task,
    output: torch.Tensor,
    truth: torch.Tensor,
    *,
    scale: int = 1,
    metrics: Sequence[Metric] = PIXEL_METRICS,
) -> dict[str, float | None]:
    """Score ``output`` against ``truth`` by the task's rule, with each metric; the mean over the batch.

    The output is clamped to [0, 1] (as it is saved), and for super-resolution ``scale``
    pixels are shaved off every border first (:meth:`lossnet.tasks.Task.shave`); every
    metric then sees the same crop. PSNR averages the per-image dB values, as papers do.

    Args:
        task: a task name or :class:`~lossnet.tasks.Task`.
        output: the network's (or the baseline's) output ``(B, 3, H, W)``, nominally in [0, 1].
        truth: the ground truth, ``(B, 3, H, W)`` in [0, 1].
        scale: the upscaling factor (the border shaved for ``superres``).
        metrics: the columns (default :data:`PIXEL_METRICS`).

    Returns:
        ``{metric key: value}``; ``None`` for a metric that cannot be computed here.

    Raises:
        InputError: a task without a ground truth (``style``), mismatched shapes, images
            too small for the border.

    >>> y = torch.full((1, 3, 24, 24), 0.5)
    >>> s = score("superres", y + 0.1, y, scale=4, metrics=[PSNR_RGB])
    >>> round(s["psnr_rgb"], 2)
    20.0
    """
    task = get_task(task)
    if not task.has_truth:
        raise InputError(f"task {task.name!r} has no ground truth to score against (its output is meant to differ)")
    check_image(output, "output")
    check_image(truth, "truth")
    if output.shape != truth.shape:
        raise InputError(
            f"output and truth must have the same shape; got {tuple(output.shape)} and {tuple(truth.shape)}"
        )
    shave = task.shave(scale)
    h, w = truth.shape[-2:]
    if shave and min(h, w) <= 2 * shave:
        raise InputError(f"images of {h}x{w} pixels leave nothing after shaving {shave} px off every border")
    x = output.clamp(0, 1)
    if shave:
        x, truth = x[..., shave:-shave, shave:-shave], truth[..., shave:-shave, shave:-shave]
    return {m.key: None if m.fn is None else float(m.fn(x, truth).double().mean()) for m in metrics}


__all__ = [
    "PIXEL_METRICS",
    "PSNR_RGB",
    "PSNR_Y",
    "SSIM_RGB",
    "SSIM_Y",
    "Metric",
    "MetricFn",
    "feature_metric",
    "headline_metrics",
    "lpips_metric",
    "score",
]
