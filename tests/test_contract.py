"""The contract of every (function, Module) pair, in one table.

For each pair and each of its options: the module equals the function for every reduction and
with the defaults; ``'none'`` gives ``(B,)`` and ``'mean'``/``'sum'`` agree with it; identical inputs
give the pair's identity value (0 for a loss); the batch equals the samples one by one; float64
gradcheck. Known values and independent references stay in each family's own test file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from lossnet.functional import CRITERIA, REDUCTIONS, TV_KINDS
from lossnet.losses import FeatureLoss, PixelLoss, StyleLoss, TotalVariation, feature_loss, pixel_loss, style_loss
from lossnet.losses import total_variation as tv_function
from lossnet.metrics import PSNR, SSIM, psnr, ssim

Inputs = Callable[[int, torch.dtype], tuple[torch.Tensor, ...]]


def _pair(shape: tuple[int, ...], randn: bool = False, target_shape: tuple[int, ...] | None = None) -> Inputs:
    def make(b: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        draw = torch.randn if randn else torch.rand
        return draw(b, *shape, dtype=dtype), draw(b, *(target_shape or shape), dtype=dtype)

    return make


def _image(shape: tuple[int, ...]) -> Inputs:
    return lambda b, dtype: (torch.rand(b, *shape, dtype=dtype),)


def _same(inputs: Inputs) -> Inputs:
    """Identical inputs: the target a copy of the prediction; a constant image for a one-input function."""

    def make(b: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        first = inputs(b, dtype)[0]
        if len(inputs(1, dtype)) == 1:
            return (torch.full_like(first, 0.3),)
        return first, first.clone()

    return make


@dataclass(frozen=True)
class Pair:
    name: str
    function: Callable[..., torch.Tensor]
    module: type[nn.Module]
    inputs: Inputs
    options: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    identity: float = 0.0
    gradcheck_inputs: Inputs | None = None  # smaller, for gradcheck

    def __str__(self) -> str:
        return self.name


PAIRS = [
    Pair("pixel", pixel_loss, PixelLoss, _pair((3, 5, 4)), [{"criterion": c} for c in CRITERIA]),
    Pair("feature", feature_loss, FeatureLoss, _pair((4, 5, 5), randn=True), [{"criterion": c} for c in CRITERIA]),
    Pair(
        "style",
        style_loss,
        StyleLoss,
        _pair((3, 4, 4), randn=True, target_shape=(3, 5, 5)),
        [{"criterion": c} for c in CRITERIA],
        gradcheck_inputs=_pair((3, 2, 3), randn=True, target_shape=(3, 3, 3)),
    ),
    Pair("tv", tv_function, TotalVariation, _image((3, 6, 5)), [{"kind": k, "eps": 0.01} for k in TV_KINDS]),
    Pair(
        "psnr",
        psnr,
        PSNR,
        _pair((3, 8, 8)),
        [{}, {"y_channel": True, "shave": 1}, {"data_range": 2.0}],
        identity=math.inf,
    ),
    Pair(
        "ssim",
        ssim,
        SSIM,
        _pair((3, 14, 13)),
        [{}, {"y_channel": True, "shave": 1}],
        identity=1.0,
        gradcheck_inputs=_pair((3, 13, 13)),
    ),
]
CASES = [
    pytest.param(p, o, id=f"{p.name}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'defaults'}")
    for p in PAIRS
    for o in p.options
]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("pair", "options"), CASES)
def test_module_equals_function(pair: Pair, options: dict[str, Any], reduction: str) -> None:
    args = pair.inputs(2, torch.float32)
    expected = pair.function(*args, **options, reduction=reduction)
    torch.testing.assert_close(pair.module(**options, reduction=reduction)(*args), expected, rtol=0, atol=0)


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_module_defaults_are_the_function_defaults(pair: Pair) -> None:
    args = pair.inputs(2, torch.float32)
    torch.testing.assert_close(pair.module()(*args), pair.function(*args), rtol=0, atol=0)


@pytest.mark.parametrize(("pair", "options"), CASES)
def test_reductions_agree_with_per_sample_values(pair: Pair, options: dict[str, Any]) -> None:
    args = pair.inputs(4, torch.float32)
    none = pair.function(*args, **options, reduction="none")
    assert none.shape == (4,)
    for reduction, expected in (("mean", none.mean()), ("sum", none.sum())):
        got = pair.function(*args, **options, reduction=reduction)
        assert got.shape == ()
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("pair", "options"), CASES)
def test_identical_inputs_give_the_identity(pair: Pair, options: dict[str, Any], dtype: torch.dtype) -> None:
    out = pair.function(*_same(pair.inputs)(3, dtype), **options, reduction="none")
    assert out.dtype == dtype
    if math.isinf(pair.identity):
        assert torch.isinf(out).all() and (out > 0).all()
    else:
        torch.testing.assert_close(out, torch.full((3,), pair.identity, dtype=dtype), rtol=0, atol=1e-15)


@pytest.mark.parametrize(("pair", "options"), CASES)
def test_batched_equals_per_sample(pair: Pair, options: dict[str, Any]) -> None:
    args = pair.inputs(3, torch.float32)
    batched = pair.function(*args, **options, reduction="none")
    single = torch.cat([pair.function(*(a[i : i + 1] for a in args), **options, reduction="none") for i in range(3)])
    torch.testing.assert_close(batched, single)


@pytest.mark.parametrize(("pair", "options"), CASES)
def test_float64_gradcheck(pair: Pair, options: dict[str, Any]) -> None:
    first, *rest = (pair.gradcheck_inputs or pair.inputs)(2, torch.float64)
    if pair.name == "psnr":  # keep the MSE away from 0, where log10 has no derivative to check
        rest = [(first + 0.3).clamp(0, 1)]
    first.requires_grad_(True)
    # fast_mode checks the Jacobian along random directions: the full check of SSIM takes a minute.
    fn = lambda a: pair.function(a, *rest, **options, reduction="mean")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (first,), fast_mode=True)
