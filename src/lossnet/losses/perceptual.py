"""``PerceptualLoss``: pixel, feature, style, TV, LPIPS, DISTS, contextual, MRF and focal frequency terms over one shared trunk pass."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from lossnet.backbones.calibration import dists_calibration as load_dists_calibration
from lossnet.backbones.calibration import LPIPS_TRUNKS
from lossnet.backbones.calibration import lpips_calibration as load_lpips_heads
from lossnet.backbones.extractor import FeatureExtractor, check_compute_dtype
from lossnet.backbones.vgg import POOLINGS, check_arch
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import InputError
from lossnet.functional.dists import DISTS_LAYERS
from lossnet.functional.criteria import CRITERIA
from lossnet.functional.reduction import REDUCTIONS
from lossnet.functional.total_variation import TV_KINDS
from lossnet.runtime import Runtime
from lossnet.terms import (
    DistsTerm,
    FeatureTerm,
    GramTerm,
    LayerWeights,
    LpipsTerm,
    PixelTerm,
    Term,
    TermEngine,
    TVTerm,
    check_published,
    layer_weights,
)
from lossnet.terms.families import ContextualTerm, FocalFrequencyTerm, MRFTerm
from lossnet.validation import Range, check_choice, check_image, check_input_range, check_same_shape, check_weight


class PerceptualLoss(nn.Module):
    """The perceptual loss of Johnson et al. 2016 and fastai: pixel + feature + style + TV.

    ``total = pixel_weight * pixel(pred, target)
    + sum_l w_l * feature(phi_l(pred), phi_l(target))
    + sum_l v_l * style(G(phi_l(pred)), G(phi_l(style target)))
    + tv_weight * TV(pred)``

    The VGG runs once on the prediction and once, under ``no_grad``, on the target;
    every term is taken from those two passes. Calling the module returns the total, so
    it drops in where any PyTorch criterion goes; :meth:`terms` returns the breakdown.

    Args:
        arch: loss network, e.g. ``"vgg16"``, ``"vgg19"``, ``"vgg16_bn"``.
        weights: ``"auto"`` (default: ImageNet where it can be had, else HED's VGG16, logged),
            ``"imagenet"``, ``"hed"``, a file path, ``None`` (random), or a
            :class:`~lossnet.backbones.weights.LoadedWeights` already read (to share one read); see
            :mod:`lossnet.backbones.weights`.
        feature_layers: ``{layer: weight}`` for the feature (content) term, or a list of names (weight 1).
        style_layers: ``{layer: weight}`` for the Gram (style) term, or a list of names.
        pixel_weight: weight of the per-pixel term (0 turns it off).
        tv_weight: weight of the total-variation term on the prediction (0 turns it off).
        criterion: ``'mse'``, ``'l1'`` or ``'charbonnier'``, for the pixel, feature and style terms.
        input_range: range of the images: ``(0, 1)``, ``(-1, 1)`` or ``(0, 255)``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (per-sample ``(B,)`` values) over the batch.
        tv_kind: ``'anisotropic'`` (L1) or ``'isotropic'`` (L2).
        contextual_layers: ``{layer: weight}`` of contextual-loss terms (Mechrez et al. 2018): the
            prediction's features matched to the target's as a set, so the target may be misaligned.
            Memory grows with the square of the positions (see :mod:`lossnet.functional.contextual`).
        mrf_layers: ``{layer: weight}`` of MRF patch terms (Li & Wand 2016) against the style image
            (fixed with :meth:`set_style_target`, whose patches are cut once).
        focal_frequency_weight: weight of the focal frequency term (Jiang et al. 2021), on the images.
        lpips_weight: weight of the LPIPS term (Zhang et al. 2018) on ``arch``'s LPIPS layers (``vgg16``,
            ``alexnet`` or ``squeezenet1_1``). It reads the same pass as the feature and Gram terms.
        lpips_calibration: the LPIPS heads: ``None`` (the installed lpips wheel's v0.1 file for
            ``arch``), a file path, or ``{layer: (C_l,)}`` weights.
        dists_weight: weight of the DISTS term (Ding et al. 2020). DISTS runs on the L2-pooled VGG16,
            so it needs ``arch="vgg16"`` and ``pooling="l2"``, and then every other term reads that
            same L2-pooled pass (their features differ from the max-pooled VGG's).
        dists_calibration: DISTS' alpha/beta file, or ``None`` for the installed DISTS_pytorch wheel's.
        pooling: ``"max"`` (the VGG as published) or ``"l2"`` (DISTS' anti-aliased L2 pooling).
        strict: LPIPS and DISTS are the published metrics only on torchvision's ImageNet trunk with
            the published calibration; ``True`` (default) refuses anything else
            (:class:`~lossnet.errors.LpipsUnavailableError`). ``False`` allows it (HED or random
            trunks, other heads), logs a warning, and names the terms ``lpips_like``/``dists_like``.
        preprocessing: ``"torch"`` or ``"caffe"`` to override the guess for a weight file.
        compute_dtype: ``None`` (default): the VGG runs in float32, or under the caller's
            ``torch.autocast``. ``torch.bfloat16`` (or ``torch.float16``): the VGG alone runs under
            autocast for that dtype, whatever the caller does, and the Grams, distances and
            reductions stay float32 (summed from the bf16 features without float32 copies); the pixel
            and TV terms never leave the input's dtype. On a CPU with AVX-512 bf16 this is about 2.3x
            faster than float32 at 256 px, batch 4 (BENCHMARKS.md). The total then
            agrees with float32 within 1%, single terms within 5% (tests/losses/test_fast_path.py).
            The names ``"auto"``, ``"fp32"``, ``"bf16"`` and ``"fp16"`` (or a
            :class:`~lossnet.runtime.Runtime`) work too; ``"auto"`` picks bf16 only on a device that
            runs it natively (:mod:`lossnet.runtime`), and fp32 elsewhere, with today's numbers.

    ``torch.compile(loss, fullgraph=True)`` traces the whole call as one graph, forward and
    backward (``tests/losses/test_compile.py``). Inside compiled code the inputs' values (NaN/inf,
    range) are not checked, only their type, shape and size (see :func:`lossnet.validation.check_image`).

    Shape:
        ``pred``: ``(B, C, H, W)``, C in {1, 3}, values in ``input_range``;
        ``target``: the same shape, or batch 1 (broadcast). Output: scalar, or ``(B,)`` for ``'none'``.

    Example:
        >>> loss = PerceptualLoss("vgg11", weights=None, feature_layers={"relu2_1": 1.0}, pixel_weight=0.5)
        >>> pred, target = torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(2, 3, 32, 32)
        >>> sorted(loss.terms(pred, target))
        ['feature.relu2_1', 'pixel', 'total']
        >>> loss(pred, target).backward()
        >>> fast = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], compute_dtype=torch.bfloat16)
        >>> fast(pred, target).dtype
        torch.float32
    """

    def __init__(
        self,
        arch: str = "vgg16",
        weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
        feature_layers: LayerWeights = None,
        style_layers: LayerWeights = None,
        pixel_weight: float = 0.0,
        tv_weight: float = 0.0,
        criterion: str = "mse",
        input_range: Range = (0.0, 1.0),
        reduction: str = "mean",
        tv_kind: str = "anisotropic",
        preprocessing: str | None = None,
        compute_dtype: torch.dtype | str | Runtime | None = None,
        contextual_layers: LayerWeights = None,
        mrf_layers: LayerWeights = None,
        focal_frequency_weight: float = 0.0,
        lpips_weight: float = 0.0,
        lpips_calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
        dists_weight: float = 0.0,
        dists_calibration: str | os.PathLike[str] | None = None,
        pooling: str = "max",
        strict: bool = True,
    ) -> None:
        super().__init__()
        check_arch(arch)
        self.feature_layers = layer_weights(feature_layers, "feature", arch)
        self.style_layers = layer_weights(style_layers, "style", arch)
        self.contextual_layers = layer_weights(contextual_layers, "contextual", arch)
        self.mrf_layers = layer_weights(mrf_layers, "mrf", arch)
        self.focal_frequency_weight = check_weight(focal_frequency_weight, "focal_frequency_weight")
        self.lpips_weight = check_weight(lpips_weight, "lpips_weight")
        self.dists_weight = check_weight(dists_weight, "dists_weight")
        self.pooling = check_choice(pooling, POOLINGS, "pooling")
        if self.dists_weight and (arch != "vgg16" or self.pooling != "l2"):
            raise InputError(
                f"the DISTS term runs on the L2-pooled VGG16; got arch={arch!r}, pooling={self.pooling!r}. Pass "
                "arch='vgg16', pooling='l2' (the other terms then read that pass too), or use lossnet.losses.DISTSLoss alone"
            )
        lpips_cal = load_lpips_heads(arch, lpips_calibration) if self.lpips_weight else None
        self.pixel_weight = check_weight(pixel_weight, "pixel_weight")
        self.tv_weight = check_weight(tv_weight, "tv_weight")
        self.criterion = check_choice(criterion, CRITERIA, "criterion")
        self.reduction = check_choice(reduction, REDUCTIONS, "reduction")
        self.tv_kind = check_choice(tv_kind, TV_KINDS, "tv_kind")
        self.input_range = check_input_range(input_range)
        deep = {**self.feature_layers, **self.style_layers, **self.contextual_layers, **self.mrf_layers}
        deep |= dict.fromkeys(calibrated_layers(arch, self.lpips_weight, self.dists_weight), 0.0)
        if not (deep or self.pixel_weight or self.tv_weight or self.focal_frequency_weight):
            raise InputError(
                "PerceptualLoss has no term: give feature_layers, style_layers, pixel_weight or tv_weight "
                "(or contextual_layers, mrf_layers, focal_frequency_weight, lpips_weight, dists_weight)"
            )
        self.compute_dtype = check_compute_dtype(compute_dtype)
        self.extractor = (
            FeatureExtractor(arch, deep, weights, self.input_range, preprocessing, self.compute_dtype, self.pooling)
            if deep
            else None
        )
        terms: list[Term] = [PixelTerm(self.pixel_weight, self.criterion)] if self.pixel_weight else []
        terms += [FeatureTerm(name, w, self.criterion) for name, w in self.feature_layers.items()]
        terms += [GramTerm(name, w, self.criterion) for name, w in self.style_layers.items()]
        terms += [ContextualTerm(name, w) for name, w in self.contextual_layers.items()]
        terms += [MRFTerm(name, w) for name, w in self.mrf_layers.items()]
        terms += [TVTerm(self.tv_weight, self.tv_kind)] if self.tv_weight else []
        terms += [FocalFrequencyTerm(self.focal_frequency_weight)] if self.focal_frequency_weight else []
        if lpips_cal is not None:
            published = check_published("lpips", self.extractor, lpips_cal.published, strict)  # type: ignore[arg-type]
            terms.append(LpipsTerm(lpips_cal.heads, self.lpips_weight, published=published))
        if self.dists_weight:
            dists = load_dists_calibration(dists_calibration)
            published = check_published("dists", self.extractor, dists.published, strict)  # type: ignore[arg-type]
            terms.append(DistsTerm(dists.alpha, dists.beta, self.input_range, self.dists_weight, published=published))
        self.engine = TermEngine(terms)

    # -- fixed style target -------------------------------------------------------------
    def set_style_target(self, image: torch.Tensor) -> None:
        """Fix the style image: its Gram matrices (and MRF patches) are computed once and kept as buffers.

        Later calls compare every prediction's Grams with these (broadcast over the batch),
        and the target passed to :meth:`terms` is used only for the pixel and feature terms.

        Args:
            image: ``(1, C, H, W)`` (or ``(B, C, H, W)`` matching the batch) in ``input_range``;
                its size may differ from the predictions'.
        """
        if not (self.style_layers or self.mrf_layers) or self.extractor is None:
            raise InputError("set_style_target needs style_layers or mrf_layers; this loss has none")
        image = self.extractor.check(image, "style target")
        self.engine.fix_target(self.extractor, image, _style_term)

    def clear_style_target(self) -> None:
        """Forget the fixed style image; style is then taken from each call's target."""
        self.engine.clear_fixed_target(_style_term)

    def style_gram(self, layer: str) -> torch.Tensor | None:
        """The fixed style image's Gram matrix ``(1, C, C)`` at ``layer``, or ``None`` when none is set."""
        fixed = self.engine.term(f"style.{layer}").fixed
        return None if fixed is None else fixed["gram"]

    # -- evaluation ------------------------------------------------------------------------
    def forward(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Return the weighted total (scalar, or ``(B,)`` for ``reduction='none'``)."""
        return self.terms(pred, target)["total"]

    def terms(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every term, weighted, from one pass over the prediction and one over the target.

        Returns:
            ``{"pixel", "feature.<layer>", ..., "style.<layer>", ..., "tv", "total"}`` with only the
            active terms; each value already multiplied by its weight, and ``total`` their sum.
            :func:`term_shares` turns them into each term's share of the total: with HED or
            ImageNet features the feature and style terms are orders of magnitude above a pixel
            MSE, so a pixel weight of 1 can contribute well under 1% (see the presets' notes).
        """
        pred = self._check(pred, "prediction")
        if target is None:
            if self.engine.needs_target:
                raise InputError(
                    "this loss needs a target image (pixel, feature or uncached style terms); "
                    "call loss(pred, target), or set_style_target(style) for a style-and-TV-only loss"
                )
        else:
            target = self._check(target, "target")
            check_same_shape(pred, target)
        return self.engine(self.extractor, pred, target, self.reduction)

    def _check(self, x: torch.Tensor, name: str) -> torch.Tensor:
        # The extractor's check adds size and device checks to the image check.
        return self.extractor.check(x, name) if self.extractor else check_image(x, name, self.input_range)

    def extra_repr(self) -> str:
        return (
            f"feature_layers={self.feature_layers}, style_layers={self.style_layers}, pixel_weight={self.pixel_weight}, "
            f"tv_weight={self.tv_weight}, criterion={self.criterion!r}, reduction={self.reduction!r}"
        )


def calibrated_layers(arch: str, lpips_weight: float = 0.0, dists_weight: float = 0.0) -> list[str]:
    """The trunk layers the LPIPS and DISTS terms read (none for a weight of 0).

    >>> calibrated_layers("vgg16", lpips_weight=1.0)
    ['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3']
    """
    lpips = list(LPIPS_TRUNKS.get(arch, ("", ()))[1]) if lpips_weight else []
    return lpips + [name for name in (DISTS_LAYERS if dists_weight else ()) if name not in lpips]


def term_shares(terms: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """Each weighted term's share of the total, as a fraction in ``[0, 1]`` (batch-averaged).

    Args:
        terms: the output of :meth:`PerceptualLoss.terms` (``"total"`` may be present; it is
            left out). Values may be scalars, ``(B,)`` tensors (``reduction='none'``) or floats.

    Returns:
        ``{term: share}`` summing to 1, in the order of ``terms``; all 0 when the total is 0.

    Example:
        >>> shares = term_shares({"pixel": torch.tensor(0.01), "feature.relu2_2": torch.tensor(99.99)})
        >>> {k: round(v, 6) for k, v in shares.items()}
        {'pixel': 0.0001, 'feature.relu2_2': 0.9999}
    """
    values = {k: float(torch.as_tensor(v, dtype=torch.float64).mean()) for k, v in terms.items() if k != "total"}
    total = sum(values.values())
    return {k: (v / total if total else 0.0) for k, v in values.items()}


def _style_term(term: Term) -> bool:
    """The terms a fixed style image feeds: Gram and MRF."""
    return isinstance(term, (GramTerm, MRFTerm))
