"""style_loss: known values, a numpy reference, Gram properties (the contract is in tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossnet.errors import InputError
from lossnet.functional.criteria import CRITERIA
from lossnet.functional.gram import gram_matrix
from lossnet.losses.style import style_loss


def reference(x: torch.Tensor, y: torch.Tensor, criterion: str) -> np.ndarray:
    """Per-sample style loss with numpy: Grams by einsum over pixels, then the criterion's mean."""

    def gram(a: np.ndarray) -> np.ndarray:
        b, c, h, w = a.shape
        return np.einsum("bihw,bjhw->bij", a, a) / (c * h * w)

    gx = gram(x.detach().double().numpy())
    gy = np.broadcast_to(gram(y.detach().double().numpy()), gx.shape)
    d = gx - gy
    e = {"l1": np.abs(d), "mse": d * d, "charbonnier": np.sqrt(d * d + 1e-6) - 1e-3}[criterion]
    return e.reshape(gx.shape[0], -1).mean(axis=1)


def test_known_value_ones_against_zeros() -> None:
    x = torch.ones(1, 2, 4, 4)  # Gram: every entry 16 / 32 = 0.5
    assert style_loss(x, torch.zeros(1, 2, 4, 4)).item() == pytest.approx(0.25)
    assert style_loss(x, torch.zeros(1, 2, 4, 4), "l1").item() == pytest.approx(0.5)


def test_known_value_hand_gram() -> None:
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # Gram [[1.25, 2.75], [2.75, 6.25]]
    y = torch.zeros(1, 2, 1, 2)
    expected = (1.25**2 + 2 * 2.75**2 + 6.25**2) / 4
    assert style_loss(x, y, "mse").item() == pytest.approx(expected)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_matches_numpy_reference(criterion: str) -> None:
    x, y = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 6, 3)
    np.testing.assert_allclose(
        style_loss(x, y, criterion, "none").numpy(), reference(x, y, criterion), rtol=1e-4, atol=1e-7
    )


def test_spatial_arrangement_is_ignored() -> None:
    """A Gram forgets where things are: a pixel permutation or a 2x2 tiling of the target costs nothing."""
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    perm = torch.randperm(16)
    shuffled = x.flatten(2)[:, :, perm].view_as(x)
    assert style_loss(x, shuffled).item() == pytest.approx(0.0, abs=1e-14)
    assert style_loss(x, x.repeat(1, 1, 2, 2)).item() == pytest.approx(0.0, abs=1e-14)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_precomputed_gram_target_equals_feature_target(criterion: str) -> None:
    x, y = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(style_loss(x, gram_matrix(y), criterion, "none"), style_loss(x, y, criterion, "none"))
    y1 = y[:1]
    torch.testing.assert_close(style_loss(x, gram_matrix(y1), criterion, "none"), style_loss(x, y1, criterion, "none"))


def test_batch_one_target_broadcasts() -> None:
    x, y = torch.randn(3, 4, 5, 5), torch.randn(1, 4, 7, 7)
    torch.testing.assert_close(
        style_loss(x, y, "mse", "none"), style_loss(x, y.expand(3, -1, -1, -1).contiguous(), "mse", "none")
    )


def test_channel_mismatch_raises() -> None:
    with pytest.raises(InputError, match="style target does not fit"):
        style_loss(torch.randn(1, 4, 3, 3), torch.randn(1, 5, 3, 3))
    with pytest.raises(InputError, match="style target does not fit"):
        style_loss(torch.randn(1, 4, 3, 3), torch.randn(1, 5, 5))


def test_batch_mismatch_raises() -> None:
    with pytest.raises(InputError, match="batch 3"):
        style_loss(torch.randn(3, 4, 3, 3), torch.randn(2, 4, 3, 3))


def test_target_of_wrong_rank_raises() -> None:
    with pytest.raises(InputError, match="3 or 4 dimensions"):
        style_loss(torch.randn(1, 4, 3, 3), torch.randn(4, 4))


def test_non_square_gram_target_raises_input_error() -> None:
    with pytest.raises(InputError, match="style target does not fit"):
        style_loss(torch.randn(1, 4, 3, 3), torch.randn(1, 5, 4))
