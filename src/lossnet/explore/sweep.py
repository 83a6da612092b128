"""Weight sweeps: the same content and style under several style/content ratios, layer sets or trained models.

Every cell is scored with one evaluation loss, the base configuration's layers with
content and style weight 1, so the numbers can be compared across the grid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.vgg import check_layers
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import InputError
from lossnet.explore.objective import ImageObjective
from lossnet.explore.optimize import resize
from lossnet.viz import Cell, contact_sheet
from lossnet.explore.stylize import StylizeConfig, build_extractor, stylize
from lossnet.terms.registry import is_style_key
from lossnet.inference import apply_model, load_model_with_info

#: The default style/content weight ratios, in decades around the default (10).
DEFAULT_RATIOS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)


@dataclass
class SweepCell:
    """One result of a sweep: the image, what produced it, and its evaluation losses.

    Attributes:
        image: ``(1, 3, H, W)`` in [0, 1].
        label: what produced it (ratio and layer set, or the model file).
        content_loss: the sum of the feature terms (layer weights only) against the content image.
        style_loss: the sum of the style terms of the base configuration's ``style_family`` (layer weights
            only) against the style image.
    """

    image: torch.Tensor
    label: str
    content_loss: float
    style_loss: float


@dataclass
class SweepResult:
    """A grid of :class:`SweepCell` rows, with the inputs."""

    content: torch.Tensor
    style: torch.Tensor
    rows: list[list[SweepCell]] = field(default_factory=list)
    title: str = ""


def _evaluate(
    fx: FeatureExtractor, config: StylizeConfig, content: torch.Tensor, style: torch.Tensor
) -> ImageObjective:
    """The scoring loss: the content layers and the style family's layers of ``config``, each weighted 1."""
    s = resize(style, _fit(style, round(config.style_scale * max(content.shape[-2:]))))
    style_terms = [] if config.style_family == "gram" else config.extra_terms(fx, style_weight=1.0)
    style_terms = [t for t in style_terms if is_style_key(t.key)]
    return ImageObjective(fx, content, config.content_layers, s, config.gram_layers(1.0), terms=style_terms)


def _scores(objective: ImageObjective, image: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        terms = objective(image)
    content = sum(float(v) for k, v in terms.items() if k.startswith("feature."))
    style = sum(float(v) for k, v in terms.items() if is_style_key(k))
    return content, style


def _fit(x: torch.Tensor, side: int) -> tuple[int, int]:
    h, w = x.shape[-2:]
    s = max(1, side) / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def sweep(
    content: torch.Tensor,
    style: torch.Tensor,
    weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
    config: StylizeConfig | None = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    style_layer_sets: Sequence[Sequence[str]] | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    extractor: FeatureExtractor | None = None,
) -> SweepResult:
    """Stylise by optimisation over a grid: rows are style layer sets, columns style/content weight ratios.

    Each cell runs :func:`~lossnet.explore.stylize.stylize` with ``style_weight = ratio * content_weight``
    (and, per row, the style layers of the set, each weighted 1), from the same start and seed. A config in
    shares (:attr:`StylizeConfig.shares`) has its style share multiplied by the ratio instead, and each cell
    calibrated on the inputs.

    Args:
        content: ``(1, 3, H, W)`` in [0, 1].
        style: ``(1, 3, H', W')`` in [0, 1].
        weights: the loss network's weights; the default ``"auto"`` loads ImageNet's where they can be
            had, else HED's VGG16, and logs which.
        config: the base settings (layers, content weight, steps, ...).
        ratios: style/content weight ratios, one column each.
        style_layer_sets: one row each; ``None`` is one row with ``config.style_layers``.
        callback: called after every optimisation step of every cell.
        extractor: a loss network already built with every layer needed; ``weights`` is then ignored.

    Example:
        >>> from lossnet.explore.optimize import OptimizeConfig
        >>> config = StylizeConfig(arch="vgg11", content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0},
        ...                        optimize=OptimizeConfig(steps=2))
        >>> result = sweep(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), None, config, ratios=(1, 10))
        >>> [c.label for c in result.rows[0]]
        ['style/content 1', 'style/content 10']
    """
    config = config or StylizeConfig()
    if not ratios:
        raise InputError("ratios is empty; give at least one style/content weight ratio, e.g. (1, 10, 100)")
    sets = [list(config.style_layers)] if style_layer_sets is None else [list(s) for s in style_layer_sets]
    layers = list(dict.fromkeys([*config.layers, *(name for s in sets for name in s)]))
    fx = extractor if extractor is not None and set(layers) <= set(extractor.layers) else None
    fx = fx or build_extractor(config.arch, layers, weights)
    content, style = content.to(fx.preprocess.weight.device), style.to(fx.preprocess.weight.device)
    evaluation = _evaluate(fx, config, content, style)
    result = SweepResult(content, style, title=f"style/content weight sweep; weights {fx.weights_id}")
    for names in sets:
        row_layers = {name: 1.0 for name in check_layers(config.arch, names)}
        row = []
        for ratio in ratios:
            if config.shares:  # in shares, the ratio multiplies the style family's share (each cell is calibrated)
                family = config.family.name
                shares = {**config.shares, family: float(ratio) * config.shares.get(family, 0.0)}
                cell_config = replace(config, style_layers=row_layers, shares=shares)
            else:
                style_weight = float(ratio) * config.content_weight
                cell_config = replace(config, style_layers=row_layers, style_weight=style_weight)
            out = stylize(content, style, config=cell_config, callback=callback, extractor=fx)
            c, s = _scores(evaluation, out.image)
            kind = "style share x" if config.shares else "style/content "
            label = f"{kind}{ratio:g}" + ("" if style_layer_sets is None else f"\n{_span(row_layers)}")
            row.append(SweepCell(out.image, label, c, s))
        result.rows.append(row)
    return result


def sweep_models(
    content: torch.Tensor,
    style: torch.Tensor,
    checkpoints: Sequence[str | os.PathLike[str]],
    weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
    config: StylizeConfig | None = None,
    device: str | torch.device = "cpu",
) -> SweepResult:
    """Apply trained feed-forward models (lossnet checkpoints) to the content image, one cell each.

    Each checkpoint is loaded with :func:`~lossnet.inference.load_model` and run on the whole
    image with :func:`~lossnet.inference.apply_model` (padded to the sizes the network takes
    and cropped back), as ``lossnet apply --tile 0 --precision fp32`` would.

    Raises:
        FileNotFoundError: a checkpoint is missing.
        CheckpointError: a checkpoint does not name its network, or its weights do not fit it.
        InputError: a checkpoint holds a super-resolution network (the sweep compares same-size networks).
    """
    config = config or StylizeConfig()
    if not checkpoints:
        raise InputError("no checkpoints given; pass one or more lossnet .safetensors checkpoints")
    fx = build_extractor(config.arch, config.layers, weights, device)
    content, style = content.to(device), style.to(device)
    evaluation = _evaluate(fx, config, content, style)
    result = SweepResult(content, style, title=f"trained models; scored with weights {fx.weights_id}")
    row = []
    for path in checkpoints:
        model, info = load_model_with_info(path, device)
        if info.scale != 1:
            raise InputError(
                f"{path} holds a x{info.scale} super-resolution network ({info}); the sweep compares "
                "same-size image-to-image networks (style transfer), not super-resolution ones"
            )
        image = apply_model(model, content, tile=None, precision="fp32")
        c, s = _scores(evaluation, image)
        label = Path(path).stem + (f"\nstep {info.step}" if info.step is not None else "")
        row.append(SweepCell(image, label, c, s))
    result.rows.append(row)
    return result


def _span(layers: dict[str, float]) -> str:
    names = list(layers)
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


def sweep_sheet(result: SweepResult, cell_size: int = 160) -> Image.Image:
    """The grid as a labelled contact sheet; the first row shows the content and style images."""
    rows = [[Cell(result.content, "content"), Cell(result.style, "style")]]
    for row in result.rows:
        rows.append([Cell(c.image, f"{c.label}\ncontent {c.content_loss:.3g}\nstyle {c.style_loss:.3g}") for c in row])
    return contact_sheet(rows, cell_size=cell_size, title=result.title)
