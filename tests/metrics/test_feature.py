"""feature_distance / FeatureDistance: known values on a toy backbone, and the VGG extractor."""

from __future__ import annotations

import pytest
import torch

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.errors import InputError, InputTypeError
from lossnet.metrics import FeatureDistance, feature_distance


# -- feature distance ------------------------------------------------------------------------------


def toy_backbone(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """A 'backbone' with known features: the image itself and its 2x2 average pooling."""
    return {"pixels": x, "pooled": torch.nn.functional.avg_pool2d(x, 2)}


def test_feature_distance_any_backbone_known_value() -> None:
    x, y = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    y[0] = 1.0  # sample 0 differs by 1 everywhere: MSE 1 on both layers; sample 1 is identical
    got = feature_distance(x, y, toy_backbone, {"pixels": 2.0, "pooled": 0.5}, reduction="none")
    torch.testing.assert_close(got, torch.tensor([2.5, 0.0]))
    all_layers = feature_distance(x, y, toy_backbone, reduction="sum")
    torch.testing.assert_close(all_layers, torch.tensor(2.0))
    l1 = feature_distance(x, y * 3, toy_backbone, ["pooled"], criterion="l1", reduction="none")
    torch.testing.assert_close(l1, torch.tensor([3.0, 0.0]))


def test_feature_distance_errors() -> None:
    x = torch.rand(1, 1, 4, 4)
    with pytest.raises(InputError, match=r"returned layers \['pixels', 'pooled'\]; cannot take \['relu2_2'\]"):
        feature_distance(x, x, toy_backbone, ["relu2_2"])
    with pytest.raises(InputTypeError, match="backbone must be a callable"):
        feature_distance(x, x, "vgg16")  # type: ignore[arg-type]


def test_feature_distance_module_equals_function_with_its_extractor() -> None:
    metric = FeatureDistance("vgg11", {"relu1_1": 1.0, "relu2_1": 0.25}, weights=None, reduction="none")
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    expected = feature_distance(x, y, metric.extractor, {"relu1_1": 1.0, "relu2_1": 0.25}, reduction="none")
    torch.testing.assert_close(metric(x, y), expected)
    fx, fy = metric.extractor(x), metric.extractor(y)
    by_hand = ((fx["relu1_1"] - fy["relu1_1"]) ** 2).mean((1, 2, 3)) + 0.25 * (
        (fx["relu2_1"] - fy["relu2_1"]) ** 2
    ).mean((1, 2, 3))
    torch.testing.assert_close(metric(x, y), by_hand)




def test_feature_extractor_is_a_feature_distance_backbone() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    x = torch.rand(1, 3, 16, 16)
    assert float(feature_distance(x, x.flip(-1), fx)) > 0
