"""pixel_loss: known values and a numpy reference (the pair's contract is in tests/test_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossnet.errors import InputError
from lossnet.functional.criteria import CRITERIA
from lossnet.losses.pixel import pixel_loss


@pytest.mark.parametrize(
    ("criterion", "expected"), [("l1", 0.5), ("mse", 0.25), ("charbonnier", math.sqrt(0.25 + 1e-6) - 1e-3)]
)
def test_known_values(criterion: str, expected: float) -> None:
    out = pixel_loss(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5), criterion)
    assert out.item() == pytest.approx(expected, rel=1e-6)


def test_mean_over_channels_and_pixels() -> None:
    x = torch.zeros(1, 1, 2, 2)
    y = torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]]])
    assert pixel_loss(x, y, "l1").item() == pytest.approx(4.0 / 4)
    assert pixel_loss(x, y, "mse").item() == pytest.approx(10.0 / 4)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_matches_numpy_reference(criterion: str) -> None:
    x, y = torch.rand(2, 3, 5, 4), torch.rand(2, 3, 5, 4)
    d = x.double().numpy() - y.double().numpy()
    e = {"l1": np.abs(d), "mse": d * d, "charbonnier": np.sqrt(d * d + 1e-6) - 1e-3}[criterion]
    np.testing.assert_allclose(pixel_loss(x, y, criterion, "none").numpy(), e.reshape(2, -1).mean(1), rtol=1e-5)


def test_batch_one_target_broadcasts() -> None:
    x, y = torch.rand(3, 3, 4, 4), torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(
        pixel_loss(x, y, "mse", "none"), pixel_loss(x, y.expand(3, -1, -1, -1).contiguous(), "mse", "none")
    )


def test_single_channel_equals_its_rgb_repetition() -> None:
    x, y = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    rgb = pixel_loss(x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1), "l1", "none")
    torch.testing.assert_close(pixel_loss(x, y, "l1", "none"), rgb)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(InputError, match=r"same shape.*\(1, 3, 4, 4\) and \(1, 3, 4, 5\)"):
        pixel_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
