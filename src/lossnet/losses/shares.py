"""Recipes in shares for :class:`~lossnet.PerceptualLoss`: resolve ``{family: share}`` to weights on a trunk.

The maths and the choice of rule are in :mod:`lossnet.terms.shares`; this module adds what a loss built
from keywords needs: the families a share names are built (:func:`with_shared_families`), and
:func:`balance_shares` returns the weights without changing the loss (:meth:`PerceptualLoss.calibrate`
sets them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lossnet.errors import InputError
from lossnet.losses.perceptual import PerceptualLoss
from lossnet.terms.registry import FAMILIES
from lossnet.terms.shares import DEFAULT_RULE, Balance, balance_engine

__all__ = ["balance_shares", "merge_shares", "with_shared_families"]


def balance_shares(
    loss: PerceptualLoss,
    pred: torch.Tensor,
    target: torch.Tensor | None,
    shares: Mapping[str, float],
    rule: str = DEFAULT_RULE,
) -> Balance:
    """The weights that give each family of ``loss`` its share at ``(pred, target)``; ``loss`` is not changed.

    ``loss.reweight(balance.weights)`` applies them (:meth:`PerceptualLoss.calibrate` does both), and
    ``PerceptualLoss(**balance.keywords, ...)`` rebuilds the same loss with them.

    Example:
        >>> loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], tv_weight=1.0)
        >>> pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
        >>> b = balance_shares(loss, pred, target, {"feature": 9, "tv": 1})
        >>> sorted(b.keywords), b.shares
        (['feature_layers', 'tv_weight'], {'feature': 0.9, 'tv': 0.1})
    """
    pred, target = loss._inputs(pred, target)
    return balance_engine(loss.engine, loss.extractor, pred, target, shares, rule, "given images")


def with_shared_families(kwargs: Mapping[str, Any], shares: Mapping[str, float]) -> dict[str, Any]:
    """``kwargs`` with every family that ``shares`` gives a positive share present (the share sets its size).

    A one-weight family (``tv``, ``pixel``, ...) absent or at 0 gets weight 1; a per-layer family must name
    its layers. Families not in ``shares`` are left as they are (:func:`check_shares` then asks for them).

    >>> with_shared_families({"feature_layers": {"relu2_2": 1.0}, "tv_weight": 0.0}, {"feature": 1, "tv": 0.1})
    {'feature_layers': {'relu2_2': 1.0}, 'tv_weight': 1.0}
    """
    out = dict(kwargs)
    for name, share in shares.items():
        family = FAMILIES.get(name)
        if family is None or not share or out.get(family.keyword):
            continue
        if family.layered:
            raise InputError(
                f"the {name} share needs {name} layers to share among: give {family.keyword}= (the layers, "
                f"their weights only as ratios), or leave the {name} share out"
            )
        out[family.keyword] = 1.0
    return out


def merge_shares(
    recipe: Mapping[str, float] | None, given: Mapping[str, float], kwargs: Mapping[str, Any]
) -> dict[str, float]:
    """The shares of a run: the recipe's (a preset's ``shares``) for the families ``kwargs`` has, then ``given``.

    A recipe's share of a family the loss no longer has (turned off by a flag) is dropped. The shares are
    checked when they are resolved (:func:`lossnet.terms.shares.check_shares`).

    >>> merge_shares({"feature": 0.5, "style": 0.5, "tv": 0.1}, {"style": 0.3}, {"feature_layers": ["relu2_2"],
    ...              "style_layers": ["relu1_2"], "tv_weight": 0.0})
    {'feature': 0.5, 'style': 0.3}
    """
    in_use = [name for name, family in FAMILIES.items() if kwargs.get(family.keyword)]
    merged = {k: v for k, v in (recipe or {}).items() if k in in_use} | dict(given)
    if not merged:
        flags = ", ".join(f"--{name.replace('_', '-')}-share" for name in in_use)
        raise InputError(f"shares were asked for, but none was given: give {flags} (or a preset with shares)")
    return merged
