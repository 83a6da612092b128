"""PerceptualLoss: the composite of pixel, feature, style and TV terms over one shared VGG pass.

Random ``vgg11`` networks (``weights=None``) and tiny images keep these fast; the tests that
need real features use the session's offline pretrained VGG16 (``hed_weights``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lossnet import PerceptualLoss
from lossnet.errors import InputError
from lossnet.functional.criteria import CRITERIA
from lossnet.losses.feature import feature_loss
from lossnet.losses.pixel import pixel_loss
from lossnet.losses.style import style_loss
from lossnet.functional.total_variation import total_variation

FULL: dict[str, Any] = {
    "feature_layers": {"relu1_1": 1.0, "relu2_1": 0.5},
    "style_layers": {"relu1_1": 2.0, "relu2_1": 3.0},
    "pixel_weight": 0.7,
    "tv_weight": 0.1,
}
FULL_KEYS = ["pixel", "feature.relu1_1", "feature.relu2_1", "style.relu1_1", "style.relu2_1", "tv", "total"]


def make(**kwargs: Any) -> PerceptualLoss:
    kwargs.setdefault("weights", None)
    return PerceptualLoss(kwargs.pop("arch", "vgg11"), **kwargs)


def same_network(reference: PerceptualLoss, **kwargs: Any) -> PerceptualLoss:
    """A loss with other options but exactly ``reference``'s (random) VGG weights."""
    loss = make(**kwargs)
    loss.load_state_dict(reference.state_dict())
    return loss


def images(b: int = 2, c: int = 3, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(b, c, size, size), torch.rand(b, c, size, size)


class CallCounter:
    """Forward hook on the extractor: counts calls and records whether outputs carry a graph."""

    def __init__(self, loss: PerceptualLoss) -> None:
        self.calls = 0
        self.requires_grad: list[bool] = []
        self.handle = loss.extractor.register_forward_hook(self)

    def __call__(self, module: torch.nn.Module, args: Any, output: dict[str, torch.Tensor]) -> None:
        self.calls += 1
        self.requires_grad.append(any(v.requires_grad for v in output.values()))


# -- the returned values ---------------------------------------------------------------------


def test_call_returns_scalar_equal_to_terms_total() -> None:
    loss = make(**FULL)
    pred, target = images()
    out = loss(pred, target)
    assert out.shape == ()
    torch.testing.assert_close(out, loss.terms(pred, target)["total"])


def test_terms_keys_are_the_documented_names_in_order() -> None:
    loss = make(**FULL)
    assert list(loss.terms(*images())) == FULL_KEYS


def test_terms_keys_only_active_terms() -> None:
    pred, target = images()
    assert list(make(feature_layers=["relu2_1"]).terms(pred, target)) == ["feature.relu2_1", "total"]
    assert list(make(style_layers="relu1_1", tv_weight=1.0).terms(pred, target)) == ["style.relu1_1", "tv", "total"]
    assert list(make(pixel_weight=1.0).terms(pred, target)) == ["pixel", "total"]


def test_terms_keys_pretrained_vgg16(hed_weights: Any) -> None:
    loss = PerceptualLoss(
        "vgg16",
        weights=hed_weights,
        feature_layers={"relu2_2": 1.0},
        style_layers={"relu3_3": 1.0},
        pixel_weight=1.0,
        tv_weight=1.0,
    )
    terms = loss.terms(*images(1, 3, 16))
    assert list(terms) == ["pixel", "feature.relu2_2", "style.relu3_3", "tv", "total"]


def test_total_is_the_sum_of_the_terms() -> None:
    terms = make(**FULL).terms(*images())
    torch.testing.assert_close(terms["total"], sum(v for k, v in terms.items() if k != "total"))


def test_layers_are_kept_in_forward_order() -> None:
    loss = make(feature_layers={"relu2_1": 1.0, "conv1_1": 2.0}, style_layers=["relu2_1", "relu1_1"])
    assert list(loss.feature_layers) == ["conv1_1", "relu2_1"]
    assert loss.feature_layers == {"conv1_1": 2.0, "relu2_1": 1.0}
    assert loss.style_layers == {"relu1_1": 1.0, "relu2_1": 1.0}


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("criterion", CRITERIA)
def test_each_term_equals_its_building_block(criterion: str, reduction: str) -> None:
    """Every weighted term equals the functional loss on the extractor's features."""
    loss = make(**FULL, criterion=criterion, reduction=reduction)
    pred, target = images(3)
    terms = loss.terms(pred, target)
    fp, ft = loss.extractor(pred), loss.extractor(target)
    expected = {
        "pixel": 0.7 * pixel_loss(pred, target, criterion, reduction),
        "feature.relu1_1": 1.0 * feature_loss(fp["relu1_1"], ft["relu1_1"], criterion, reduction),
        "feature.relu2_1": 0.5 * feature_loss(fp["relu2_1"], ft["relu2_1"], criterion, reduction),
        "style.relu1_1": 2.0 * style_loss(fp["relu1_1"], ft["relu1_1"], criterion, reduction),
        "style.relu2_1": 3.0 * style_loss(fp["relu2_1"], ft["relu2_1"], criterion, reduction),
        "tv": 0.1 * total_variation(pred, "anisotropic", reduction),
    }
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, msg=name)


def test_tv_kind_is_passed_through() -> None:
    loss = make(tv_weight=2.0, tv_kind="isotropic")
    pred, target = images()
    torch.testing.assert_close(loss(pred, target), 2.0 * total_variation(pred, "isotropic"))


def test_weights_scale_terms_linearly() -> None:
    unit = make(
        feature_layers={"relu1_1": 1.0, "relu2_1": 1.0},
        style_layers={"relu1_1": 1.0, "relu2_1": 1.0},
        pixel_weight=1.0,
        tv_weight=1.0,
    )
    weighted = same_network(unit, **FULL)
    pred, target = images()
    a, b = unit.terms(pred, target), weighted.terms(pred, target)
    factors = {
        "pixel": 0.7,
        "feature.relu1_1": 1.0,
        "feature.relu2_1": 0.5,
        "style.relu1_1": 2.0,
        "style.relu2_1": 3.0,
        "tv": 0.1,
    }
    for name, f in factors.items():
        torch.testing.assert_close(b[name], f * a[name], msg=name)
    torch.testing.assert_close(b["total"], sum(f * a[n] for n, f in factors.items()))


def test_zero_weighted_layer_stays_a_zero_term() -> None:
    loss = make(feature_layers={"relu1_1": 0.0, "relu2_1": 1.0})
    terms = loss.terms(*images())
    assert terms["feature.relu1_1"].item() == 0.0
    assert terms["feature.relu2_1"].item() > 0.0


@pytest.mark.parametrize("criterion", CRITERIA)
def test_identical_inputs_give_zero_for_every_compared_term(criterion: str) -> None:
    loss = make(**FULL, criterion=criterion)
    pred = torch.rand(2, 3, 16, 16)
    terms = loss.terms(pred, pred.clone())
    for name in FULL_KEYS[:-2]:
        assert terms[name].item() == 0.0, name
    torch.testing.assert_close(terms["total"], terms["tv"])


def test_constant_prediction_has_zero_tv_term() -> None:
    loss = make(tv_weight=5.0, pixel_weight=1.0)
    pred = torch.full((2, 3, 8, 8), 0.4)
    assert loss.terms(pred, pred.clone())["tv"].item() == 0.0


# -- reduction and batching ------------------------------------------------------------------


def test_reduction_none_gives_per_sample_terms() -> None:
    pred, target = images(3)
    none = make(**FULL, reduction="none")
    terms = none.terms(pred, target)
    for name, value in terms.items():
        assert value.shape == (3,), name
    for reduction, op in (("mean", torch.mean), ("sum", torch.sum)):
        other = same_network(none, **FULL, reduction=reduction).terms(pred, target)
        for name in FULL_KEYS:
            assert other[name].shape == ()
            torch.testing.assert_close(other[name], op(terms[name]), msg=f"{reduction} {name}")


def test_batched_equals_per_sample() -> None:
    loss = make(**FULL, reduction="none")
    pred, target = images(3)
    batched = loss.terms(pred, target)
    singles = [loss.terms(pred[i : i + 1], target[i : i + 1]) for i in range(3)]
    for name in FULL_KEYS:
        torch.testing.assert_close(batched[name], torch.cat([s[name] for s in singles]), msg=name)


def test_batch_one_target_broadcasts() -> None:
    loss = make(**FULL, reduction="none")
    pred, _ = images(3)
    target = torch.rand(1, 3, 16, 16)
    a = loss.terms(pred, target)
    b = loss.terms(pred, target.expand(3, -1, -1, -1).contiguous())
    for name in FULL_KEYS:
        torch.testing.assert_close(a[name], b[name], msg=name)


# -- the VGG passes --------------------------------------------------------------------------


def test_backbone_runs_once_for_pred_and_once_for_target() -> None:
    loss = make(**FULL)
    counter = CallCounter(loss)
    pred, target = images()
    loss(pred, target)
    assert counter.calls == 2
    loss.terms(pred, target)
    assert counter.calls == 4


def test_target_pass_builds_no_graph_and_gradient_reaches_only_pred() -> None:
    loss = make(feature_layers=["relu1_1", "relu2_1"], style_layers=["relu2_1"], tv_weight=0.1)
    counter = CallCounter(loss)
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss(pred, target).backward()
    assert counter.requires_grad == [True, False]
    assert target.grad is None
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def _layers_run(loss: PerceptualLoss, pred: torch.Tensor, target: torch.Tensor) -> tuple[list[int], list[int]]:
    """Indices of the VGG modules that ran for the prediction (grad enabled) and for the target (no_grad)."""
    ran: list[tuple[int, bool]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, _o, k=k: ran.append((k, torch.is_grad_enabled())))
        for k, m in enumerate(loss.extractor.features)
    ]
    try:
        loss(pred, target).backward()
    finally:
        for h in hooks:
            h.remove()
    return [k for k, grad in ran if grad], [k for k, grad in ran if not grad]


def test_cached_style_cuts_the_target_pass_at_the_deepest_feature_layer() -> None:
    from lossnet.backbones.vgg import get_layer
    from lossnet.losses.presets import perceptual_loss_from_preset

    loss = perceptual_loss_from_preset("johnson2016_style", weights=None)  # feature relu2_2, style to relu4_3
    every = list(range(len(loss.extractor.features)))
    assert every[-1] == get_layer("vgg16", "relu4_3").index
    pred, target = torch.rand(1, 3, 32, 32, requires_grad=True), torch.rand(1, 3, 32, 32)
    # Style from each call's target: the target's pass goes as deep as the deepest style layer.
    assert _layers_run(loss, pred, target) == (every, every)
    uncached = loss.terms(pred, target)["feature.relu2_2"]
    loss.set_style_target(target)
    # Style Grams cached: the target's pass stops at relu2_2; the prediction's still goes to relu4_3.
    assert _layers_run(loss, pred, target) == (every, list(range(get_layer("vgg16", "relu2_2").index + 1)))
    torch.testing.assert_close(loss.terms(pred, target)["feature.relu2_2"], uncached, rtol=0, atol=0)


def test_extractor_layers_subset_returns_those_and_rejects_others() -> None:
    loss = make(feature_layers=["relu1_1", "relu2_1"])
    x = torch.rand(1, 3, 16, 16)
    full = loss.extractor(x)
    part = loss.extractor(x, layers=["relu1_1"])
    assert list(part) == ["relu1_1"]
    torch.testing.assert_close(part["relu1_1"], full["relu1_1"], rtol=0, atol=0)
    with pytest.raises(InputError, match="subset"):
        loss.extractor(x, layers=["relu3_1"])


def test_extractor_parameters_get_no_gradient() -> None:
    loss = make(**FULL)
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(pred, torch.rand(1, 3, 16, 16)).backward()
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())


def test_train_mode_keeps_the_loss_network_in_eval() -> None:
    """With batch norm, a network in training mode would use batch statistics and change the loss."""
    loss = make(arch="vgg11_bn", feature_layers=["relu2_1"])
    pred, target = images()
    before = loss(pred, target)
    loss.train()
    assert not loss.extractor.training
    torch.testing.assert_close(loss(pred, target), before)


def test_gradcheck_tiny_double() -> None:
    loss = make(
        feature_layers={"relu1_1": 1.0}, style_layers={"relu2_1": 1.0}, pixel_weight=1.0, tv_weight=0.1
    ).double()
    pred = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: loss(p, target), (pred,))


# -- fixed style target ----------------------------------------------------------------------


def style_terms(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in terms.items() if k.startswith("style.")}


def test_set_style_target_fixes_the_style_term() -> None:
    loss = make(feature_layers=["relu1_1"], style_layers={"relu1_1": 1.0, "relu2_1": 2.0}, reduction="none")
    pred = torch.rand(3, 3, 16, 16)
    style = torch.rand(1, 3, 16, 16)
    target_a, target_b = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    reference = loss.terms(pred, style.expand(3, -1, -1, -1).contiguous())
    uncached_a = loss.terms(pred, target_a)

    loss.set_style_target(style)
    cached_a, cached_b = loss.terms(pred, target_a), loss.terms(pred, target_b)
    for name, value in style_terms(reference).items():
        torch.testing.assert_close(cached_a[name], value, msg=name)
        torch.testing.assert_close(cached_b[name], value, msg=name)
    # The feature term still follows the target passed.
    torch.testing.assert_close(cached_a["feature.relu1_1"], uncached_a["feature.relu1_1"])
    assert not torch.allclose(cached_a["feature.relu1_1"], cached_b["feature.relu1_1"], rtol=1e-3, atol=0)

    loss.clear_style_target()
    restored = loss.terms(pred, target_a)
    for name in style_terms(reference):
        torch.testing.assert_close(restored[name], uncached_a[name], msg=name)
        assert not torch.allclose(restored[name], reference[name], rtol=1e-3, atol=0)


def test_style_target_may_differ_in_size() -> None:
    loss = make(style_layers=["relu1_1", "relu2_1"])
    pred, style = torch.rand(2, 3, 16, 16), torch.rand(1, 3, 24, 24)
    loss.set_style_target(style)
    terms = loss.terms(pred)
    fp, fs = loss.extractor(pred), loss.extractor(style)
    for name in ("relu1_1", "relu2_1"):
        torch.testing.assert_close(terms[f"style.{name}"], style_loss(fp[name], fs[name]))


def test_cached_style_with_tv_needs_no_target_and_one_pass() -> None:
    loss = make(style_layers=["relu2_1"], tv_weight=0.5)
    loss.set_style_target(torch.rand(1, 3, 16, 16))
    counter = CallCounter(loss)
    pred = torch.rand(2, 3, 16, 16)
    terms = loss.terms(pred)
    assert list(terms) == ["style.relu2_1", "tv", "total"]
    assert counter.calls == 1
    # A target passed anyway is not run through the network when nothing uses its features.
    torch.testing.assert_close(loss.terms(pred, torch.rand(2, 3, 16, 16))["total"], terms["total"])
    assert counter.calls == 2


def test_cached_style_with_features_runs_two_passes() -> None:
    loss = make(feature_layers=["relu1_1"], style_layers=["relu2_1"])
    loss.set_style_target(torch.rand(1, 3, 16, 16))
    counter = CallCounter(loss)
    loss(*images())
    assert counter.calls == 2


def test_cached_style_target_batch_must_fit() -> None:
    loss = make(style_layers=["relu1_1"])
    loss.set_style_target(torch.rand(2, 3, 16, 16))
    with pytest.raises(InputError, match="style target has batch 2"):
        loss(torch.rand(3, 3, 16, 16))


# -- input conventions -----------------------------------------------------------------------


@pytest.mark.parametrize(("input_range", "scale", "shift"), [((0, 255), 255.0, 0.0), ((-1, 1), 2.0, -1.0)])
def test_input_range_gives_the_same_network_terms(input_range: tuple[int, int], scale: float, shift: float) -> None:
    base = make(**FULL, criterion="mse")
    other = same_network(base, **FULL, criterion="mse", input_range=input_range)
    pred, target = images()
    a = base.terms(pred, target)
    b = other.terms(pred * scale + shift, target * scale + shift)
    for name in ("feature.relu1_1", "feature.relu2_1", "style.relu1_1", "style.relu2_1"):
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-6, msg=name)
    # Pixel and TV terms are taken on the images as given, in input_range.
    torch.testing.assert_close(b["pixel"], scale**2 * a["pixel"], rtol=1e-4, atol=0)
    torch.testing.assert_close(b["tv"], scale * a["tv"], rtol=1e-4, atol=0)


def test_input_range_with_pretrained_caffe_preprocessing(hed_weights: Any) -> None:
    """HED weights use BGR, 0-255 Caffe preprocessing: every input_range must reach the same network input."""
    kwargs = {"feature_layers": ["relu1_2"], "style_layers": ["relu1_2"]}
    base = PerceptualLoss("vgg16", weights=hed_weights, **kwargs)
    scaled = PerceptualLoss("vgg16", weights=hed_weights, input_range=(0, 255), **kwargs)
    pred, target = images(1, 3, 16)
    a, b = base.terms(pred, target), scaled.terms(pred * 255, target * 255)
    for name in ("feature.relu1_2", "style.relu1_2"):
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=0, msg=name)


def test_pretrained_features_rank_a_small_perturbation_below_an_unrelated_image(hed_weights: Any) -> None:
    loss = PerceptualLoss("vgg16", weights=hed_weights, feature_layers=["relu2_2"])
    torch.manual_seed(3)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8), size=32, mode="bilinear", align_corners=False)
    noisy = (base + 0.02 * torch.randn_like(base)).clamp(0, 1)
    unrelated = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8), size=32, mode="bilinear", align_corners=False)
    assert loss(base, noisy).item() < 0.5 * loss(base, unrelated).item()


def test_single_channel_equals_its_rgb_repetition() -> None:
    loss = make(**FULL, reduction="none")
    pred, target = images(2, 1)
    gray = loss.terms(pred, target)
    rgb = loss.terms(pred.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1))
    for name in FULL_KEYS:
        torch.testing.assert_close(gray[name], rgb[name], msg=name)


def test_single_channel_with_bgr_pretrained(hed_weights: Any) -> None:
    loss = PerceptualLoss("vgg16", weights=hed_weights, feature_layers=["relu1_2"], style_layers=["relu1_2"])
    pred, target = images(1, 1)
    gray = loss.terms(pred, target)
    rgb = loss.terms(pred.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1))
    for name in gray:
        torch.testing.assert_close(gray[name], rgb[name], msg=name)


def test_pixel_and_tv_only_loss_has_no_network() -> None:
    loss = make(pixel_weight=2.0, tv_weight=0.5, criterion="l1")
    assert loss.extractor is None
    pred, target = images()
    terms = loss.terms(pred, target)
    torch.testing.assert_close(terms["pixel"], 2.0 * pixel_loss(pred, target, "l1"))
    torch.testing.assert_close(terms["tv"], 0.5 * total_variation(pred))
