"""feature_loss: known values and a numpy reference (the pair's contract is in tests/test_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossnet.errors import InputError, InputTypeError
from lossnet.functional.criteria import CRITERIA
from lossnet.losses.feature import feature_loss


def reference(x: torch.Tensor, y: torch.Tensor, criterion: str) -> np.ndarray:
    """Per-sample mean of the criterion with explicit numpy, y broadcast over the batch."""
    a, b = x.detach().double().numpy(), np.broadcast_to(y.detach().double().numpy(), x.shape)
    d = a - b
    e = {"l1": np.abs(d), "mse": d * d, "charbonnier": np.sqrt(d * d + 1e-6) - 1e-3}[criterion]
    return e.reshape(x.shape[0], -1).mean(axis=1)


@pytest.mark.parametrize(
    ("criterion", "expected"), [("mse", 4.0), ("l1", 2.0), ("charbonnier", math.sqrt(4.0 + 1e-6) - 1e-3)]
)
def test_known_values(criterion: str, expected: float) -> None:
    x = torch.zeros(2, 4, 3, 3, dtype=torch.float64)
    out = feature_loss(x, x + 2.0, criterion, reduction="none")
    torch.testing.assert_close(out, torch.full((2,), expected, dtype=torch.float64))


def test_default_is_mse_mean() -> None:
    x = torch.zeros(2, 1, 2, 2)
    y = torch.cat([torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 3.0)])
    assert feature_loss(x, y).item() == pytest.approx((1.0 + 9.0) / 2)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_matches_numpy_reference(criterion: str) -> None:
    x, y = torch.randn(3, 5, 4, 6), torch.randn(3, 5, 4, 6)
    np.testing.assert_allclose(feature_loss(x, y, criterion, "none").numpy(), reference(x, y, criterion), rtol=1e-5)


def test_batch_one_target_broadcasts() -> None:
    x, y = torch.randn(3, 4, 5, 5), torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(
        feature_loss(x, y, "l1", "none"), feature_loss(x, y.expand(3, -1, -1, -1).contiguous(), "l1", "none")
    )


def test_shape_mismatch_raises() -> None:
    with pytest.raises(InputError, match="same shape"):
        feature_loss(torch.randn(2, 3, 4, 4), torch.randn(2, 4, 4, 4))
    with pytest.raises(InputError, match="same shape"):
        feature_loss(torch.randn(1, 3, 4, 4), torch.randn(2, 3, 4, 4))


def test_wrong_rank_and_dtype_raise() -> None:
    with pytest.raises(InputError, match="4 dimensions"):
        feature_loss(torch.randn(3, 4, 4), torch.randn(3, 4, 4))
    with pytest.raises(InputTypeError, match="floating-point"):
        feature_loss(torch.ones(1, 3, 4, 4, dtype=torch.int64), torch.randn(1, 3, 4, 4))
