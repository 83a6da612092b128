"""reduce: the 'none' | 'mean' | 'sum' batch reduction."""

from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError, InputTypeError
from lossnet.functional.reduction import REDUCTIONS, reduce


def test_vocabulary() -> None:
    assert REDUCTIONS == ("none", "mean", "sum")


def test_known_values() -> None:
    v = torch.tensor([1.0, 3.0, 8.0])
    assert reduce(v, "mean").item() == pytest.approx(4.0)
    assert reduce(v, "sum").item() == pytest.approx(12.0)
    torch.testing.assert_close(reduce(v, "none"), torch.tensor([1.0, 3.0, 8.0]))


def test_default_is_mean() -> None:
    v = torch.tensor([2.0, 6.0])
    assert reduce(v).item() == pytest.approx(4.0)


def test_none_keeps_shape_and_mean_sum_agree_with_it() -> None:
    v = torch.rand(5)
    none = reduce(v, "none")
    assert none.shape == (5,)
    assert reduce(v, "mean").shape == ()
    assert reduce(v, "sum").shape == ()
    torch.testing.assert_close(reduce(v, "mean"), none.mean())
    torch.testing.assert_close(reduce(v, "sum"), none.sum())
    torch.testing.assert_close(reduce(v, "sum"), 5 * reduce(v, "mean"))


def test_gradient_of_mean_is_one_over_batch() -> None:
    v = torch.rand(4, requires_grad=True)
    reduce(v, "mean").backward()
    torch.testing.assert_close(v.grad, torch.full((4,), 0.25))


@pytest.mark.parametrize("bad", ["avg", "Mean", "", "elementwise_mean"])
def test_unknown_reduction_lists_valid_ones(bad: str) -> None:
    with pytest.raises(InputError, match=r"\['none', 'mean', 'sum'\]"):
        reduce(torch.rand(2), bad)


def test_non_string_reduction_is_a_type_error() -> None:
    with pytest.raises(InputTypeError, match="reduction must be a string"):
        reduce(torch.rand(2), None)  # type: ignore[arg-type]
