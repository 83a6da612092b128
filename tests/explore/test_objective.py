from __future__ import annotations

import pytest
import torch

from lossnet import FeatureExtractor, PerceptualLoss
from lossnet.errors import InputError
from lossnet.explore.objective import ImageObjective


def test_terms_equal_the_perceptual_loss_terms_with_the_same_weights() -> None:
    content, style, x = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    loss = PerceptualLoss("vgg11", None, feature_layers={"relu2_1": 2.0}, style_layers={"relu1_1": 5.0}, tv_weight=0.5)
    loss.set_style_target(style)
    fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
    fx.load_state_dict(loss.extractor.state_dict())
    objective = ImageObjective(fx, content, {"relu2_1": 2.0}, style, {"relu1_1": 5.0}, tv_weight=0.5)
    expected = loss.terms(x, content)
    got = objective(x)
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


def test_zero_at_the_content_image_and_gradients_reach_the_pixels() -> None:
    fx = FeatureExtractor("vgg11", ["relu2_1"], weights=None)
    content = torch.rand(1, 3, 16, 16)
    objective = ImageObjective(fx, content, {"relu2_1": 1.0})
    assert float(objective(content)["total"]) == 0.0
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    objective(x)["total"].backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_missing_layers_targets_or_sizes_are_clear_errors() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    with pytest.raises(InputError, match="does not return"):
        ImageObjective(fx, torch.rand(1, 3, 8, 8), {"relu2_1": 1.0})
    with pytest.raises(InputError, match="need a style image"):
        ImageObjective(fx, style_layers={"relu1_1": 1.0})
    objective = ImageObjective(fx, torch.rand(1, 3, 8, 8), {"relu1_1": 1.0})
    with pytest.raises(InputError, match="resize it"):
        objective(torch.rand(1, 3, 8, 12))
