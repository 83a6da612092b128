"""Bad input gives a clear lossnet exception: its type, and the words that say how to fix it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import lossnet
from lossnet import FeatureExtractor, InputError, InputTypeError, LossnetError, PerceptualLoss
from lossnet.losses import get_preset, perceptual_loss_from_preset, total_variation
from lossnet.validation import check_choice, check_image, check_input_range, check_weight, suggest


def make(**kwargs: Any) -> PerceptualLoss:
    kwargs.setdefault("weights", None)
    kwargs.setdefault("feature_layers", ["relu1_1"])
    return PerceptualLoss(kwargs.pop("arch", "vgg11"), **kwargs)


@pytest.fixture(scope="module")
def loss() -> PerceptualLoss:
    return make(pixel_weight=1.0)


def img(*shape: int) -> torch.Tensor:
    return torch.rand(*shape)


# -- the image tensor ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.zeros((1, 3, 8, 8), dtype=np.float32), [[0.0]], "image.png", None])
def test_non_tensor_prediction_is_a_type_error(loss: PerceptualLoss, bad: object) -> None:
    with pytest.raises(InputTypeError, match=rf"prediction must be a torch\.Tensor.*got {type(bad).__name__}"):
        loss(bad, img(1, 3, 8, 8))  # type: ignore[arg-type]


def test_non_tensor_target_is_a_type_error(loss: PerceptualLoss) -> None:
    with pytest.raises(InputTypeError, match=r"target must be a torch\.Tensor"):
        loss(img(1, 3, 8, 8), np.zeros((1, 3, 8, 8)))  # type: ignore[arg-type]


def test_3d_tensor_suggests_unsqueeze(loss: PerceptualLoss) -> None:
    with pytest.raises(InputError, match=r"\(3, 8, 8\) \(3-D\).*unsqueeze\(0\)"):
        loss(img(3, 8, 8), img(1, 3, 8, 8))


@pytest.mark.parametrize("shape", [(8, 8), (1, 1, 3, 8, 8)])
def test_other_ranks_raise(loss: PerceptualLoss, shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"must have shape \(B, C, H, W\)") as info:
        loss(img(*shape), img(1, 3, 8, 8))
    assert "unsqueeze" not in str(info.value)


def test_channels_last_suggests_permute(loss: PerceptualLoss) -> None:
    with pytest.raises(InputError, match=r"channels-last.*permute\(0, 3, 1, 2\)"):
        loss(img(1, 8, 8, 3), img(1, 3, 8, 8))


def test_two_channels_raise(loss: PerceptualLoss) -> None:
    with pytest.raises(InputError, match=r"C in \{1, 3\}; got \(1, 2, 8, 8\)"):
        loss(img(1, 2, 8, 8), img(1, 2, 8, 8))


def test_four_channels_suggest_dropping_alpha(loss: PerceptualLoss) -> None:
    with pytest.raises(InputError, match=r"C in \{1, 3\}.*alpha.*x\[:, :3\]"):
        loss(img(1, 4, 8, 8), img(1, 3, 8, 8))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64, torch.bool])
def test_integer_dtype_raises_with_advice(loss: PerceptualLoss, dtype: torch.dtype) -> None:
    x = torch.zeros(1, 3, 8, 8, dtype=dtype)
    with pytest.raises(InputTypeError, match=rf"floating-point.*{str(dtype)}.*x\.float\(\).*divide by 255"):
        loss(x, img(1, 3, 8, 8))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["prediction", "target"])
def test_non_finite_values_raise(loss: PerceptualLoss, bad: float, where: str) -> None:
    x = img(1, 3, 8, 8)
    x[0, 1, 2, 3] = bad
    args = (x, img(1, 3, 8, 8)) if where == "prediction" else (img(1, 3, 8, 8), x)
    with pytest.raises(InputError, match=rf"{where} contains NaN or infinite values"):
        loss(*args)


def test_non_finite_values_raise_without_a_network() -> None:
    x = img(1, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN or infinite"):
        PerceptualLoss(weights=None, tv_weight=1.0)(x)


def test_0_255_image_with_unit_range_suggests_input_range(loss: PerceptualLoss) -> None:
    x = img(1, 3, 8, 8) * 255
    with pytest.raises(InputError, match=r"far outside input_range=\(0\.0, 1\.0\).*input_range=\(0(\.0)?, 255(\.0)?\)"):
        loss(x, img(1, 3, 8, 8))


def test_0_255_image_with_symmetric_range_suggests_input_range() -> None:
    with pytest.raises(InputError, match=r"input_range=\(0(\.0)?, 255(\.0)?\)"):
        make(input_range=(-1, 1))(img(1, 3, 8, 8) * 255, img(1, 3, 8, 8))


def test_small_overshoot_is_accepted(loss: PerceptualLoss) -> None:
    """A network's raw output slightly outside [0, 1] is legitimate."""
    x = img(1, 3, 8, 8) * 1.4 - 0.2
    assert torch.isfinite(loss(x, img(1, 3, 8, 8)))


def test_empty_batch_raises() -> None:
    with pytest.raises(InputError, match="empty"):
        check_image(torch.rand(0, 3, 8, 8))


def test_shape_mismatch_raises(loss: PerceptualLoss) -> None:
    with pytest.raises(InputError, match=r"same shape.*\(2, 3, 8, 8\) and \(2, 3, 8, 12\)"):
        loss(img(2, 3, 8, 8), img(2, 3, 8, 12))
    with pytest.raises(InputError, match=r"same shape.*\(2, 3, 8, 8\) and \(3, 3, 8, 8\)"):
        loss(img(2, 3, 8, 8), img(3, 3, 8, 8))
    with pytest.raises(InputError, match="same shape"):
        loss(img(2, 1, 8, 8), img(2, 3, 8, 8))


def test_image_smaller_than_the_deepest_layer_needs() -> None:
    loss = make(feature_layers=["relu1_1", "relu5_2"])
    with pytest.raises(InputError, match=r"\(8, 8\) pixels.*'relu5_2' of vgg11 needs at least 16x16"):
        loss(img(1, 3, 8, 8), img(1, 3, 8, 8))
    with pytest.raises(InputError, match=r"\(16, 15\) pixels.*16x16"):
        loss(img(1, 3, 16, 15), img(1, 3, 16, 15))
    assert torch.isfinite(loss(img(1, 3, 16, 16), img(1, 3, 16, 16)))


def test_device_mismatch_suggests_to() -> None:
    loss = make().to("meta")
    with pytest.raises(InputError, match=r"on cpu but the loss network is on meta.*\.to\("):
        loss(img(1, 3, 8, 8), img(1, 3, 8, 8))


def test_feature_extractor_validates_its_input() -> None:
    fx = FeatureExtractor("vgg11", ["relu2_1"], weights=None)
    with pytest.raises(InputError, match=r"unsqueeze\(0\)"):
        fx(img(3, 8, 8))
    with pytest.raises(InputError, match=r"\.to\("):
        fx.to("meta")(img(1, 3, 8, 8))


# -- options ---------------------------------------------------------------------------------


def test_unknown_layer_names_the_architecture() -> None:
    with pytest.raises(InputError, match=r"vgg11 has no layer 'relu9_9'.*layer_names\('vgg11'\)"):
        make(feature_layers=["relu9_9"])


def test_unknown_layer_suggests_the_closest_names() -> None:
    with pytest.raises(InputError, match=r"no layer 'relu2_3'\. Did you mean [^?]*'relu2_2'") as info:
        make(arch="vgg16", feature_layers=["relu2_3"])
    assert "relu5_3" not in str(info.value)
    with pytest.raises(InputError, match=r"Did you mean 'relu3_1'"):
        make(style_layers=["rleu3_1"])


def test_suggest_is_empty_when_nothing_is_close() -> None:
    assert suggest("zzzzzz", ["relu1_1", "conv1_1"]) == ""
    with pytest.raises(InputError) as info:
        make(feature_layers=["qqqqqqqqq"])
    assert "Did you mean" not in str(info.value)


def test_unknown_criterion_lists_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown criterion 'l2'; expected one of \['l1', 'mse', 'charbonnier'\]"):
        make(criterion="l2")


def test_unknown_reduction_lists_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown reduction 'avg'; expected one of \['none', 'mean', 'sum'\]"):
        make(reduction="avg")


def test_unknown_tv_kind_lists_valid_ones() -> None:
    with pytest.raises(InputError, match=r"\['anisotropic', 'isotropic'\]"):
        make(tv_weight=1.0, tv_kind="l2")


def test_unknown_preset_lists_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown preset 'vgg_loss'; expected one of") as info:
        perceptual_loss_from_preset("vgg_loss", weights=None)
    assert all(repr(name) in str(info.value) for name in lossnet.PRESETS)
    with pytest.raises(InputError, match="Did you mean 'gatys2016'"):
        get_preset("gatys")


def test_unknown_architecture_lists_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown architecture 'vgg17'.*'vgg11'.*'vgg19_bn'"):
        make(arch="vgg17")
    with pytest.raises(InputError, match="unknown architecture 'resnet50'"):
        FeatureExtractor("resnet50", ["relu1_1"], weights=None)


def test_unknown_architecture_raises_without_layers() -> None:
    with pytest.raises(InputError, match="unknown architecture 'vgg17'"):
        PerceptualLoss("vgg17", weights=None, pixel_weight=1.0)


@pytest.mark.parametrize("bad", [(0, 2), (0, 1, 2), (-1, 255)])
def test_unsupported_input_range_lists_valid_ones(bad: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"input_range must be"):
        make(input_range=bad)


def test_input_range_not_a_pair() -> None:
    with pytest.raises(InputError, match=r"a pair such as \(0, 1\)"):
        check_input_range(5)  # type: ignore[arg-type]


def test_non_string_choice_is_a_type_error() -> None:
    with pytest.raises(InputTypeError, match=r"criterion must be a string, one of \['l1', 'mse', 'charbonnier'\]"):
        make(criterion=None)
    with pytest.raises(InputTypeError, match="must be a string"):
        check_choice(3, ["a"], "thing")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"pixel_weight": -1.0}, "pixel_weight"),
        ({"tv_weight": -0.5}, "tv_weight"),
        ({"feature_layers": {"relu1_1": -1.0}}, "feature weight of 'relu1_1'"),
        ({"style_layers": {"relu1_1": -2.0}}, "style weight of 'relu1_1'"),
        ({"pixel_weight": float("nan")}, "pixel_weight"),
        ({"tv_weight": float("inf")}, "tv_weight"),
    ],
)
def test_negative_or_non_finite_weights_raise(kwargs: dict[str, Any], what: str) -> None:
    with pytest.raises(InputError, match=rf"{what} must be a finite number >= 0"):
        make(**kwargs)


def test_non_numeric_weight_is_a_type_error() -> None:
    with pytest.raises(InputTypeError, match="pixel_weight must be a number; got 'big'"):
        make(pixel_weight="big")
    assert check_weight(2, "w") == 2.0


def test_loss_with_no_terms_raises() -> None:
    with pytest.raises(InputError, match="no term"):
        PerceptualLoss("vgg11", weights=None)
    with pytest.raises(InputError, match="no term"):
        PerceptualLoss("vgg11", weights=None, feature_layers=[], pixel_weight=0.0, tv_weight=0.0)


@pytest.mark.parametrize(
    "kwargs", [{"pixel_weight": 1.0}, {"feature_layers": ["relu1_1"]}, {"style_layers": ["relu1_1"], "tv_weight": 1.0}]
)
def test_missing_target_raises(kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("feature_layers", None)
    with pytest.raises(InputError, match=r"needs a target image.*set_style_target"):
        make(**kwargs)(img(1, 3, 8, 8))


def test_tv_only_loss_needs_no_target() -> None:
    x = img(1, 3, 8, 8)
    torch.testing.assert_close(make(feature_layers=None, tv_weight=1.0)(x), total_variation(x))


def test_set_style_target_without_style_layers_raises() -> None:
    with pytest.raises(InputError, match="set_style_target needs style_layers"):
        make().set_style_target(img(1, 3, 8, 8))


def test_style_target_is_validated() -> None:
    loss = make(feature_layers=None, style_layers=["relu1_1"])
    with pytest.raises(InputError, match=r"style target.*channels-last"):
        loss.set_style_target(img(1, 8, 8, 3))


# -- the exception hierarchy -----------------------------------------------------------------

RAISERS: dict[str, Callable[[], object]] = {
    "non-tensor": lambda: check_image("x"),
    "3-D": lambda: check_image(torch.rand(3, 8, 8)),
    "channels-last": lambda: check_image(torch.rand(1, 8, 8, 3)),
    "integer": lambda: check_image(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)),
    "nan": lambda: check_image(torch.full((1, 3, 2, 2), float("nan")), "x", (0.0, 1.0)),
    "range": lambda: check_image(torch.full((1, 3, 2, 2), 200.0), "x", (0.0, 1.0)),
    "layer": lambda: make(feature_layers=["relu7_1"]),
    "arch": lambda: make(arch="vgg12"),
    "criterion": lambda: make(criterion="l3"),
    "reduction": lambda: make(reduction="avg"),
    "preset": lambda: get_preset("nope"),
    "weight": lambda: make(pixel_weight=-1),
    "weight type": lambda: make(pixel_weight=object()),
    "no terms": lambda: PerceptualLoss("vgg11", weights=None),
    "no target": lambda: make()(torch.rand(1, 3, 8, 8)),
    "too small": lambda: make(feature_layers=["relu5_2"])(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)),
    "device": lambda: make().to("meta")(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)),
    "gram": lambda: lossnet.gram_matrix(torch.rand(2, 2)),
}


@pytest.mark.parametrize("case", list(RAISERS))
def test_every_error_is_a_lossnet_error_and_a_builtin(case: str) -> None:
    with pytest.raises(LossnetError) as info:
        RAISERS[case]()
    assert isinstance(info.value, (ValueError, TypeError))
    assert isinstance(info.value, TypeError) == isinstance(info.value, InputTypeError)
    assert str(info.value)


def test_exception_classes() -> None:
    assert issubclass(InputError, LossnetError) and issubclass(InputError, ValueError)
    assert issubclass(InputTypeError, LossnetError) and issubclass(InputTypeError, TypeError)
    assert issubclass(lossnet.WeightsError, ValueError)
    assert issubclass(lossnet.WeightsUnavailableError, FileNotFoundError)
    assert issubclass(lossnet.WeightsUnavailableError, LossnetError)
