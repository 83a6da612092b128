from __future__ import annotations

import torch

from lossnet import FeatureExtractor, PerceptualLoss
from lossnet.explore.maps import feature_difference_maps


def test_map_means_equal_the_mse_feature_terms() -> None:
    layers = {"relu1_1": 1.0, "relu2_1": 1.0}
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=layers)
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    maps = feature_difference_maps(loss.extractor, pred, target)
    assert maps["relu1_1"].shape == (2, 1, 32, 32) and maps["relu2_1"].shape == (2, 1, 16, 16)
    terms = loss.terms(pred, target)
    for name in layers:
        torch.testing.assert_close(maps[name].mean(), terms[f"feature.{name}"])


def test_identical_images_give_zero_maps() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    x = torch.rand(1, 3, 8, 8)
    assert float(feature_difference_maps(fx, x, x)["relu1_1"].abs().max()) == 0.0
