"""Evaluating trained networks against ground truth: per image, per method, with the classic baseline beside them.

:func:`evaluate` takes one network or several (checkpoints or modules) and a set of
ground-truth images, and for every image:

1. builds the input the networks' task gives them, as the trainer does
   (the task's pair maker, :attr:`lossnet.tasks.Task.pair_maker`), but deterministically:

   ==========  ===========================================  =====================================
   task        input                                        baseline (the method to beat)
   ==========  ===========================================  =====================================
   superres    the image cropped (top-left) to multiples    ``bicubic``: the input upsampled with
               of ``scale``, antialiased-bicubic downscaled  bicubic interpolation, clamped to [0, 1]
   restore     the image through JPEG at ``jpeg_quality``   ``JPEG qN``: the degraded input itself
               (30 unless told; no text overlay)
   colorize    BT.601 luma, one channel                     ``grey``: the luma repeated to RGB
   ==========  ===========================================  =====================================

   (the task registry, :mod:`lossnet.tasks`, says each task's input, baseline and the options
   it is evaluated with, :attr:`~lossnet.tasks.Task.eval_options`). A network of a task without
   ground truth (``style``) has nothing to be compared with, so it is refused.
2. runs each network with :func:`lossnet.inference.apply_model` (any size, tiled if large);
3. scores the baseline and every network against the image with
   :func:`lossnet.evaluation.scoring.score`, the one scoring function that the trainer's
   validation and the demo also call.

**Metrics** (declared once in :mod:`lossnet.evaluation.scoring`), in the table's order:

- ``psnr_y`` (dB), ``ssim_y``: on the BT.601 luma (MATLAB ``rgb2ycbcr``), as super-resolution
  papers report them;
- ``psnr_rgb`` (dB), ``ssim_rgb``: on the three RGB channels;
- ``feature_<layers>``: the mean squared difference of VGG features (default relu2_2 of
  VGG16 with the given weights; lower is closer). Only comparable between tables computed
  with the same weights, which the notes name;
- ``lpips``: LPIPS-VGG (Zhang et al. 2018), only when torchvision's ImageNet VGG16 and the
  published calibration file can be had; otherwise the column says ``n/a`` and a note gives
  the reason. No other network is ever substituted.

For ``superres`` every metric is computed after shaving ``scale`` pixels off every border
(the super-resolution convention: the border depends on how an implementation pads);
``restore`` and ``colorize`` are scored on the whole image. The mean row averages the
per-image values (for PSNR, the mean of the dB values, as papers do).

:func:`~lossnet.evaluation.tables.write_tables` writes the result as ``eval.csv`` and ``eval.md``;
``lossnet eval`` is the command-line shell over both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lossnet import metrics
from lossnet.checkpoint import ModelInfo
from lossnet.data.pairs import options_from
from lossnet.inference import apply_model, load_model_with_info
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import InputError, InputTypeError
from lossnet.memory import release_freed_memory
from lossnet.offline import LPIPS
from lossnet.evaluation.inputs import ground_truth, scored_pair
from lossnet.evaluation.scoring import PIXEL_METRICS, feature_metric, lpips_metric, score
from lossnet.evaluation.tables import NOT_AVAILABLE, EvalResult
from lossnet.runtime import PRECISION_CHOICES, Runtime, resolve
from lossnet.tasks import EVAL_TASKS, TASKS, Task, guess_task
from lossnet.validation import check_choice, check_positive_int

#: The JPEG quality of the ``restore`` inputs unless told otherwise (its :attr:`~lossnet.tasks.Task.eval_options`).
DEFAULT_JPEG_QUALITY = int(TASKS["restore"].eval_options["jpeg_quality"])

ModelArg = str | os.PathLike[str] | nn.Module

log = logging.getLogger("lossnet")


@dataclass
class _Method:
    name: str
    model: nn.Module
    info: ModelInfo | None
    source: str


@torch.no_grad()
def evaluate(
    models: ModelArg | Mapping[str, ModelArg],
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    task: str | None = None,
    task_options: Mapping[str, Any] | None = None,
    scale: int | None = None,
    size: int | None = None,
    jpeg_quality: int | None = None,
    feature_arch: str = "vgg16",
    feature_layers: Mapping[str, float] | Iterable[str] | None = ("relu2_2",),
    feature_weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
    lpips: bool = True,
    lpips_calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    tile: int | None = 512,
    precision: str | Runtime = "fp32",
    device: str | torch.device = "cpu",
    progress: Callable[[list[Any]], Iterable[Any]] | None = None,
) -> EvalResult:
    """Score networks and their task's baseline on ground-truth images; see the module docstring.

    Args:
        models: a checkpoint path (written by ``lossnet train``) or a network in eval mode, or
            ``{name: checkpoint or network}`` to compare several side by side (they must share
            the task and the scale). Names default to the checkpoint's run folder
            (``runs/sr_pixel/model.safetensors`` is ``sr_pixel``) or file stem.
        data: a folder of ground-truth images (searched recursively), an image file, a list of
            image files and folders, or ``None`` for the default validation split (astronaut, chelsea).
        task: the task when the checkpoints do not record it (a module given directly): a
            ``SuperResNet`` is ``superres``, a one-channel network ``colorize`` (and a
            ``TransformerNet`` ``style``, refused), see :func:`lossnet.tasks.guess_task`; otherwise it
            must be said. A recorded task that differs is an error.
        task_options: the task's options (:attr:`lossnet.tasks.Task.options`), over its
            :attr:`~lossnet.tasks.Task.eval_options`: ``{"jpeg_quality": 20}`` for ``restore``; a
            ``scale`` must be the networks' own (left out, it is theirs).
        scale, jpeg_quality: the same as ``task_options={"scale": ...}`` or ``{"jpeg_quality": ...}``,
            where the task has that option (ignored otherwise).
        size: resize each image's longer side to this first (``None`` keeps the file's size).
        feature_arch, feature_layers, feature_weights: the feature distance's VGG, its layers
            (``{layer: weight}`` or names) and weights (``'auto'``, the default: ImageNet where it
            can be had, else HED, logged; ``'hed'``, ``'imagenet'``, a path, ``None`` for random,
            or :class:`~lossnet.backbones.weights.LoadedWeights`);
            ``feature_layers=None`` (or empty) leaves the column out.
        lpips: add the LPIPS-VGG column (``n/a`` with a note when it cannot be computed).
        lpips_calibration: the lpips project's ``weights/v0.1/vgg.pth`` (a path, or the dict
            :func:`lossnet.metrics.load_lpips_calibration` returns); ``None``: the installed lpips
            wheel's file. Without one LPIPS is ``n/a``, with a note.
        tile, precision: as for :func:`lossnet.inference.apply_model`.
        device: where checkpoints are loaded and the metric networks run (``'cpu'``,
            ``'cuda'``, ``'auto'``, ...); a module given directly runs where it is.
        progress: wraps the list of images for iteration, e.g. ``tqdm.tqdm``.

    Returns:
        an :class:`EvalResult`; the images are ``(1, 3, H, W)`` in [0, 1] throughout.

    Raises:
        FileNotFoundError: a checkpoint, the data folder or the calibration file does not exist.
        CheckpointError: a checkpoint is corrupt or holds no network.
        InputError: networks of different tasks or scales, a style network, a scale that is
            not the network's, no readable image, bad options.

    Example:
        >>> from lossnet.models import SuperResNet
        >>> net = SuperResNet(scale=2, channels=4, num_residual=1).eval()  # at init: bicubic
        >>> r = evaluate({"sr": net}, size=48, feature_layers=None, lpips=False)
        >>> r.methods, r.images, r.shave
        (['bicubic', 'sr'], ['astronaut', 'chelsea'], 2)
        >>> abs(r.mean("sr")["psnr_y"] - r.mean("bicubic")["psnr_y"]) < 1e-4
        True
    """
    if not isinstance(precision, Runtime):
        check_choice(precision, PRECISION_CHOICES, "precision")
    if jpeg_quality is not None and (isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int)
                                     or not 1 <= jpeg_quality <= 100):  # fmt: skip
        raise InputError(f"jpeg_quality must be an int in 1-100; got {jpeg_quality!r}. Lower compresses harder.")
    if size is not None:
        size = check_positive_int(size, "size")
    methods = _load_methods(models, device)
    if task_options is not None and not isinstance(task_options, Mapping):
        raise InputTypeError(f"task_options must be a dict such as {{'jpeg_quality': 20}}; got {task_options!r}")
    legacy = {k: v for k, v in (("scale", scale), ("jpeg_quality", jpeg_quality)) if v is not None}
    for key, value in (task_options or {}).items():  # a bad value fails before any network is loaded
        for cls in {TASKS[t].options for t in EVAL_TASKS if key in TASKS[t].options_dict()}:
            options_from(cls, {key: value})
    task, options = _common_task(methods, task, legacy, dict(task_options or {}))
    scale = task.scale(options)
    baseline = task.method_name(options)
    if baseline in {m.name for m in methods}:
        raise InputError(f"a network is named {baseline!r}, the baseline's name; give it another name")

    dataset, names, unreadable = ground_truth(data, size)
    metric_device = _device_of(methods[0].model)
    precision = resolve(precision, metric_device)  # once, for every network and image
    result = EvalResult(task=task.name, scale=scale, shave=task.shave(scale), images=names, methods=[baseline])
    result.methods += [m.name for m in methods]
    result.models[baseline] = task.describe_baseline(options)
    for m in methods:
        result.models[m.name] = f"{m.source}" + (f" ({m.info})" if m.info is not None else "")

    result.metrics = list(PIXEL_METRICS)
    if feature_layers is not None and not (isinstance(feature_layers, (Mapping, Sequence)) and not feature_layers):
        feature = metrics.FeatureDistance(feature_arch, feature_layers, feature_weights).to(metric_device)
        column = feature_metric(feature)
        result.metrics.append(column)
        layers = "+".join(feature.layers)
        result.notes.append(
            f"{column.key}: mean squared difference of {feature_arch} {layers} features "
            f"({', '.join(f'{k} x{v:g}' for k, v in feature.layers.items())}) with weights "
            f"{feature.extractor.weights_id}; compare only with tables computed with the same weights"
        )
        log.info("eval: feature distance on %s %s with weights %s", feature_arch, layers, feature.extractor.weights_id)
    if lpips:
        network, reason = _lpips(lpips_calibration, metric_device)
        result.metrics.append(lpips_metric(network))
        if network is None:
            result.notes.append(f"lpips: {NOT_AVAILABLE}: {reason}")
    result.notes += [f"not read: {path}: {why}" for path, why in unreadable]

    indices = list(range(len(names)))
    for i in progress(indices) if progress is not None else indices:
        try:  # an image the task or a network cannot take (too small, say) is left out, and said, as apply does
            inp, truth = scored_pair(task, dataset[i][None], options)
            outputs = {baseline: task.baseline(inp, scale)}
            for m in methods:
                outputs[m.name] = apply_model(m.model, inp, tile=tile, precision=precision)
            scores = {k: score(task, out, truth, scale=scale, metrics=result.metrics) for k, out in outputs.items()}
        except InputError as err:
            result.notes.append(f"not scored: {names[i]}: {err}")
            continue
        finally:
            release_freed_memory()  # as apply does between images of other sizes (lossnet.memory)
        result.scores.update({(names[i], method): s for method, s in scores.items()})
    result.images = [n for n in names if (n, baseline) in result.scores]
    if names and not result.images:
        why = "; ".join(n for n in result.notes if n.startswith("not scored"))
        raise InputError(f"no image could be scored: {why}")
    return result


def _load_methods(models: ModelArg | Mapping[str, ModelArg], device: str | torch.device) -> list[_Method]:
    if isinstance(models, (str, os.PathLike, nn.Module)):
        models = {_default_name(models, 0): models}
    if not isinstance(models, Mapping):
        raise InputTypeError(
            f"models must be a checkpoint path, a network, or {{name: checkpoint or network}}; got {type(models).__name__}"
        )
    if not models:
        raise InputError("no model to evaluate: pass a checkpoint path or {name: checkpoint}")
    out = []
    for name, model in models.items():
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"model names must be non-empty strings; got {name!r}")
        if isinstance(model, nn.Module):
            if model.training:
                raise InputError(f"the network {name!r} is in training mode; call .eval() first")
            out.append(_Method(name, model, None, type(model).__name__))
        elif isinstance(model, (str, os.PathLike)):
            network, info = load_model_with_info(model, device)  # one read of the file
            out.append(_Method(name, network, info, str(model)))
        else:
            raise InputTypeError(
                f"model {name!r} must be a checkpoint path or an nn.Module; got {type(model).__name__}"
            )
    return out


def method_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Short, distinct names for checkpoints: the run folder for ``model``/``checkpoint`` files, else the stem.

    >>> method_names(["runs/sr_pixel/model.safetensors", "runs/sr_perc/model.safetensors", "x4.safetensors"])
    ['sr_pixel', 'sr_perc', 'x4']
    >>> method_names(["a/model.safetensors", "b/a/model.safetensors"])
    ['a', 'a (2)']
    """
    names: list[str] = []
    for i, path in enumerate(paths):
        base = _default_name(path, i)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base} ({n})"
        names.append(name)
    return names


def _default_name(model: ModelArg, index: int) -> str:
    if isinstance(model, nn.Module):
        return f"{type(model).__name__}" if index == 0 else f"{type(model).__name__} ({index + 1})"
    path = Path(model)
    if path.stem in ("model", "checkpoint") and path.parent.name:
        return path.parent.name
    return path.stem or str(path)


def _common_task(
    methods: list[_Method], task: str | None, legacy: dict[str, Any], given: dict[str, Any]
) -> tuple[Task, Any]:
    """The task the networks share and the options they are evaluated with; each network must fit its task
    (:meth:`Task.check_model`), and a ``scale`` asked for must be theirs."""
    if task is not None:
        check_choice(task, EVAL_TASKS, "task")
    tasks: dict[str, str] = {}
    for m in methods:
        recorded = m.info.task if m.info is not None else None
        if recorded is not None and task is not None and recorded != task:
            raise InputError(f"{m.name} ({m.source}) is a {recorded!r} network but task={task!r} was asked for")
        found = recorded or task or guess_task(m.model)
        if found is None:
            raise InputError(
                f"cannot tell the task of {m.name} ({type(m.model).__name__}, none recorded): pass "
                f"task= one of {list(EVAL_TASKS)} (--task on the command line)"
            )
        tasks[m.name] = found
    if len(set(tasks.values())) > 1:
        listed = ", ".join(f"{name}: {t}" for name, t in tasks.items())
        raise InputError(
            f"networks compared side by side must share the task; got {listed}. Evaluate each task separately."
        )
    (found,) = set(tasks.values())
    if found in TASKS and not TASKS[found].has_truth:
        raise InputError(
            f"eval scores networks against a ground truth ({', '.join(EVAL_TASKS)}); a {found} network has none "
            "(its output is meant to differ from its input). Apply it (`lossnet apply`), look at the images, and "
            "measure one: `lossnet compare OUTPUT CONTENT --style STYLE_IMAGE` prints how far it moved toward the "
            "style's colour and texture and how much of the content's layout it kept."
        )
    if found not in EVAL_TASKS:
        raise InputError(f"unknown task {found!r} recorded in a checkpoint; expected one of {list(EVAL_TASKS)}")
    scales = {m.name: int(getattr(m.model, "scale", 1)) for m in methods}
    if len(set(scales.values())) > 1:
        listed = ", ".join(f"{name}: x{s}" for name, s in scales.items())
        raise InputError(
            f"networks compared side by side must share the scale; got {listed}. Evaluate each scale separately."
        )
    (own,) = set(scales.values())
    found_task = TASKS[found]
    takes = set(found_task.options_dict())
    given = {**{k: v for k, v in legacy.items() if k in takes}, **given}  # a task option it lacks: an error below
    scale = given.get("scale")
    if scale is not None and "scale" in takes:
        check_positive_int(scale, "scale")
        if scale != own:
            what = f"upscale by {own}" if own != 1 else "do not upscale"
            raise InputError(
                f"scale {scale} was asked for, but the networks ({', '.join(scales)}) {what}; "
                f"a network's scale is fixed by its training: leave scale out (or pass {own})"
            )
    for m in methods:
        found_task.check_model(m.model, f"{m.name} ({m.source})")
    # the legacy keywords (scale, jpeg_quality) apply where the task has them; the network decides the scale
    chosen = {**found_task.eval_options, **given}
    return found_task, found_task.make_options({**chosen, **({"scale": own} if "scale" in takes else {})})


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _lpips(
    calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None, device: torch.device
) -> tuple[nn.Module | None, str | None]:
    """The LPIPS-VGG metric, or ``None`` and why it cannot be had here.

    A calibration file that was given but does not exist or is not one is an error (the
    caller asked for it); missing ImageNet VGG16 weights make the metric unavailable.
    """
    if calibration is not None and not isinstance(calibration, Mapping) and not Path(calibration).is_file():
        raise FileNotFoundError(
            f"LPIPS calibration file not found: {calibration}; it is weights/v0.1/vgg.pth of the lpips project"
        )
    try:
        if not isinstance(calibration, Mapping):
            calibration = metrics.load_lpips_calibration(calibration)  # None: the installed lpips wheel's file
    except metrics.LpipsUnavailableError as err:
        return None, (
            f"LPIPS needs the published calibration file and torchvision's ImageNet VGG16: {err} "
            f"Install lpips ({LPIPS.install_hint}) or pass lpips_calibration= (--lpips-calibration PATH)"
        )
    try:
        return metrics.LPIPS(calibration, weights="imagenet").to(device), None
    except metrics.LpipsUnavailableError as err:
        return None, f"LPIPS is calibrated for torchvision's ImageNet VGG16 only: {err}"




__all__ = ["DEFAULT_JPEG_QUALITY", "EVAL_TASKS", "evaluate", "method_names"]
