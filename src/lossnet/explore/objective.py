"""The loss of an image being optimised: feature terms against a content image, Gram terms against a style image.

The terms are the ones :class:`~lossnet.losses.perceptual.PerceptualLoss` computes, under the
same names and with the same weights (``feature.<layer>``, ``style.<layer>``, ``tv``, ``total``),
so the weights chosen by looking can be passed to ``PerceptualLoss`` for training unchanged.
The targets are fixed, so their features and Gram matrices are computed once, under
``no_grad``, and kept as buffers; each evaluation runs the loss network once, on the image.
It is a configuration of the term engine (:mod:`lossnet.terms`) with fixed targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.errors import InputError
from lossnet.terms import FeatureTerm, GramTerm, Term, TermEngine, TVTerm, layer_weights
from lossnet.terms.registry import is_style_key
from lossnet.validation import check_weight


class ImageObjective(nn.Module):
    """``total = sum_l a_l feature_l(x, content) + sum_l b_l style_l(x, style) + tv_weight TV(x)``.

    Each feature term is the MSE between the activations of ``x`` and of the content image
    (:func:`~lossnet.losses.feature_loss`), each style term the MSE between their Gram
    matrices (:func:`~lossnet.losses.style_loss`), and TV is the anisotropic total
    variation per pixel (:func:`~lossnet.losses.total_variation`).

    Args:
        extractor: the loss network; it must return every layer named below.
        content: ``(1, 3, H, W)`` in the extractor's input range, or ``None`` when there are
            no feature terms. ``x`` must have its size.
        content_layers: ``{layer: weight a_l}`` of the feature terms.
        style: ``(1, 3, H', W')``, any size the deepest style layer accepts, or ``None``.
        style_layers: ``{layer: weight b_l}`` of the Gram terms.
        tv_weight: weight of the TV term.
        terms: more terms, of any family of the table (:mod:`lossnet.terms.registry`): those of a
            style family (MRF, ...) compare with the style image, the others with the content image.

    Example:
        >>> fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
        >>> objective = ImageObjective(fx, torch.rand(1, 3, 16, 16), {"relu2_1": 1.0},
        ...                            torch.rand(1, 3, 24, 24), {"relu1_1": 10.0}, tv_weight=0.1)
        >>> sorted(objective(torch.rand(1, 3, 16, 16)))
        ['feature.relu2_1', 'style.relu1_1', 'total', 'tv']
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        content: torch.Tensor | None = None,
        content_layers: Mapping[str, float] | None = None,
        style: torch.Tensor | None = None,
        style_layers: Mapping[str, float] | None = None,
        tv_weight: float = 0.0,
        terms: Sequence[Term] = (),
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.content_layers = layer_weights(content_layers, "content")
        self.style_layers = layer_weights(style_layers, "style")
        self.tv_weight = check_weight(tv_weight, "tv_weight")
        missing = [n for n in (*self.content_layers, *self.style_layers) if n not in extractor.layers]
        missing += [n for t in terms for n in t.layers if n not in extractor.layers]
        if missing:
            raise InputError(
                f"the extractor does not return {missing}; build it with layers {extractor.layers + missing}"
            )
        on_style = [t for t in terms if _style_term(t)]
        on_content = [t for t in terms if t.needs_target and not _style_term(t)]
        if (self.content_layers or on_content) and content is None:
            raise InputError("feature terms need a content image; pass content=")
        if (self.style_layers or on_style) and style is None:
            raise InputError("Gram (style) terms need a style image; pass style=")
        if not (self.content_layers or self.style_layers or self.tv_weight or terms):
            raise InputError("the objective has no term: give content_layers, style_layers, tv_weight or terms")
        self.size: tuple[int, int] | None = None
        all_terms: list[Term] = [FeatureTerm(name, w) for name, w in self.content_layers.items()]
        all_terms += [GramTerm(name, w) for name, w in self.style_layers.items()]
        all_terms += [TVTerm(self.tv_weight)] if self.tv_weight else []
        self.engine = TermEngine([*all_terms, *terms])
        if content is not None and (self.content_layers or on_content):
            content = extractor.check(content, "content image")
            self.size = (content.shape[-2], content.shape[-1])
            self.engine.fix_target(extractor, content, lambda t: isinstance(t, FeatureTerm) or t in on_content)
        if style is not None and (self.style_layers or on_style):
            style = extractor.check(style, "style image")
            self.engine.fix_target(extractor, style, lambda t: isinstance(t, GramTerm) or t in on_style)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every weighted term and their sum ``total`` (scalars) for the image ``x`` ``(1, 3, H, W)``.

        ``x`` is not range-checked here (an optimiser may step slightly outside [0, 1]);
        callers check it once before optimising.
        """
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            raise InputError(f"the image is {tuple(x.shape[-2:])} but the content target is {self.size}; resize it")
        return self.engine(self.extractor, x)


def _style_term(term: Term) -> bool:
    """Whether a term belongs to a family that compares with the style image (Gram, MRF, ...)."""
    return is_style_key(term.key)
