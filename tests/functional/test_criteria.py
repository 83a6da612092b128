"""elementwise / distance: l1, mse, charbonnier, with the per-sample mean and the reduction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossnet.errors import InputError
from lossnet.functional.criteria import CHARBONNIER_EPS, CRITERIA, distance, elementwise

EPS = CHARBONNIER_EPS


def numpy_elementwise(d: np.ndarray, criterion: str) -> np.ndarray:
    if criterion == "l1":
        return np.abs(d)
    if criterion == "mse":
        return d * d
    return np.sqrt(d * d + EPS * EPS) - EPS


def test_vocabulary() -> None:
    assert CRITERIA == ("l1", "mse", "charbonnier")
    assert EPS == 1e-3


@pytest.mark.parametrize(
    ("criterion", "expected"),
    [
        ("l1", [1.0, 2.0, 2.0, 0.0]),
        ("mse", [1.0, 4.0, 4.0, 0.0]),
        ("charbonnier", [math.sqrt(d * d + 1e-6) - 1e-3 for d in (1.0, 2.0, 2.0, 0.0)]),
    ],
)
def test_elementwise_known_values(criterion: str, expected: list[float]) -> None:
    x = torch.tensor([0.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(elementwise(x, y, criterion), torch.tensor(expected, dtype=torch.float64))


def test_charbonnier_between_l1_and_quadratic() -> None:
    """Charbonnier ~ |d| - eps for large |d| and ~ d^2 / (2 eps) for small |d|."""
    big = torch.tensor([5.0], dtype=torch.float64)
    small = torch.tensor([1e-5], dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    assert elementwise(big, zero, "charbonnier").item() == pytest.approx(5.0 - EPS, rel=1e-6)
    assert elementwise(small, zero, "charbonnier").item() == pytest.approx(1e-10 / (2 * EPS), rel=1e-3)
    d = torch.linspace(-3, 3, 101, dtype=torch.float64)
    c = elementwise(d, zero, "charbonnier")
    assert (c <= d.abs() + 1e-15).all()
    assert (c >= 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("criterion", CRITERIA)
def test_identical_inputs_score_exactly_zero(criterion: str, dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 4, 4, dtype=dtype)
    assert (elementwise(x, x.clone(), criterion) == 0).all()
    assert distance(x, x.clone(), criterion).item() == 0.0


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("criterion", CRITERIA)
def test_distance_matches_numpy_reference(criterion: str, reduction: str) -> None:
    x = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    y = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    per_sample = np.array([numpy_elementwise(x[i].numpy() - y[i].numpy(), criterion).mean() for i in range(3)])
    expected = {"none": per_sample, "mean": per_sample.mean(), "sum": per_sample.sum()}[reduction]
    np.testing.assert_allclose(distance(x, y, criterion, reduction).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_distance_is_symmetric(criterion: str) -> None:
    x, y = torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    torch.testing.assert_close(distance(x, y, criterion, "none"), distance(y, x, criterion, "none"))


def test_distance_broadcasts_a_batch_one_target() -> None:
    x = torch.randn(4, 3, 2, 2)
    y = torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(distance(x, y, "l1", "none"), distance(x, y.expand(4, -1, -1, -1), "l1", "none"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_compared_in_float32(dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 8, 8).to(dtype)
    y = torch.randn(2, 3, 8, 8).to(dtype)
    out = distance(x, y, "mse", "none")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, distance(x.float(), y.float(), "mse", "none"))


def test_default_criterion_is_mse_mean() -> None:
    x, y = torch.zeros(2, 4), torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0]])
    assert distance(x, y).item() == pytest.approx((1.0 + 9.0) / 2)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_gradcheck(criterion: str) -> None:
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: distance(a, b, criterion, "sum"), (x, y))


def test_unknown_criterion_lists_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown criterion 'huber'.*\['l1', 'mse', 'charbonnier'\]"):
        elementwise(torch.zeros(1), torch.zeros(1), "huber")
