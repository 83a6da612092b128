"""total_variation: known values and a loop reference (the pair's contract is in tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossnet.errors import InputError
from lossnet.functional.total_variation import TV_KINDS, total_variation


def numpy_tv(x: torch.Tensor, kind: str, eps: float = 1e-8) -> np.ndarray:
    """Per-sample TV with explicit loops over pixels, in float64."""
    a = x.detach().double().numpy()
    b, c, h, w = a.shape
    out = np.zeros(b)
    for n in range(b):
        total = 0.0
        for ch in range(c):
            img = a[n, ch]
            if kind == "anisotropic":
                for i in range(h - 1):
                    for j in range(w):
                        total += abs(img[i + 1, j] - img[i, j])
                for i in range(h):
                    for j in range(w - 1):
                        total += abs(img[i, j + 1] - img[i, j])
            else:
                for i in range(h - 1):
                    for j in range(w - 1):
                        dh, dw = img[i + 1, j] - img[i, j], img[i, j + 1] - img[i, j]
                        total += np.sqrt(dh * dh + dw * dw + eps) - np.sqrt(eps)
        out[n] = total / (c * h * w)
    return out


def test_eye_anisotropic_is_036() -> None:
    """36 unit steps (18 vertical, 18 horizontal) over 100 pixels."""
    x = torch.eye(10).view(1, 1, 10, 10)
    assert total_variation(x).item() == pytest.approx(0.36, abs=1e-7)


def test_eye_isotropic_matches_numpy() -> None:
    x = torch.eye(10, dtype=torch.float64).view(1, 1, 10, 10)
    expected = numpy_tv(x, "isotropic")[0]
    # By hand: 9 diagonal positions with (dh, dw) = (-1, -1) and 16 off-diagonal unit steps,
    # each shifted by sqrt(eps) = 1e-4.
    e = 1e-8
    by_hand = (9 * (np.sqrt(2 + e) - np.sqrt(e)) + 16 * (np.sqrt(1 + e) - np.sqrt(e))) / 100
    assert expected == pytest.approx(by_hand, rel=1e-12)
    assert total_variation(x, "isotropic").item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", TV_KINDS)
def test_random_images_match_numpy(kind: str) -> None:
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    np.testing.assert_allclose(total_variation(x, kind, "none").numpy(), numpy_tv(x, kind), rtol=1e-12)


def test_isotropic_eps_is_used() -> None:
    x = torch.rand(1, 1, 4, 4, dtype=torch.float64)
    for eps in (1e-8, 0.25):
        expected = numpy_tv(x, "isotropic", eps)[0]
        assert total_variation(x, "isotropic", eps=eps).item() == pytest.approx(expected, rel=1e-12)
    assert total_variation(x, "isotropic", eps=0.25).item() < total_variation(x, "isotropic", eps=1e-8).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_image_anisotropic_is_zero(dtype: torch.dtype) -> None:
    assert total_variation(torch.full((2, 3, 7, 7), 0.3, dtype=dtype), "anisotropic").item() == 0.0


def test_constant_image_isotropic_float64_is_zero() -> None:
    x = torch.full((2, 3, 7, 7), 0.3, dtype=torch.float64)
    assert total_variation(x, "isotropic").item() == 0.0


def test_constant_image_isotropic_float32_is_exactly_zero() -> None:
    x = torch.full((2, 3, 7, 7), 0.3)
    assert total_variation(x, "isotropic").item() == 0.0


def test_isotropic_gradient_is_finite_on_a_flat_image() -> None:
    x = torch.full((1, 3, 6, 6), 0.5, requires_grad=True)
    total_variation(x, "isotropic").backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad == 0).all()


@pytest.mark.parametrize("kind", TV_KINDS)
def test_transpose_invariant(kind: str) -> None:
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(total_variation(x, kind, "none"), total_variation(x.transpose(-1, -2), kind, "none"))


def test_anisotropic_is_absolutely_homogeneous() -> None:
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(total_variation(-3.0 * x, "anisotropic"), 3.0 * total_variation(x, "anisotropic"))


def test_unknown_kind_lists_valid_ones() -> None:
    with pytest.raises(InputError, match=r"\['anisotropic', 'isotropic'\].*Did you mean 'isotropic'"):
        total_variation(torch.rand(1, 1, 3, 3), kind="isotropc")
