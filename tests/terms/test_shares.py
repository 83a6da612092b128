"""Recipes in shares: calibration on HED's VGG16 and on a random-init VGG16, and clear errors for bad shares."""

import pytest
import torch
import torch.nn.functional as F

from lossnet.errors import InputError
from lossnet.losses import PerceptualLoss
from lossnet.losses.shares import balance_shares, merge_shares, with_shared_families
from lossnet.terms.shares import check_shares, family_of_key


def _images(size=48):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, size, size, generator=g)
    target = F.avg_pool2d(target, 3, 1, 1)  # some structure for the trunk to see
    pred = (target + 0.2 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1)
    return pred, target


def _independent_shares(loss, pred, target):
    """Each family's value and gradient share, measured here with autograd, not with lossnet.terms.shares."""
    x = pred.clone().requires_grad_(True)
    terms = {k: v for k, v in loss.terms(x, target).items() if k != "total"}
    values, grads = {}, {}
    for key, v in terms.items():
        (g,) = torch.autograd.grad(v, x, retain_graph=True)
        fam = family_of_key(key)
        values[fam] = values.get(fam, 0.0) + float(v.detach())
        grads[fam] = grads.get(fam, 0) + g.double()
    norms = {k: float(g.norm()) for k, g in grads.items()}
    return {k: v / sum(values.values()) for k, v in values.items()}, {k: v / sum(norms.values()) for k, v in norms.items()}


TRUNKS = ["hed", None]  # HED's VGG16 (offline) and a seeded random-init VGG16 (no file)


@pytest.mark.parametrize("weights", TRUNKS, ids=["hed", "random"])
@pytest.mark.parametrize("rule", ["gradient", "value"])
def test_shares_within_10_percent_at_calibration(weights, rule):
    torch.manual_seed(0)
    loss = PerceptualLoss(
        "vgg16", weights=weights, feature_layers={"relu2_2": 1.0, "relu3_3": 0.5},
        style_layers=["relu1_2", "relu3_3"], pixel_weight=1.0, tv_weight=1.0, compute_dtype="fp32",
    )  # fmt: skip
    pred, target = _images()
    shares = {"feature": 0.5, "style": 0.3, "pixel": 0.15, "tv": 0.05}
    balance = loss.calibrate(pred, target, shares, rule=rule)
    value, gradient = _independent_shares(loss, pred, target)
    measured = gradient if rule == "gradient" else value
    for family, share in shares.items():
        assert abs(measured[family] - share) <= 0.1 * share, (family, measured, balance.weights)
    # within a family the layers keep their ratio (2:1 for the feature layers)
    assert loss.feature_layers["relu2_2"] == pytest.approx(2 * loss.feature_layers["relu3_3"])


def test_calibration_keeps_the_total_and_balance_shares_leaves_the_loss_alone():
    torch.manual_seed(0)
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], pixel_weight=1.0)
    pred, target = _images(32)
    before = float(loss(pred, target))
    balance = balance_shares(loss, pred, target, {"feature": 1, "pixel": 3})
    assert loss.pixel_weight == 1.0 and balance.shares == {"pixel": 0.75, "feature": 0.25}
    loss.reweight(balance.weights)
    assert float(loss(pred, target)) == pytest.approx(before, rel=1e-4)
    assert loss.pixel_weight == balance.keywords["pixel_weight"]
    rebuilt = PerceptualLoss("vgg11", weights=None, **balance.keywords)
    rebuilt.load_state_dict(loss.state_dict())
    assert float(rebuilt(pred, target)) == pytest.approx(before, rel=1e-4)


def test_zero_share_turns_a_family_off():
    torch.manual_seed(0)
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], pixel_weight=1.0)
    pred, target = _images(32)
    loss.calibrate(pred, target, {"feature": 1.0, "pixel": 0.0})
    assert loss.pixel_weight == 0.0 and loss.feature_layers["relu2_1"] > 0


@pytest.mark.parametrize(
    "shares, match",
    [
        ({"feature": -0.5, "pixel": 1.0}, "finite number >= 0"),
        ({"feature": 0.0, "pixel": 0.0}, "every share is 0"),
        ({"featur": 1.0, "pixel": 1.0}, "Did you mean 'feature'"),
        ({"feature": 1.0}, "no share for it"),
        ({"feature": 1.0, "pixel": 1.0, "tv": 1.0}, "no terms of"),
        ({"feature": float("nan"), "pixel": 1.0}, "finite number"),
        ({}, "non-empty"),
    ],
)
def test_bad_shares_are_clear_errors(shares, match):
    torch.manual_seed(0)
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], pixel_weight=1.0)
    pred, target = _images(32)
    with pytest.raises(InputError, match=match):
        loss.calibrate(pred, target, shares)


def test_a_family_that_pulls_nothing_cannot_be_given_a_share():
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], pixel_weight=1.0)
    _, target = _images(32)
    with pytest.raises(InputError, match="calibrate on a prediction that differs"):
        loss.calibrate(target, target, {"feature": 1.0, "pixel": 1.0})


def test_shares_helpers():
    assert check_shares({"feature": 3, "style": 1}, ["feature", "style"]) == {"feature": 0.75, "style": 0.25}
    kwargs = with_shared_families({"feature_layers": {"relu2_2": 1.0}}, {"feature": 1, "pixel": 1})
    assert kwargs["pixel_weight"] == 1.0
    with pytest.raises(InputError, match="style_layers"):
        with_shared_families({"feature_layers": {"relu2_2": 1.0}}, {"style": 1})
    with pytest.raises(InputError, match="--feature-share"):
        merge_shares(None, {}, {"feature_layers": {"relu2_2": 1.0}})


def test_gradient_shares_show_a_term_that_moves_nothing():
    # A pixel term against a target equal to the prediction has value 0; a large constant-offset-free term
    # can still have value but no gradient: here the TV of a flat image has value 0 and gradient 0 at the flat
    # image, while the feature term pulls.
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], tv_weight=1.0)
    flat = torch.full((1, 3, 32, 32), 0.5)
    shares = loss.shares(flat, _images(32)[1])
    assert shares["gradient"]["tv"] < 1e-6 and shares["gradient"]["feature.relu2_1"] > 0.999
