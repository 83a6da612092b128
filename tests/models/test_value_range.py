"""value_range: to_signed, from_signed, ScaledTanh, and the range check they rely on."""

from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError
from lossnet.models.value_range import ScaledTanh, from_signed, to_signed
from lossnet.validation import INPUT_RANGES, check_input_range


@pytest.mark.parametrize("image_range", INPUT_RANGES)
def test_to_signed_maps_ends_to_minus_one_and_one_and_inverts(image_range: tuple[float, float]) -> None:
    lo, hi = image_range
    x = torch.tensor([lo, (lo + hi) / 2, hi], dtype=torch.float64)
    torch.testing.assert_close(to_signed(x, image_range), torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64))
    y = lo + (hi - lo) * torch.rand(10, dtype=torch.float64)
    torch.testing.assert_close(from_signed(to_signed(y, image_range), image_range), y)


@pytest.mark.parametrize("image_range", INPUT_RANGES)
def test_scaled_tanh_formula_and_range(image_range: tuple[float, float]) -> None:
    lo, hi = image_range
    y = torch.linspace(-50, 50, 101)
    out = ScaledTanh(image_range)(y)
    torch.testing.assert_close(out, lo + (hi - lo) * (torch.tanh(y) + 1) / 2)
    assert out.min() == lo and out.max() == hi
    assert ScaledTanh(image_range)(torch.zeros(1)).item() == pytest.approx((lo + hi) / 2)


def test_check_input_range() -> None:
    assert check_input_range([0, 255]) == (0.0, 255.0)
    with pytest.raises(InputError, match=r"output_range must be a pair"):
        check_input_range(5, "output_range")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"input_range must be one of \[\(0.0, 1.0\)"):
        check_input_range((0, 2), "input_range")
