"""Bad input gives a clear lossnet exception: its type, and the words that say how to fix it.

One table per ``check_*`` of :mod:`lossnet.validation` (each case reaches the check through the
public call a user makes, or calls it directly), then one for the loss's own checks: an
:class:`Err` names the call, the exception class, the words of the message (a regex) and words
that must not be in it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import lossnet
from lossnet import FeatureExtractor, InputError, InputTypeError, LossnetError, PerceptualLoss
from lossnet.losses import get_preset, perceptual_loss_from_preset, total_variation
from lossnet.validation import (
    check_choice,
    check_image,
    check_input_range,
    check_model_input,
    check_positive_int,
    check_tensor,
    check_weight,
    suggest,
)


def make(**kwargs: Any) -> PerceptualLoss:
    kwargs.setdefault("weights", None)
    kwargs.setdefault("feature_layers", ["relu1_1"])
    return PerceptualLoss(kwargs.pop("arch", "vgg11"), **kwargs)


@functools.cache
def loss() -> PerceptualLoss:
    """One pixel + relu1_1 loss shared by the cases (checks only, nothing is trained)."""
    return make(pixel_weight=1.0)


def img(*shape: int) -> torch.Tensor:
    return torch.rand(*shape)


def with_value(value: float, at: tuple[int, ...] = (0, 1, 2, 3)) -> torch.Tensor:
    x = img(1, 3, 8, 8)
    x[at] = value
    return x


@dataclass
class Err:
    id: str
    call: Callable[[], object]
    exc: type[Exception]
    match: str  # a regex the message must contain
    absent: tuple[str, ...] = ()  # words the message must not contain


def raises(case: Err) -> None:
    with pytest.raises(case.exc, match=case.match) as info:
        case.call()
    for text in case.absent:
        assert text not in str(info.value)


def table(cases: list[Err]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


# -- check_image -------------------------------------------------------------------------------

CHECK_IMAGE = [
    *(
        Err(f"prediction-{type(bad).__name__}", lambda bad=bad: loss()(bad, img(1, 3, 8, 8)), InputTypeError,
            rf"prediction must be a torch\.Tensor.*got {type(bad).__name__}")
        for bad in (np.zeros((1, 3, 8, 8), dtype=np.float32), [[0.0]], "image.png", None)
    ),
    Err("target-ndarray", lambda: loss()(img(1, 3, 8, 8), np.zeros((1, 3, 8, 8))), InputTypeError,
        r"target must be a torch\.Tensor"),
    Err("3-D-suggests-unsqueeze", lambda: loss()(img(3, 8, 8), img(1, 3, 8, 8)), InputError,
        r"\(3, 8, 8\) \(3-D\).*unsqueeze\(0\)"),
    *(
        Err(f"{len(shape)}-D", lambda shape=shape: loss()(img(*shape), img(1, 3, 8, 8)), InputError,
            r"must have shape \(B, C, H, W\)", absent=("unsqueeze",))
        for shape in ((8, 8), (1, 1, 3, 8, 8))
    ),
    Err("channels-last-suggests-permute", lambda: loss()(img(1, 8, 8, 3), img(1, 3, 8, 8)), InputError,
        r"channels-last.*permute\(0, 3, 1, 2\)"),
    Err("two-channels", lambda: loss()(img(1, 2, 8, 8), img(1, 2, 8, 8)), InputError,
        r"C in \{1, 3\}; got \(1, 2, 8, 8\)"),
    Err("four-channels-suggest-dropping-alpha", lambda: loss()(img(1, 4, 8, 8), img(1, 3, 8, 8)), InputError,
        r"C in \{1, 3\}.*alpha.*x\[:, :3\]"),
    *(
        Err(f"integer-{dtype}", lambda dtype=dtype: loss()(torch.zeros(1, 3, 8, 8, dtype=dtype), img(1, 3, 8, 8)),
            InputTypeError, rf"floating-point.*{str(dtype)}.*x\.float\(\).*divide by 255")
        for dtype in (torch.uint8, torch.int32, torch.int64, torch.bool)
    ),
    *(
        Err(f"{bad}-in-{where}",
            lambda bad=bad, where=where: loss()(*((with_value(bad), img(1, 3, 8, 8))[:: 1 if where == "prediction" else -1])),
            InputError, rf"{where} contains NaN or infinite values")
        for bad in (float("nan"), float("inf"), float("-inf"))
        for where in ("prediction", "target")
    ),
    Err("nan-without-a-network", lambda: PerceptualLoss(weights=None, tv_weight=1.0)(with_value(float("nan"), (0, 0, 0, 0))),
        InputError, "NaN or infinite"),
    Err("0-255-with-unit-range", lambda: loss()(img(1, 3, 8, 8) * 255, img(1, 3, 8, 8)), InputError,
        r"far outside input_range=\(0\.0, 1\.0\).*input_range=\(0(\.0)?, 255(\.0)?\)"),
    Err("0-255-with-symmetric-range", lambda: make(input_range=(-1, 1))(img(1, 3, 8, 8) * 255, img(1, 3, 8, 8)),
        InputError, r"input_range=\(0(\.0)?, 255(\.0)?\)"),
    Err("empty-batch", lambda: check_image(torch.rand(0, 3, 8, 8)), InputError, "empty"),
    Err("extractor-3-D", lambda: FeatureExtractor("vgg11", ["relu2_1"], weights=None)(img(3, 8, 8)), InputError,
        r"unsqueeze\(0\)"),
]  # fmt: skip


@table(CHECK_IMAGE)
def test_check_image(case: Err) -> None:
    raises(case)


def test_small_overshoot_is_accepted() -> None:
    """A network's raw output slightly outside [0, 1] is legitimate."""
    x = img(1, 3, 8, 8) * 1.4 - 0.2
    assert torch.isfinite(loss()(x, img(1, 3, 8, 8)))


# -- check_same_shape --------------------------------------------------------------------------

CHECK_SAME_SHAPE = [
    Err("width", lambda: loss()(img(2, 3, 8, 8), img(2, 3, 8, 12)), InputError,
        r"same shape.*\(2, 3, 8, 8\) and \(2, 3, 8, 12\)"),
    Err("batch", lambda: loss()(img(2, 3, 8, 8), img(3, 3, 8, 8)), InputError,
        r"same shape.*\(2, 3, 8, 8\) and \(3, 3, 8, 8\)"),
    Err("channels", lambda: loss()(img(2, 1, 8, 8), img(2, 3, 8, 8)), InputError, "same shape"),
]  # fmt: skip


@table(CHECK_SAME_SHAPE)
def test_check_same_shape(case: Err) -> None:
    raises(case)


# -- check_choice (and the layer names, which suggest the same way) -----------------------------

CHECK_CHOICE = [
    Err("criterion", lambda: make(criterion="l2"), InputError,
        r"unknown criterion 'l2'; expected one of \['l1', 'mse', 'charbonnier'\]"),
    Err("reduction", lambda: make(reduction="avg"), InputError,
        r"unknown reduction 'avg'; expected one of \['none', 'mean', 'sum'\]"),
    Err("tv-kind", lambda: make(tv_weight=1.0, tv_kind="l2"), InputError, r"\['anisotropic', 'isotropic'\]"),
    Err("preset-lists-all", lambda: perceptual_loss_from_preset("vgg_loss", weights=None), InputError,
        r"unknown preset 'vgg_loss'; expected one of.*" + ".*".join(repr(n) for n in lossnet.PRESETS)),
    Err("preset-suggests", lambda: get_preset("gatys"), InputError, "Did you mean 'gatys2016'"),
    Err("arch", lambda: make(arch="vgg17"), InputError, r"unknown architecture 'vgg17'.*'vgg11'.*'vgg19_bn'"),
    Err("arch-of-an-extractor", lambda: FeatureExtractor("resnet50", ["relu1_1"], weights=None), InputError,
        "unknown architecture 'resnet50'"),
    Err("arch-without-layers", lambda: PerceptualLoss("vgg17", weights=None, pixel_weight=1.0), InputError,
        "unknown architecture 'vgg17'"),
    Err("not-a-string", lambda: make(criterion=None), InputTypeError,
        r"criterion must be a string, one of \['l1', 'mse', 'charbonnier'\]"),
    Err("not-a-string-direct", lambda: check_choice(3, ["a"], "thing"), InputTypeError, "must be a string"),  # type: ignore[arg-type]
    Err("layer-names-the-arch", lambda: make(feature_layers=["relu9_9"]), InputError,
        r"vgg11 has no layer 'relu9_9'.*layer_names\('vgg11'\)"),
    Err("layer-suggests-the-closest", lambda: make(arch="vgg16", feature_layers=["relu2_3"]), InputError,
        r"no layer 'relu2_3'\. Did you mean [^?]*'relu2_2'", absent=("relu5_3",)),
    Err("layer-typo", lambda: make(style_layers=["rleu3_1"]), InputError, r"Did you mean 'relu3_1'"),
    Err("layer-nothing-close", lambda: make(feature_layers=["qqqqqqqqq"]), InputError, "no layer 'qqqqqqqqq'",
        absent=("Did you mean",)),
]  # fmt: skip


@table(CHECK_CHOICE)
def test_check_choice(case: Err) -> None:
    raises(case)


def test_suggest_is_empty_when_nothing_is_close() -> None:
    assert suggest("zzzzzz", ["relu1_1", "conv1_1"]) == ""


# -- check_input_range -------------------------------------------------------------------------

CHECK_INPUT_RANGE = [
    *(Err(f"unsupported-{bad}", lambda bad=bad: make(input_range=bad), InputError, r"input_range must be")
      for bad in ((0, 2), (0, 1, 2), (-1, 255))),
    Err("not-a-pair", lambda: check_input_range(5), InputError, r"a pair such as \(0, 1\)"),  # type: ignore[arg-type]
]  # fmt: skip


@table(CHECK_INPUT_RANGE)
def test_check_input_range(case: Err) -> None:
    raises(case)


# -- check_weight ------------------------------------------------------------------------------

CHECK_WEIGHT = [
    *(
        Err(what, lambda kwargs=kwargs: make(**kwargs), InputError, rf"{what} must be a finite number >= 0")
        for kwargs, what in (
            ({"pixel_weight": -1.0}, "pixel_weight"),
            ({"tv_weight": -0.5}, "tv_weight"),
            ({"feature_layers": {"relu1_1": -1.0}}, "feature weight of 'relu1_1'"),
            ({"style_layers": {"relu1_1": -2.0}}, "style weight of 'relu1_1'"),
            ({"pixel_weight": float("nan")}, "pixel_weight"),
            ({"tv_weight": float("inf")}, "tv_weight"),
        )
    ),
    Err("not-a-number", lambda: make(pixel_weight="big"), InputTypeError, "pixel_weight must be a number; got 'big'"),
]  # fmt: skip


@table(CHECK_WEIGHT)
def test_check_weight(case: Err) -> None:
    raises(case)


def test_check_weight_returns_a_float() -> None:
    assert check_weight(2, "w") == 2.0


# -- check_tensor, check_positive_int, check_model_input ---------------------------------------

CHECK_TENSOR = [
    Err("not-a-tensor", lambda: check_tensor([1.0], "grid", 2), InputTypeError, r"grid must be a torch\.Tensor; got list"),
    Err("rank", lambda: check_tensor(torch.zeros(2, 2, 2), "grid", (2, 4)), InputError,
        r"grid must have 2 or 4 dimensions; got shape \(2, 2, 2\)"),
    Err("integer", lambda: check_tensor(torch.zeros(2, 2, dtype=torch.int64), "grid", 2), InputTypeError,
        r"floating-point tensor; got torch\.int64\. Convert it with \.float\(\)"),
]  # fmt: skip

CHECK_POSITIVE_INT = [
    Err("zero", lambda: check_positive_int(0, "steps"), InputError, "steps must be an int >= 1; got 0"),
    Err("bool", lambda: check_positive_int(True, "steps"), InputTypeError, r"steps must be an int >= 1; got True \(bool\)"),
    Err("float", lambda: check_positive_int(2.0, "steps"), InputTypeError, r"got 2\.0 \(float\)"),
]  # fmt: skip

CHECK_MODEL_INPUT = [
    Err("channels", lambda: check_model_input(img(1, 1, 8, 8), "Net", 3), InputError,
        r"Net input must have 3 channels, \(B, 3, H, W\); got \(1, 1, 8, 8\)"),
    Err("channels-last", lambda: check_model_input(img(1, 8, 8, 3), "Net", 3), InputError, r"x\.permute\(0, 3, 1, 2\)"),
    Err("multiple", lambda: check_model_input(img(1, 3, 30, 32), "Net", 3, multiple=4), InputError,
        r"multiples of 4.*x\[\.\.\., :28, :32\].*pad\(x, \(0, 0, 0, 2\), mode='reflect'\)"),
    Err("too-small", lambda: check_model_input(img(1, 3, 4, 4), "Net", 3, min_size=8), InputError,
        r"at least 8x8 pixels; got \(1, 3, 4, 4\)"),
    Err("3-D", lambda: check_model_input(img(3, 8, 8), "Net", 3), InputError, r"\(B, 3, H, W\).*unsqueeze\(0\)"),
]  # fmt: skip


@table(CHECK_TENSOR)
def test_check_tensor(case: Err) -> None:
    raises(case)


@table(CHECK_POSITIVE_INT)
def test_check_positive_int(case: Err) -> None:
    raises(case)


@table(CHECK_MODEL_INPUT)
def test_check_model_input(case: Err) -> None:
    raises(case)


# -- the loss's own checks: terms, targets, sizes, devices -------------------------------------

LOSS_CHECKS = [
    Err("too-small-8", lambda: make(feature_layers=["relu1_1", "relu5_2"])(img(1, 3, 8, 8), img(1, 3, 8, 8)),
        InputError, r"\(8, 8\) pixels.*'relu5_2' of vgg11 needs at least 16x16"),
    Err("too-small-16x15", lambda: make(feature_layers=["relu1_1", "relu5_2"])(img(1, 3, 16, 15), img(1, 3, 16, 15)),
        InputError, r"\(16, 15\) pixels.*16x16"),
    Err("device", lambda: make().to("meta")(img(1, 3, 8, 8), img(1, 3, 8, 8)), InputError,
        r"on cpu but the loss network is on meta.*\.to\("),
    Err("extractor-device", lambda: FeatureExtractor("vgg11", ["relu2_1"], weights=None).to("meta")(img(1, 3, 8, 8)),
        InputError, r"\.to\("),
    Err("no-term", lambda: PerceptualLoss("vgg11", weights=None), InputError, "no term"),
    Err("no-term-all-zero", lambda: PerceptualLoss("vgg11", weights=None, feature_layers=[], pixel_weight=0.0, tv_weight=0.0),
        InputError, "no term"),
    *(
        Err(f"missing-target-{i}", lambda kwargs=kwargs: make(**{"feature_layers": None, **kwargs})(img(1, 3, 8, 8)),
            InputError, r"needs a target image.*set_style_target")
        for i, kwargs in enumerate(
            [{"pixel_weight": 1.0}, {"feature_layers": ["relu1_1"]}, {"style_layers": ["relu1_1"], "tv_weight": 1.0}]
        )
    ),
    Err("style-target-without-style-layers", lambda: make().set_style_target(img(1, 3, 8, 8)), InputError,
        "set_style_target needs style_layers"),
    Err("style-target-validated", lambda: make(feature_layers=None, style_layers=["relu1_1"]).set_style_target(img(1, 8, 8, 3)),
        InputError, r"style target.*channels-last"),
]  # fmt: skip


@table(LOSS_CHECKS)
def test_loss_checks(case: Err) -> None:
    raises(case)


def test_an_image_as_large_as_the_deepest_layer_needs_passes() -> None:
    loss16 = make(feature_layers=["relu1_1", "relu5_2"])
    assert torch.isfinite(loss16(img(1, 3, 16, 16), img(1, 3, 16, 16)))


def test_tv_only_loss_needs_no_target() -> None:
    x = img(1, 3, 8, 8)
    torch.testing.assert_close(make(feature_layers=None, tv_weight=1.0)(x), total_variation(x))


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
