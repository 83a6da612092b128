"""``TermEngine``: one extractor pass over the prediction, one over the target, then every term."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.errors import InputError
from lossnet.functional.reduction import REDUCTIONS, reduce
from lossnet.terms.base import Backbone, Statistics, Term
from lossnet.validation import check_choice

#: Which terms a call applies to: all (``None``), the terms of one kind (a class), or a predicate.
Selector = type[Term] | Callable[[Term], bool] | None


def _selected(term: Term, which: Selector) -> bool:
    if which is None:
        return True
    if isinstance(which, type):
        return isinstance(term, which)
    return bool(which(term))


def _union(terms: Iterable[Term]) -> list[str]:
    """The layers the terms read, each once, in the order the terms name them."""
    return list(dict.fromkeys(name for term in terms for name in term.layers))


def run_backbone(extractor: Backbone | None, image: torch.Tensor, layers: list[str]) -> Mapping[str, torch.Tensor]:
    """The features of ``image`` at ``layers``; a :class:`FeatureExtractor` stops after the deepest of them.

    No pass at all when no layer is needed. Any other backbone is called as it is, on ``image``.
    Inputs are not validated here: the configurations check them once, with their own messages.
    """
    if not layers:
        return {}
    if extractor is None:
        raise InputError(f"terms on layers {layers} need a loss network, and none was given")
    if isinstance(extractor, FeatureExtractor):
        subset = None if set(layers) >= set(extractor.layers) else layers
        return extractor(image, validate=False, layers=subset)
    return extractor(image)


class TermEngine(nn.Module):
    """Weighted terms over one backbone pass per image (see :mod:`lossnet.terms`).

    The engine holds the terms (and the fixed targets' statistics, as the terms' buffers); the
    backbone is passed at each call, so that the configuration that owns it keeps it as its own
    submodule.

    Args:
        terms: the terms, in the order of the output dict; their keys must be distinct.

    Example:
        >>> from lossnet.terms import FeatureTerm, PixelTerm
        >>> fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
        >>> engine = TermEngine([PixelTerm(0.5), FeatureTerm("relu1_1", 2.0)])
        >>> x = torch.rand(2, 3, 16, 16)
        >>> {k: float(v) for k, v in engine(fx, x, x).items()}
        {'pixel': 0.0, 'feature.relu1_1': 0.0, 'total': 0.0}
    """

    def __init__(self, terms: Iterable[Term]) -> None:
        super().__init__()
        self.terms = nn.ModuleList(terms)
        keys = [term.key for term in self.terms]
        if len(set(keys)) != len(keys) or "total" in keys:
            raise InputError(f"term keys must be distinct and not 'total'; got {keys}")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def layers(self) -> list[str]:
        """Every layer some term reads, in the order the terms name them."""
        return _union(self.terms)

    def term(self, key: str) -> Term:
        """The term named ``key`` (``"style.relu2_2"``, say)."""
        for term in self.terms:
            if term.key == key:
                return term  # type: ignore[return-value]
        raise KeyError(f"no term {key!r}; the terms are {[t.key for t in self.terms]}")

    @property
    def needs_target(self) -> bool:
        """Whether a call needs a target image: some term compares with one and has no fixed target."""
        return any(t.needs_target and t.fixed is None for t in self.terms)

    # -- fixed targets -------------------------------------------------------------------------------
    def fix_target(self, extractor: Backbone | None, image: torch.Tensor, which: Selector = None) -> None:
        """Compute the statistics of a fixed target once, under ``no_grad``, for the selected terms.

        The target's pass stops at the deepest layer those terms read. Later calls compare with these
        statistics (broadcast over the batch when ``image`` has batch 1), not with the call's target.
        """
        self.fix_targets(extractor, [image], which)

    def fix_targets(self, extractor: Backbone | None, images: Sequence[torch.Tensor], which: Selector = None) -> None:
        """Fix a bank of targets (each image's statistics, one pass each, any sizes); a call's ``target_index``
        ``(B,)`` then picks each item's target. One image is :meth:`fix_target`."""
        if not images:
            raise InputError("fix_targets needs at least one target image")
        chosen = [t for t in self.terms if t.needs_target and _selected(t, which)]
        with torch.no_grad():
            bank: list[list[Statistics]] = [[] for _ in chosen]
            for image in images:
                features = run_backbone(extractor, image, _union(chosen))
                for stats, term in zip(bank, chosen, strict=True):
                    stats.append(term.target_statistics(image, features))
            for stats, term in zip(bank, chosen, strict=True):
                term.fix(stats)

    @property
    def bank_size(self) -> int:
        """How many fixed targets the terms hold (0: none, 1: one, as :meth:`fix_target` sets)."""
        return max((len(t.fixed_bank or ()) for t in self.terms), default=0)

    def clear_fixed_target(self, which: Selector = None) -> None:
        """Forget the fixed target of the selected terms."""
        for term in self.terms:
            if _selected(term, which):
                term.unfix()

    # -- evaluation --------------------------------------------------------------------------------------
    def _prepare(
        self, extractor: Backbone | None, pred: torch.Tensor, target: torch.Tensor | None, target_grad: bool
    ) -> tuple[Mapping[str, torch.Tensor], dict[str, Statistics | None]]:
        pending = [t for t in self.terms if t.needs_target and t.fixed is None]
        if pending and target is None:
            raise InputError(f"the terms {[t.key for t in pending]} compare with a target image; pass one")
        pred_features = run_backbone(extractor, pred, self.layers)
        statistics: dict[str, Statistics | None] = {t.key: t.fixed for t in self.terms}
        if pending:
            with contextlib.nullcontext() if target_grad else torch.no_grad():
                features = run_backbone(extractor, target, _union(pending))  # type: ignore[arg-type]
                for term in pending:
                    statistics[term.key] = term.target_statistics(target, features)  # type: ignore[arg-type]
        return pred_features, statistics

    def per_sample(
        self,
        extractor: Backbone | None,
        pred: torch.Tensor,
        target: torch.Tensor | None = None,
        target_grad: bool = False,
        target_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{key: (B,)}``: every term, unweighted and unreduced.

        Args:
            extractor: the backbone, or ``None`` when no term reads a layer.
            pred: the prediction ``(B, C, H, W)``, already validated.
            target: the target image, or ``None`` when every term has a fixed target or needs none.
            target_grad: run the target's pass with autograd as the caller's context decides (for a
                metric of two images); by default it runs under ``no_grad``.
            target_index: int64 ``(B,)``: which fixed target of a bank each item is compared with
                (checked by the caller); ``None`` compares every item with the first.
        """
        features, statistics = self._prepare(extractor, pred, target, target_grad)
        out = {}
        for t in self.terms:
            bank = t.fixed_bank if target_index is not None else None
            if bank is None or len(bank) == 1:
                out[t.key] = t.per_sample(pred, features, statistics[t.key])
            else:
                out[t.key] = _per_target(t, bank, pred, features, target_index)  # type: ignore[arg-type]
        return out

    def forward(
        self,
        extractor: Backbone | None,
        pred: torch.Tensor,
        target: torch.Tensor | None = None,
        reduction: str = "mean",
        target_grad: bool = False,
        target_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{key: weight * reduce(term), ..., "total": their sum}``.

        The one place where the reduction and the weights are applied: each term is reduced over the
        batch (``'none'`` keeps ``(B,)``), then multiplied by its weight; ``total`` is the sum.
        """
        check_choice(reduction, REDUCTIONS, "reduction")
        values = self.per_sample(extractor, pred, target, target_grad, target_index)
        out = {t.key: t.weight * reduce(values[t.key], reduction) for t in self.terms}
        out["total"] = torch.stack(list(out.values())).sum(0)
        return out

    def maps(
        self,
        extractor: Backbone | None,
        pred: torch.Tensor,
        target: torch.Tensor | None = None,
        target_grad: bool = False,
    ) -> dict[str, torch.Tensor]:
        """``{key: (B, 1, h, w)}``: the unweighted map of every term (each term must have one)."""
        features, statistics = self._prepare(extractor, pred, target, target_grad)
        return {t.key: t.spatial(pred, features, statistics[t.key]) for t in self.terms}


def _per_target(
    term: Term, bank: list[Statistics], pred: torch.Tensor, features: Mapping[str, torch.Tensor], index: torch.Tensor
) -> torch.Tensor:
    """``(B,)``: the term of each item against its own fixed target ``bank[index[i]]``, one call per target used."""
    out: torch.Tensor | None = None
    for k in index.unique().tolist():
        rows = (index == k).nonzero().squeeze(1)
        value = term.per_sample(pred[rows], {n: f[rows] for n, f in features.items()}, bank[k])
        out = value.new_zeros(index.shape[0]) if out is None else out
        out = out.index_put((rows,), value)
    return out  # type: ignore[return-value]
