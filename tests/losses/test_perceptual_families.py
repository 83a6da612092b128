"""Contextual, MRF and focal-frequency terms inside PerceptualLoss: one backbone pass shared with the others."""

import pytest
import torch

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.errors import InputError
from lossnet.functional.contextual import contextual_loss
from lossnet.functional.focal_frequency import focal_frequency_loss
from lossnet.functional.mrf import mrf_loss, style_patches
from lossnet.losses import PerceptualLoss
from lossnet.functional.criteria import distance


def _loss(**kwargs):
    torch.manual_seed(0)
    return PerceptualLoss("vgg11", weights=None, **kwargs)


def test_terms_equal_the_functions_on_the_extractors_features():
    loss = _loss(feature_layers={"relu2_1": 2.0}, contextual_layers={"relu2_1": 0.5}, mrf_layers={"relu1_1": 3.0},
                 focal_frequency_weight=4.0)
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    style = torch.rand(1, 3, 20, 20, generator=g)
    loss.set_style_target(style)
    terms = loss.terms(pred, target)
    assert list(terms) == ["feature.relu2_1", "contextual.relu2_1", "mrf.relu1_1", "focal_frequency", "total"]
    fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
    fx.load_state_dict(loss.extractor.state_dict())
    with torch.no_grad():
        fp, ft, fs = fx(pred), fx(target), fx(style)
    expected = {
        "feature.relu2_1": 2.0 * distance(fp["relu2_1"], ft["relu2_1"]),
        "contextual.relu2_1": 0.5 * contextual_loss(fp["relu2_1"], ft["relu2_1"]),
        "mrf.relu1_1": 3.0 * mrf_loss(fp["relu1_1"], style_patches(fs["relu1_1"])),
        "focal_frequency": 4.0 * focal_frequency_loss(pred, target),
    }
    for key, value in expected.items():
        torch.testing.assert_close(terms[key], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["total"], sum(expected.values()))


def test_one_pass_per_image_and_the_target_cut():
    loss = _loss(contextual_layers=["relu1_1"], mrf_layers=["relu2_1"])
    loss.set_style_target(torch.rand(1, 3, 16, 16))
    calls = []
    loss.extractor.register_forward_hook(lambda m, args, out: calls.append(sorted(out)))
    loss(torch.rand(1, 3, 16, 16, requires_grad=True), torch.rand(1, 3, 16, 16)).backward()
    # The prediction's pass reads both layers; the target's stops at relu1_1 (MRF has the fixed style's patches).
    assert calls == [["relu1_1", "relu2_1"], ["relu1_1"]]


def test_focal_frequency_alone_needs_no_network():
    loss = PerceptualLoss(weights=None, focal_frequency_weight=1.0)
    assert loss.extractor is None
    x = torch.rand(1, 3, 8, 8)
    assert float(loss(x, x)) == 0.0


def test_mrf_without_a_fixed_style_takes_a_batch_one_target():
    loss = _loss(mrf_layers=["relu1_1"])
    pred = torch.rand(2, 3, 12, 12)
    assert loss(pred, torch.rand(1, 3, 12, 12)).shape == ()
    with pytest.raises(InputError, match="patches of one style image"):
        loss(pred, torch.rand(2, 3, 12, 12))


def test_gradients_reach_the_prediction():
    loss = _loss(contextual_layers=["relu1_1"], mrf_layers=["relu1_1"], focal_frequency_weight=1.0)
    loss.set_style_target(torch.rand(1, 3, 16, 16))
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(pred, torch.rand(1, 3, 16, 16)).backward()
    assert bool(torch.isfinite(pred.grad).all()) and float(pred.grad.abs().sum()) > 0


def test_bf16_trunk_keeps_every_family_within_five_percent_of_fp32():
    """Under bf16 the trunk runs in bf16; contextual, MRF and focal frequency compare in float32."""
    torch.manual_seed(0)
    from lossnet.backbones.vgg import VGG
    from lossnet.backbones.weights import LoadedWeights
    from lossnet.backbones.preprocessing import TORCH

    weights = LoadedWeights("random", "random vgg16", TORCH, dict(VGG("vgg16").state_dict()))
    kwargs = dict(contextual_layers={"relu2_2": 1.0}, mrf_layers={"relu3_3": 1.0}, focal_frequency_weight=1.0)
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 3, 48, 48, generator=g), torch.rand(2, 3, 48, 48, generator=g)
    style = torch.rand(1, 3, 48, 48, generator=g)
    values = []
    for dtype in (None, torch.bfloat16):
        loss = PerceptualLoss("vgg16", weights, reduction="none", compute_dtype=dtype, **kwargs)
        loss.set_style_target(style)
        with torch.no_grad():
            values.append(loss.terms(x, y))
    for key in ("contextual.relu2_2", "mrf.relu3_3", "focal_frequency"):
        assert values[1][key].dtype == torch.float32
        torch.testing.assert_close(values[1][key], values[0][key], rtol=0.05, atol=0)
