"""``PerceptualLoss``: every term family of :data:`lossnet.terms.registry.FAMILIES` over one shared trunk pass."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lossnet.backbones.extractor import FeatureExtractor, check_compute_dtype
from lossnet.backbones.vgg import POOLINGS, check_arch
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import InputError
from lossnet.functional.reduction import REDUCTIONS
from lossnet.runtime import Runtime
from lossnet.terms import Term, TermEngine
from lossnet.terms.shares import DEFAULT_RULE, Balance, apply_weights, balance_engine, family_shares, measure_terms
from lossnet.terms.registry import (
    FAMILIES,
    OPTIONS,
    build_terms,
    check_options,
    family_of,
    is_style_key,
    split_keywords,
    style_families,
    term_keywords,
    term_layers,
)
from lossnet.validation import Range, check_choice, check_image, check_input_range, check_same_shape, suggest


#: The keywords the "no term" message names first.
_JOHNSON = ("feature_layers", "style_layers", "pixel_weight", "tv_weight")


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
        terms: ``{family: value}`` (``{"feature": {"relu2_2": 1.0}, "pixel": 1.0}``), the families of
            :data:`lossnet.terms.registry.FAMILIES` by name; the same as their keywords below.
        **keywords: each family's keyword and options, generated from the table of families
            (:func:`lossnet.terms.registry.term_keywords`):

            - ``feature_layers``: ``{layer: weight}`` for the feature (content) term, or a list of names (weight 1).
            - ``style_layers``: ``{layer: weight}`` for the Gram (style) term, or a list of names.
            - ``pixel_weight``: weight of the per-pixel term (0 turns it off).
            - ``tv_weight``: weight of the total-variation term on the prediction (0 turns it off);
              ``tv_kind``: ``'anisotropic'`` (L1) or ``'isotropic'`` (L2).
            - ``criterion``: ``'mse'``, ``'l1'`` or ``'charbonnier'``, for the pixel, feature and style terms.
            - ``contextual_layers``: ``{layer: weight}`` of contextual-loss terms (Mechrez et al. 2018): the
              prediction's features matched to the target's as a set, so the target may be misaligned.
              Memory grows with the square of the positions (see :mod:`lossnet.functional.contextual`);
              ``contextual_band_width``, ``contextual_max_positions``.
            - ``mrf_layers``: ``{layer: weight}`` of MRF patch terms (Li & Wand 2016) against the style image
              (fixed with :meth:`set_style_target`, whose patches are cut once); ``mrf_patch_size``.
            - ``focal_frequency_weight``: weight of the focal frequency term (Jiang et al. 2021), on the images.
            - ``lpips_weight``: weight of the LPIPS term (Zhang et al. 2018) on ``arch``'s LPIPS layers (``vgg16``,
              ``alexnet`` or ``squeezenet1_1``). It reads the same pass as the feature and Gram terms.
              ``lpips_calibration``: the heads: ``None`` (the installed lpips wheel's v0.1 file for
              ``arch``), a file path, or ``{layer: (C_l,)}`` weights.
            - ``dists_weight``: weight of the DISTS term (Ding et al. 2020). DISTS runs on the L2-pooled VGG16,
              so it needs ``arch="vgg16"`` and ``pooling="l2"``, and then every other term reads that
              same L2-pooled pass (their features differ from the max-pooled VGG's).
              ``dists_calibration``: DISTS' alpha/beta file, or ``None`` for the installed DISTS_pytorch wheel's.
            - the later families' keywords, listed in the README's table of terms.
        input_range: range of the images: ``(0, 1)``, ``(-1, 1)`` or ``(0, 255)``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (per-sample ``(B,)`` values) over the batch.
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
        >>> PerceptualLoss("vgg11", weights=None, terms={"feature": ["relu2_1"], "pixel": 0.5}).pixel_weight
        0.5
        >>> fast = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], compute_dtype=torch.bfloat16)
        >>> fast(pred, target).dtype
        torch.float32
    """

    def __init__(
        self,
        arch: str = "vgg16",
        weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
        *,
        terms: Mapping[str, Any] | None = None,
        input_range: Range = (0.0, 1.0),
        reduction: str = "mean",
        preprocessing: str | None = None,
        compute_dtype: torch.dtype | str | Runtime | None = None,
        pooling: str = "max",
        strict: bool = True,
        **keywords: Any,
    ) -> None:
        super().__init__()
        check_arch(arch)
        values, options = split_keywords(keywords)
        for name, value in (terms or {}).items():
            family = FAMILIES.get(name)
            if family is None:
                raise InputError(
                    f"terms has no family {name!r}.{suggest(name, FAMILIES)} The families are {list(FAMILIES)}"
                )
            if name in values:
                raise InputError(
                    f"the {name} terms are given twice: in terms= and as {family.keyword}=; give them once"
                )
            values[name] = value
        self.pooling = check_choice(pooling, POOLINGS, "pooling")
        self.options = check_options(options)
        self.values = {name: family.value(values.get(name), arch) for name, family in FAMILIES.items()}
        for name, family in FAMILIES.items():  # loss.feature_layers, loss.tv_weight, loss.criterion, ...
            setattr(self, family.keyword, self.values[name])
            if self.values[name] and family.check is not None:
                family.check(arch, self.pooling)
        for name, value in self.options.items():
            setattr(self, name, value)
        self.reduction = check_choice(reduction, REDUCTIONS, "reduction")
        self.input_range = check_input_range(input_range)
        deep = term_layers(arch, self.values)
        if not any(self.values.values()):
            raise InputError(
                "PerceptualLoss has no term: give feature_layers, style_layers, pixel_weight or tv_weight "
                f"(or {', '.join(k for k in (f.keyword for f in FAMILIES.values()) if k not in _JOHNSON)})"
            )
        self.compute_dtype = check_compute_dtype(compute_dtype)
        self.extractor = (
            FeatureExtractor(arch, deep, weights, self.input_range, preprocessing, self.compute_dtype, self.pooling)
            if deep
            else None
        )
        self.arch = arch
        self.engine = TermEngine(build_terms(self.values, self.options, arch, self.extractor, self.input_range, strict))

    # -- fixed style target -------------------------------------------------------------
    def set_style_target(self, image: torch.Tensor) -> None:
        """Fix the style image: its Gram matrices (and MRF patches) are computed once and kept as buffers.

        Later calls compare every prediction's Grams with these (broadcast over the batch),
        and the target passed to :meth:`terms` is used only for the pixel and feature terms.

        Args:
            image: ``(1, C, H, W)`` (or ``(B, C, H, W)`` matching the batch) in ``input_range``;
                its size may differ from the predictions'.
        """
        self.set_style_targets([image])

    def set_style_targets(self, images: Sequence[torch.Tensor]) -> None:
        """Fix several style images, one per style of a multi-style network (each any size).

        :meth:`terms` then compares item ``i`` with style ``target_index[i]``; without a
        ``target_index`` every item is compared with the first. One image is :meth:`set_style_target`.

        Args:
            images: ``(1, C, H, W)`` each, in ``input_range``.
        """
        if not any(self.values[name] for name in style_families()):
            names = " or ".join(FAMILIES[name].keyword for name in style_families())
            raise InputError(f"set_style_target needs {names}; this loss has none")
        if isinstance(images, torch.Tensor) or not images:
            raise InputError("set_style_targets takes a list of style images, (1, C, H, W) each; got none or a tensor")
        checked = [self._check(image, f"style target {k}") for k, image in enumerate(images)]
        self.engine.fix_targets(self.extractor, checked, _style_term)

    def clear_style_target(self) -> None:
        """Forget the fixed style image; style is then taken from each call's target."""
        self.engine.clear_fixed_target(_style_term)

    def style_gram(self, layer: str) -> torch.Tensor | None:
        """The fixed style image's Gram matrix ``(1, C, C)`` at ``layer``, or ``None`` when none is set."""
        fixed = self.engine.term(f"style.{layer}").fixed
        return None if fixed is None else fixed["gram"]

    # -- evaluation ------------------------------------------------------------------------
    def forward(
        self, pred: torch.Tensor, target: torch.Tensor | None = None, target_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return the weighted total (scalar, or ``(B,)`` for ``reduction='none'``)."""
        return self.terms(pred, target, target_index)["total"]

    def terms(
        self, pred: torch.Tensor, target: torch.Tensor | None = None, target_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Every term, weighted, from one pass over the prediction and one over the target.

        ``target_index``, int64 ``(B,)``, picks each item's style among :meth:`set_style_targets`'
        images (``None``: the first, for every item).

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
        if target_index is not None:
            target_index = _check_index(target_index, pred.shape[0], self.engine.bank_size)
        return self.engine(self.extractor, pred, target, self.reduction, target_index=target_index)

    # -- shares ----------------------------------------------------------------------------------
    def calibrate(
        self,
        pred: torch.Tensor,
        target: torch.Tensor | None = None,
        shares: Mapping[str, float] | None = None,
        rule: str = DEFAULT_RULE,
    ) -> Balance:
        """Set the weights so that each family has its share of the loss at ``(pred, target)``.

        Within a family the layers keep the ratios of their weights; the weighted total at ``pred`` stays
        what it was (see :mod:`lossnet.terms.shares`). Costs one forward pass and one backward pass per term.

        Args:
            pred: the prediction ``(B, C, H, W)`` to calibrate at (a network's first output, say); it
                must differ from the target at every family's layers.
            target: as for :meth:`terms`.
            shares: ``{family: share}`` for every family the loss has (:data:`lossnet.terms.registry.FAMILIES`
                names), in any positive scale; 0 turns a family off.
            rule: ``"gradient"`` (default: the norm of each family's gradient at ``pred``) or ``"value"``.

        Returns:
            The :class:`~lossnet.terms.shares.Balance`: the shares, the resolved weights (``.keywords`` as
            this class's keywords) and the shares measured with them.

        Example:
            >>> loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], pixel_weight=1.0)
            >>> pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
            >>> balance = loss.calibrate(pred, target, {"feature": 0.8, "pixel": 0.2})
            >>> {k: round(v, 3) for k, v in loss.shares(pred, target)["gradient"].items()}
            {'pixel': 0.2, 'feature.relu2_1': 0.8}
        """
        pred, target = self._inputs(pred, target)
        balance = balance_engine(self.engine, self.extractor, pred, target, shares or {}, rule, "given images")
        self.reweight(balance.weights)
        return balance

    def reweight(self, weights: Mapping[str, float]) -> None:
        """Set term weights from ``{term key: weight}`` (``{"feature.relu2_2": 0.5, "tv": 1e-6}``)."""
        apply_weights(self.engine, weights)
        for name, family in FAMILIES.items():
            terms = [t for t in self.engine if t.key.split(".")[0].removesuffix("_like") == name]
            if terms:
                value = {t.key.split(".", 1)[1]: t.weight for t in terms} if family.layered else terms[0].weight
                self.values[name] = value
                setattr(self, family.keyword, value)

    def shares(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, dict[str, float]]:
        """Each weighted term's share of the total value, and of the gradient with respect to ``pred``.

        The gradient share of a term is ``||d (w * term) / d pred||`` as a fraction of the sum over the
        terms: a term that moves nothing has 0 however large its value. One forward pass and one
        backward pass per term.

        Returns:
            ``{"value": {key: share}, "gradient": {key: share}}``, each summing to 1.
        """
        pred, target = self._inputs(pred, target)
        measurement = measure_terms(self.engine, self.extractor, pred, target)
        return family_shares(measurement, {t.key: t.weight for t in self.engine}, by="term")

    def _inputs(self, pred: torch.Tensor, target: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        pred = self._check(pred, "prediction")
        if target is not None:
            target = self._check(target, "target")
            check_same_shape(pred, target)
        elif self.engine.needs_target:
            raise InputError("this loss needs a target image to measure its terms; pass one")
        return pred, target

    def _check(self, x: torch.Tensor, name: str) -> torch.Tensor:
        # The extractor's check adds size and device checks to the image check.
        return self.extractor.check(x, name) if self.extractor else check_image(x, name, self.input_range)

    def extra_repr(self) -> str:
        return (
            f"feature_layers={self.feature_layers}, style_layers={self.style_layers}, pixel_weight={self.pixel_weight}, "
            f"tv_weight={self.tv_weight}, criterion={self.criterion!r}, reduction={self.reduction!r}"
        )


def _signature() -> inspect.Signature:
    """``PerceptualLoss``'s signature with every term keyword of the table spelled out (for help() and IDEs)."""
    signature = inspect.signature(PerceptualLoss.__init__)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for name in term_keywords():
        family = family_of(name)
        default = (None if family.layered else 0.0) if family is not None else OPTIONS[name].default
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
    return signature.replace(parameters=params)


PerceptualLoss.__init__.__signature__ = _signature()  # type: ignore[attr-defined]


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


def _check_index(index: object, batch: int, styles: int) -> torch.Tensor:
    """``index`` as int64 ``(batch,)`` in ``[0, styles)``, or an InputError saying what is wrong."""
    if not isinstance(index, torch.Tensor) or index.is_floating_point() or tuple(index.shape) != (batch,):
        got = tuple(index.shape) if isinstance(index, torch.Tensor) else type(index).__name__
        raise InputError(f"target_index must be int64 ({batch},), one style per item; got {got}")
    if styles == 0:
        raise InputError("target_index picks among fixed style images; call set_style_targets first")
    if batch and (int(index.min()) < 0 or int(index.max()) >= styles):
        raise InputError(f"target_index must lie in 0..{styles - 1} (the style images set); got {index.tolist()}")
    return index.long()


def _style_term(term: Term) -> bool:
    """The terms a fixed style image feeds: those of the families whose target is the style (Gram, MRF, ...)."""
    return is_style_key(term.key)
