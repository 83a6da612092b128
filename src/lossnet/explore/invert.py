"""What a layer keeps: images reconstructed from one layer's features or from Gram matrices alone.

Feature reconstruction (Mahendran & Vedaldi 2015; Johnson et al. 2016, Fig. 3) optimises
noise until its activations at one layer match the source image's: from low layers the
source comes back almost exactly; from high layers the spatial structure survives but colour
and texture do not. Style reconstruction matches Gram matrices instead, over growing sets of
layers (Gatys et al. 2016): texture survives, spatial structure does not.

Each term is divided by the mean square of its target (``mean(phi(x0)^2)`` or
``mean(G(x0)^2)``), as Mahendran & Vedaldi normalise, so one TV weight suits every layer
and every weight set; the reported losses are the plain MSEs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.vgg import check_layers
from lossnet.backbones.weights import LoadedWeights
from lossnet.explore.objective import ImageObjective
from lossnet.explore.optimize import Callback, OptimizeConfig, optimize_image, resize, start_image
from lossnet.explore.stylize import build_extractor
from lossnet.viz import Cell, contact_sheet
from lossnet.functional.criteria import distance
from lossnet.functional.gram import gram_matrix
from lossnet.metrics import psnr
from lossnet.validation import check_image, check_weight

#: The layers of Johnson et al. 2016, Fig. 3 (VGG16).
DEFAULT_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclass
class InvertConfig:
    """Settings of :func:`invert`."""

    arch: str = "vgg16"
    layers: tuple[str, ...] = DEFAULT_LAYERS  # one feature reconstruction each, and the growing Gram sets
    style: bool = True  # also reconstruct from the Gram matrices of layers[:1], layers[:2], ...
    tv_weight: float = 0.01  # relative to the normalised terms (each starts near 1)
    seed: int = 0  # seed of the noise every reconstruction starts from
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(steps=300, levels=3))

    def __post_init__(self) -> None:
        self.layers = tuple(check_layers(self.arch, self.layers))
        check_weight(self.tv_weight, "tv_weight")

    @property
    def optimisations(self) -> int:
        """How many reconstructions :func:`invert` runs: one per layer, and one per growing Gram set.

        >>> InvertConfig(layers=("relu1_2", "relu2_2")).optimisations
        4
        """
        return len(self.layers) * (2 if self.style else 1)

    @property
    def total_steps(self) -> int:
        """The optimiser steps :func:`invert` runs in all (its ``callback`` is called this often)."""
        return self.optimisations * self.optimize.steps


@dataclass
class Reconstruction:
    """One reconstruction.

    Attributes:
        kind: ``'feature'`` or ``'style'``.
        layers: the layers whose features (or Grams) were matched.
        image: ``(1, 3, H, W)`` in [0, 1].
        loss_start: the plain MSE (summed over ``layers``) of the noise start.
        loss_end: the same for ``image``.
        psnr: PSNR of ``image`` against the source, in dB.
        curve: the normalised objective's ``total`` per step.
    """

    kind: str
    layers: tuple[str, ...]
    image: torch.Tensor
    loss_start: float
    loss_end: float
    psnr: float
    curve: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        names = self.layers[0] if len(self.layers) == 1 else f"{self.layers[0]}..{self.layers[-1]}"
        return f"{self.kind} {names}"


@dataclass
class InversionResult:
    """Every reconstruction of one source image.

    Attributes:
        source: ``(1, 3, H, W)`` in [0, 1].
        start: the noise every reconstruction started from.
        start_psnr: PSNR of ``start`` against ``source``, in dB.
        feature: one :class:`Reconstruction` per layer.
        style: one per growing layer set (empty if ``config.style`` is off).
        weights: the id of the loss network's weights.
    """

    source: torch.Tensor
    start: torch.Tensor
    start_psnr: float
    feature: list[Reconstruction]
    style: list[Reconstruction]
    weights: str


def plain_loss(
    extractor: FeatureExtractor, x: torch.Tensor, source: torch.Tensor, kind: str, layers: Sequence[str]
) -> float:
    """The unweighted MSE summed over ``layers``: features for ``'feature'``, Gram matrices for ``'style'``."""
    with torch.no_grad():
        fx, fs = extractor(x, validate=False), extractor(source, validate=False)
        if kind == "feature":
            return float(sum(distance(fx[n], fs[n]) for n in layers))
        return float(sum(distance(gram_matrix(fx[n]), gram_matrix(fs[n])) for n in layers))


def reconstruct(
    extractor: FeatureExtractor,
    source: torch.Tensor,
    kind: str,
    layers: Sequence[str],
    config: InvertConfig | None = None,
    callback: Callback | None = None,
) -> Reconstruction:
    """Reconstruct ``source`` ``(1, 3, H, W)`` in [0, 1] from its features (``'feature'``) or Grams (``'style'``).

    The start is seeded uniform noise (``config.seed``); see the module docstring for the objective.
    """
    config = config or InvertConfig(arch=extractor.arch)
    layers = tuple(layers)

    def make_objective(size: tuple[int, int]) -> ImageObjective:
        target = resize(source, size)
        with torch.no_grad():
            feats = extractor(target, validate=False)
        norms = {n: float((feats[n] if kind == "feature" else gram_matrix(feats[n])).square().mean()) for n in layers}
        w = {n: 1.0 / (len(layers) * max(norms[n], 1e-12)) for n in layers}
        if kind == "feature":
            return ImageObjective(extractor, target, w, tv_weight=config.tv_weight)
        return ImageObjective(extractor, style=target, style_layers=w, tv_weight=config.tv_weight)

    init = start_image("noise", source, config.seed)
    result = optimize_image(make_objective, init, config.optimize, callback, min_size=extractor.min_size)
    return Reconstruction(
        kind=kind,
        layers=layers,
        image=result.image,
        loss_start=plain_loss(extractor, init, source, kind, layers),
        loss_end=plain_loss(extractor, result.image, source, kind, layers),
        psnr=float(psnr(result.image, source)),
        curve=[h["total"] for h in result.history],
    )


def invert(
    image: torch.Tensor,
    weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
    config: InvertConfig | None = None,
    callback: Callback | None = None,
    extractor: FeatureExtractor | None = None,
) -> InversionResult:
    """Reconstruct an image from each layer's features and from the Grams of growing layer sets.

    Args:
        image: the source ``(1, 3, H, W)`` in [0, 1], at least as large as the deepest layer needs.
        weights: the loss network's weights (anything :class:`~lossnet.FeatureExtractor` takes); ``auto``:
            ImageNet where it can be had, else HED.
        config: layers, TV weight, seed and the optimisation (300 L-BFGS steps over 3 levels).
        callback: called after every step of every reconstruction as ``callback(step, terms)``.
        extractor: a loss network already built with at least ``config.layers``; ``weights`` is then ignored.

    Returns:
        An :class:`InversionResult`; :func:`inversion_sheet` draws it.

    Example:
        >>> config = InvertConfig(arch="vgg11", layers=("relu1_1", "relu2_1"), optimize=OptimizeConfig(steps=2))
        >>> result = invert(torch.rand(1, 3, 16, 16), weights=None, config=config)
        >>> [r.label for r in result.feature + result.style]
        ['feature relu1_1', 'feature relu2_1', 'style relu1_1', 'style relu1_1..relu2_1']
    """
    config = config or InvertConfig()
    check_image(image, "image", (0.0, 1.0))
    fx = extractor or build_extractor(config.arch, list(config.layers), weights)
    image = fx.check(image.to(fx.preprocess.weight.device), "image")
    start = start_image("noise", image, config.seed)
    feature = [reconstruct(fx, image, "feature", (n,), config, callback) for n in config.layers]
    style = (
        [reconstruct(fx, image, "style", config.layers[: k + 1], config, callback) for k in range(len(config.layers))]
        if config.style
        else []
    )
    return InversionResult(image, start, float(psnr(start, image)), feature, style, fx.weights_id)


def inversion_sheet(result: InversionResult, cell_size: int = 160) -> Image.Image:
    """A labelled contact sheet: the source and its feature reconstructions, the noise start and its style ones."""
    rows = [[Cell(result.source, "source")] + [Cell(r.image, f"{r.label}\n{r.psnr:.1f} dB") for r in result.feature]]
    if result.style:
        rows.append(
            [Cell(result.start, f"noise start\n{result.start_psnr:.1f} dB")]
            + [Cell(r.image, r.label) for r in result.style]
        )
    title = f"Reconstructions from features (top) and Gram matrices (bottom); weights {result.weights}"
    return contact_sheet(rows, cell_size=cell_size, title=title)
