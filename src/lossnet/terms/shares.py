"""Recipes in shares: each family's intended share of the loss, resolved to weights on the trunk in use.

A raw weight encodes one trunk's magnitudes: ``pixel_weight=1`` is half of a loss on one trunk and
1e-5 of it on another. A *share* says what the recipe means: "the feature terms pull 60%, the style
terms 35%, TV 5%". :func:`resolve_weights` turns shares into weights for the trunk and images at hand:

- **gradient** (the default, :data:`DEFAULT_RULE`): a family's share is the norm of its gradient
  with respect to the prediction, ``||d (w_F * family_F) / d pred||``, as a fraction of the sum
  of those norms over the families. This is how hard each family pulls the prediction, which is
  what an optimiser sees.
- **value**: a family's share is its weighted value as a fraction of the total.

The README's "Recipes in shares" section has the measurements behind the default: the same
recipe in gradient shares behaves alike on HED's VGG16 and on a random-init VGG16; in value shares
it does not.

A family's layers keep the ratios of their weights as given (``style_layers={"relu1_2": 1,
"relu2_2": 2}`` stays 1:2); the shares set each family's factor. The weights are then scaled together
so that the weighted total at the calibration point equals the total the given weights had there
(1 when that total is 0), so a learning rate tuned for the raw recipe keeps its scale.

>>> from lossnet.terms import FeatureTerm, PixelTerm, TermEngine
>>> from lossnet.backbones.extractor import FeatureExtractor
>>> torch.manual_seed(0) and None
>>> fx = FeatureExtractor("vgg11", ["relu2_1"], weights=None)
>>> engine = TermEngine([PixelTerm(1.0), FeatureTerm("relu2_1", 1.0)])
>>> pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
>>> m = measure_terms(engine, fx, pred, target)
>>> w = resolve_weights(m, {"pixel": 1.0, "feature.relu2_1": 1.0}, {"pixel": 0.25, "feature": 0.75})
>>> {k: round(v, 3) for k, v in family_shares(m, w)["gradient"].items()}
{'pixel': 0.25, 'feature': 0.75}
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lossnet.errors import InputError
from lossnet.functional.reduction import reduce
from lossnet.terms.base import Backbone
from lossnet.terms.engine import TermEngine
from lossnet.terms.registry import FAMILIES
from lossnet.validation import suggest

#: The two ways to read a share: the gradient norm at the prediction, or the weighted value.
SHARE_RULES = ("gradient", "value")
#: The rule lossnet uses unless told otherwise (chosen by measurement; see the module docstring).
DEFAULT_RULE = "gradient"


def family_of_key(key: str) -> str:
    """The family of a term's key: ``"style.relu1_2"`` -> ``"style"``, ``"lpips_like"`` -> ``"lpips"``.

    >>> family_of_key("feature.relu2_2"), family_of_key("tv"), family_of_key("dists_like")
    ('feature', 'tv', 'dists')
    """
    return key.split(".")[0].removesuffix("_like")


def check_shares(shares: Mapping[str, float], in_use: Collection[str]) -> dict[str, float]:
    """Checked shares, normalised to sum 1, one for each family in use.

    Args:
        shares: ``{family: share}``, families of :data:`~lossnet.terms.registry.FAMILIES`, in any positive
            scale (``{"feature": 3, "style": 1}`` is 75%/25%).
        in_use: the families the loss has terms of; each needs a share.

    Raises:
        InputError: an unknown family, a share that is negative or not finite, all shares zero,
            a family in use without a share, or a share for a family the loss does not have.
    """
    if not isinstance(shares, Mapping) or not shares:
        raise InputError(
            "shares must be a non-empty {family: share} mapping, e.g. {'feature': 0.8, 'style': 0.2}; "
            f"got {shares!r}"
        )
    families = list(FAMILIES)
    out: dict[str, float] = {}
    for name, share in shares.items():
        if name not in families:
            raise InputError(
                f"no term family {name!r} to give a share to.{suggest(name, families)} "
                f"The families are {families}"
            )
        number = isinstance(share, (int, float)) and not isinstance(share, bool)
        if not number or not math.isfinite(share) or share < 0:
            raise InputError(f"the share of {name!r} must be a finite number >= 0; got {share!r}")
        out[name] = float(share)
    total = sum(out.values())
    if total == 0:
        raise InputError(f"every share is 0 ({out}); give at least one family a positive share")
    missing = [name for name in in_use if name not in out]
    if missing:
        raise InputError(
            f"the loss has {', '.join(missing)} terms but no share for {'them' if len(missing) > 1 else 'it'}; "
            f"give every family in use a share (0 turns one off): the shares given are {out}"
        )
    extra = [name for name in out if name not in in_use and out[name] > 0]
    if extra:
        raise InputError(
            f"shares name {', '.join(extra)}, which the loss has no terms of; give "
            f"{'them' if len(extra) > 1 else 'it'} layers or a weight (any: the share sets its size), "
            "or leave the share out"
        )
    return {name: out[name] / total for name in out if name in in_use}


@dataclass
class Measurement:
    """Every term of an engine, unweighted, at one prediction: its value and its gradient.

    Attributes:
        values: ``{key: value}``, each term reduced by its mean over the batch, unweighted.
        grads: ``{key: d value / d pred}``, each ``pred``'s shape ``(B, C, H, W)``.
    """

    values: dict[str, float]
    grads: dict[str, torch.Tensor]


def measure_terms(
    engine: TermEngine, extractor: Backbone | None, pred: torch.Tensor, target: torch.Tensor | None = None
) -> Measurement:
    """Each term's value and gradient with respect to ``pred``: one forward pass, one backward per term.

    Args:
        engine: the terms (their weights are not applied here).
        extractor: the backbone the terms read.
        pred: the prediction ``(B, C, H, W)``, already checked; it is detached, so a network's output
            may be passed as it is.
        target: the target, or ``None`` when every term has a fixed target or needs none.
    """
    x = pred.detach().float().requires_grad_(True)
    with torch.enable_grad():
        values = engine.per_sample(extractor, x, target)
        reduced = {key: reduce(v, "mean") for key, v in values.items()}
        keys = list(reduced)
        grads: dict[str, torch.Tensor] = {}
        for i, key in enumerate(keys):
            if reduced[key].requires_grad:
                (g,) = torch.autograd.grad(reduced[key], x, retain_graph=i < len(keys) - 1, allow_unused=True)
            else:
                g = None
            grads[key] = torch.zeros_like(x) if g is None else g.detach()
    return Measurement({k: float(v.detach()) for k, v in reduced.items()}, grads)


def family_shares(
    measurement: Measurement, weights: Mapping[str, float], by: str = "family"
) -> dict[str, dict[str, float]]:
    """The value and gradient shares under ``weights``, by family (``by="family"``) or by term (``"term"``).

    A family's gradient is the sum of its weighted terms' gradients; its gradient share is that sum's
    norm as a fraction of the sum of the families' norms. Returns ``{"value": {...}, "gradient": {...}}``,
    each summing to 1 (all 0 when nothing pulls).
    """
    values, norms = _sizes(measurement, weights, by == "family")
    return {"value": _fractions(values), "gradient": _fractions(norms)}


def _sizes(
    measurement: Measurement, weights: Mapping[str, float], by_family: bool = True
) -> tuple[dict[str, float], dict[str, float]]:
    """``({group: weighted value}, {group: norm of its weighted gradient})``, by family or by term."""
    values: dict[str, float] = {}
    grads: dict[str, torch.Tensor] = {}
    for key, value in measurement.values.items():
        name, w = (family_of_key(key) if by_family else key), float(weights.get(key, 0.0))
        values[name] = values.get(name, 0.0) + w * value
        g = w * measurement.grads[key].double()
        grads[name] = grads[name] + g if name in grads else g
    return values, {name: float(torch.linalg.vector_norm(g)) for name, g in grads.items()}


def _fractions(parts: Mapping[str, float]) -> dict[str, float]:
    total = sum(parts.values())
    return {k: (v / total if total else 0.0) for k, v in parts.items()}


def resolve_weights(
    measurement: Measurement,
    weights: Mapping[str, float],
    shares: Mapping[str, float],
    rule: str = DEFAULT_RULE,
) -> dict[str, float]:
    """The term weights that give each family its share at the measured prediction.

    Args:
        measurement: from :func:`measure_terms`.
        weights: ``{key: weight}`` as given: within a family their ratios are kept.
        shares: ``{family: share}`` for every family of the terms (see :func:`check_shares`).
        rule: ``"gradient"`` or ``"value"`` (:data:`SHARE_RULES`).

    Returns:
        ``{key: weight}`` for every term.

    Raises:
        InputError: a family with a positive share neither moves nor counts at this prediction
            (its value, or its gradient, is 0: the prediction equals the target at its layers).
    """
    if rule not in SHARE_RULES:
        raise InputError(f"rule must be one of {SHARE_RULES}; got {rule!r}.{suggest(str(rule), SHARE_RULES)}")
    shares = check_shares(shares, {family_of_key(k) for k in measurement.values})
    values, norms = _sizes(measurement, weights)
    size = values if rule == "value" else norms
    factor: dict[str, float] = {}
    for name, share in shares.items():
        if share == 0:
            factor[name] = 0.0
        elif not size.get(name, 0.0) > 0:
            what = "value" if rule == "value" else "gradient"
            raise InputError(
                f"the {name} terms have {what} 0 at the calibration images (or weight 0), so no weight gives them "
                f"a {share:.0%} share: calibrate on a prediction that differs from the target at their layers"
            )
        else:
            factor[name] = share / size[name]
    raw = {key: float(weights.get(key, 0.0)) for key in measurement.values}
    out = {key: factor[family_of_key(key)] * w for key, w in raw.items()}
    before = sum(raw[k] * v for k, v in measurement.values.items())
    after = sum(out[k] * v for k, v in measurement.values.items())
    scale = (before if before > 0 else 1.0) / after if after > 0 else 1.0
    return {key: w * scale for key, w in out.items()}



@dataclass
class Balance:
    """Shares resolved to weights at one calibration point.

    Attributes:
        rule: ``"gradient"`` or ``"value"``.
        shares: ``{family: share}`` asked for, normalised to sum 1.
        weights: ``{term key: weight}`` resolved.
        measured: the shares those weights give at the calibration point, ``{"value": {family: share},
            "gradient": {family: share}}`` (the one the rule names equals :attr:`shares`).
        where: what the calibration point was (for the log).
    """

    rule: str
    shares: dict[str, float]
    weights: dict[str, float]
    measured: dict[str, dict[str, float]] = field(default_factory=dict)
    where: str = ""

    @property
    def keywords(self) -> dict[str, Any]:
        """The weights as :class:`~lossnet.PerceptualLoss` keywords: ``{"feature_layers": {...}, "tv_weight": w}``."""
        return weight_keywords(self.weights)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible: rule, shares, the resolved keywords and the measured shares."""
        return {"rule": self.rule, "shares": self.shares, "weights": self.keywords, "measured": self.measured,
                "where": self.where}  # fmt: skip


def weight_keywords(weights: Mapping[str, float]) -> dict[str, Any]:
    """``{term key: weight}`` as family keywords: ``{"feature.relu2_2": 2.0, "tv": 0.1}`` ->
    ``{"feature_layers": {"relu2_2": 2.0}, "tv_weight": 0.1}``.

    >>> weight_keywords({"feature.relu2_2": 2.0, "lpips_like": 0.5})
    {'feature_layers': {'relu2_2': 2.0}, 'lpips_weight': 0.5}
    """
    out: dict[str, Any] = {}
    for key, w in weights.items():
        family = FAMILIES[family_of_key(key)]
        if family.layered:
            out.setdefault(family.keyword, {})[key.split(".", 1)[1]] = w
        else:
            out[family.keyword] = w
    return out


def balance_engine(
    engine: TermEngine,
    extractor: Backbone | None,
    pred: torch.Tensor,
    target: torch.Tensor | None,
    shares: Mapping[str, float],
    rule: str = DEFAULT_RULE,
    where: str = "",
) -> Balance:
    """Measure ``engine``'s terms at ``pred`` and resolve ``shares`` to weights (the engine is not changed)."""
    measurement = measure_terms(engine, extractor, pred, target)
    given = {t.key: float(t.weight) for t in engine}
    weights = resolve_weights(measurement, given, shares, rule)
    normalised = check_shares(shares, {family_of_key(k) for k in weights})
    return Balance(rule, normalised, weights, family_shares(measurement, weights), where)


def apply_weights(engine: TermEngine, weights: Mapping[str, float]) -> None:
    """Set the engine's term weights from ``{term key: weight}`` (every key must be a term of the engine)."""
    for key, w in weights.items():
        engine.term(key).weight = float(w)
