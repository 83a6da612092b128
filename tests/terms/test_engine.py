"""The term engine: one pass per image, targets cut or fixed, reduction and weights in one place."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch

from lossnet import FeatureExtractor
from lossnet.backbones.vgg import get_layer
from lossnet.errors import InputError
from lossnet.functional import distance, gram_matrix, total_variation
from lossnet.terms import FeatureTerm, GramTerm, PixelTerm, Statistics, Term, TermEngine, TVTerm, layer_weights


class Passes:
    """Counts the extractor's forward passes and how deep each went (hooks on its modules)."""

    def __init__(self, fx: FeatureExtractor) -> None:
        self.depths: list[int] = []
        for i, module in enumerate(fx.features):
            module.register_forward_hook(lambda *_, i=i: self._ran(i))

    def _ran(self, i: int) -> None:
        if i == 0:
            self.depths.append(0)
        else:
            self.depths[-1] = i


def extractor() -> FeatureExtractor:
    return FeatureExtractor("vgg11", ["relu1_1", "relu2_1", "relu3_1"], weights=None)


def images(b: int = 2, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.rand(b, 3, size, size), torch.rand(b, 3, size, size)


def test_terms_equal_the_functions_weighted_after_the_reduction() -> None:
    fx = extractor()
    pred, target = images()
    engine = TermEngine(
        [PixelTerm(0.5, "l1"), FeatureTerm("relu2_1", 2.0), GramTerm("relu1_1", 3.0, "charbonnier"), TVTerm(0.25)]
    )
    fp, ft = fx(pred), fx(target)
    for reduction in ("none", "mean", "sum"):
        out = engine(fx, pred, target, reduction)
        assert list(out) == ["pixel", "feature.relu2_1", "style.relu1_1", "tv", "total"]
        expected = {
            "pixel": 0.5 * distance(pred, target, "l1", reduction),
            "feature.relu2_1": 2.0 * distance(fp["relu2_1"], ft["relu2_1"], "mse", reduction),
            "style.relu1_1": 3.0
            * distance(gram_matrix(fp["relu1_1"]), gram_matrix(ft["relu1_1"]), "charbonnier", reduction),
            "tv": 0.25 * total_variation(pred, reduction=reduction),
        }
        for key, value in expected.items():
            torch.testing.assert_close(out[key], value, rtol=0, atol=0, msg=key)
        torch.testing.assert_close(out["total"], sum(expected.values()), rtol=1e-6, atol=0)


def test_one_pass_each_and_the_target_cut_at_the_deepest_layer_it_needs() -> None:
    fx = extractor()
    passes = Passes(fx)
    pred, target = images()
    engine = TermEngine([FeatureTerm("relu1_1"), GramTerm("relu3_1")])
    engine(fx, pred, target)
    deepest = get_layer("vgg11", "relu3_1").index
    assert passes.depths == [deepest, deepest]
    engine.fix_target(fx, target[:1], GramTerm)  # one pass for the fixed target ...
    passes.depths.clear()
    engine(fx, pred, target)  # ... then the target's pass stops at relu1_1
    assert passes.depths == [deepest, get_layer("vgg11", "relu1_1").index]
    passes.depths.clear()
    TermEngine([PixelTerm(), TVTerm()])(fx, pred, target)  # image-space terms: no pass at all
    assert passes.depths == []


def test_a_fixed_target_equals_passing_it_and_follows_to() -> None:
    fx = extractor()
    pred, target = images()
    style = torch.rand(1, 3, 32, 32)
    engine = TermEngine([GramTerm("relu2_1", 2.0)])
    per_call = engine(fx, pred, style.expand(2, -1, -1, -1), "none")
    engine.fix_target(fx, style)
    assert not engine.needs_target
    torch.testing.assert_close(engine(fx, pred, None, "none"), per_call)
    fixed = engine.term("style.relu2_1").fixed
    assert fixed is not None and fixed["gram"].shape == (1, 128, 128)
    assert engine.double().term("style.relu2_1").fixed["gram"].dtype == torch.float64
    engine.float().clear_fixed_target()
    assert engine.term("style.relu2_1").fixed is None and engine.needs_target
    with pytest.raises(InputError, match="compare with a target image"):
        engine(fx, pred)


def test_gradients_reach_the_prediction_only_unless_asked() -> None:
    fx = extractor()
    pred, target = (t.requires_grad_(True) for t in images())
    TermEngine([FeatureTerm("relu2_1")])(fx, pred, target)["total"].backward()
    assert pred.grad is not None and target.grad is None
    TermEngine([FeatureTerm("relu2_1")])(fx, pred, target, target_grad=True)["total"].backward()
    assert target.grad is not None


def test_maps_average_to_the_per_sample_terms() -> None:
    fx = extractor()
    pred, target = images()
    engine = TermEngine([FeatureTerm("relu1_1", criterion="l1"), FeatureTerm("relu2_1")])
    maps = engine.maps(fx, pred, target)
    per_sample = engine.per_sample(fx, pred, target)
    for key, m in maps.items():
        assert m.shape[:2] == (2, 1)
        torch.testing.assert_close(m.flatten(1).mean(1), per_sample[key])
    with pytest.raises(NotImplementedError, match="no spatial map"):
        TermEngine([TVTerm()]).maps(None, pred)


class CornerTerm(Term):
    """A new kind, as issue 12's will be: it keeps a statistic of its own of the target."""

    key, weight, layers = "corner", 1.0, ("relu1_1",)

    def target_statistics(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> Statistics:
        return {"corner": features["relu1_1"][:, :, 0, 0]}

    def per_sample(self, image, features, target):  # type: ignore[no-untyped-def]
        return (features["relu1_1"][:, :, 0, 0] - target["corner"]).abs().mean(1)


def test_a_new_term_kind_plugs_in_with_fixed_targets_and_any_backbone() -> None:
    pred, target = images()

    def backbone(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"relu1_1": x * 2}

    engine = TermEngine([CornerTerm(), PixelTerm()])
    out = engine(backbone, pred, target, "none")
    torch.testing.assert_close(out["corner"], (2 * pred - 2 * target)[:, :, 0, 0].abs().mean(1))
    engine.fix_target(backbone, target[:1], CornerTerm)
    assert set(engine.term("corner").fixed) == {"corner"} and engine.term("pixel").fixed is None


def test_keys_must_be_distinct_and_weights_checked() -> None:
    with pytest.raises(InputError, match="distinct"):
        TermEngine([FeatureTerm("relu1_1"), FeatureTerm("relu1_1")])
    with pytest.raises(InputError, match="feature weight of 'relu1_1'"):
        FeatureTerm("relu1_1", -1.0)
    assert layer_weights({"relu2_1": 2, "relu1_1": 1}, arch="vgg11") == {"relu1_1": 1.0, "relu2_1": 2.0}
    assert layer_weights("pooled") == {"pooled": 1.0} and layer_weights(None) == {}
