"""gram_matrix: known values, normalisation, symmetry/PSD, dtypes under autocast, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossnet.errors import InputError, InputTypeError
from lossnet.functional.gram import gram_matrix


def numpy_gram(x: torch.Tensor) -> np.ndarray:
    """Reference: explicit sum over pixels, divided by C*H*W, in float64."""
    a = x.detach().double().numpy()
    b, c, h, w = a.shape
    out = np.zeros((b, c, c))
    for n in range(b):
        for i in range(c):
            for j in range(c):
                out[n, i, j] = np.sum(a[n, i] * a[n, j]) / (c * h * w)
    return out


def test_hand_computed_two_channels() -> None:
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2): C*H*W = 4
    expected = torch.tensor([[[5.0 / 4, 11.0 / 4], [11.0 / 4, 25.0 / 4]]])
    torch.testing.assert_close(gram_matrix(x), expected)


def test_hand_computed_single_channel() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2): sum of squares 30 over 4
    torch.testing.assert_close(gram_matrix(x), torch.tensor([[[7.5]]]))


def test_matches_numpy_reference() -> None:
    x = torch.randn(3, 4, 5, 6)
    out = gram_matrix(x)
    assert out.shape == (3, 4, 4)
    np.testing.assert_allclose(out.numpy(), numpy_gram(x), rtol=1e-5, atol=1e-6)


def test_symmetric_and_positive_semidefinite() -> None:
    x = torch.randn(2, 6, 3, 3, dtype=torch.float64)
    g = gram_matrix(x)
    torch.testing.assert_close(g, g.transpose(1, 2), rtol=0, atol=0)
    eig = torch.linalg.eigvalsh(g)
    assert (eig >= -1e-12).all()
    # C=5 channels over H*W=2 pixels: rank 2, so three eigenvalues are zero, none negative.
    wide = torch.randn(1, 5, 1, 2, dtype=torch.float64)
    eig_wide = torch.linalg.eigvalsh(gram_matrix(wide))
    assert (eig_wide >= -1e-12).all()
    assert (eig_wide.abs() < 1e-12).sum() == 3


def test_each_sample_is_independent_of_the_batch() -> None:
    x = torch.randn(4, 3, 5, 5)
    batched = gram_matrix(x)
    for i in range(4):
        torch.testing.assert_close(batched[i : i + 1], gram_matrix(x[i : i + 1]))


def test_normalisation_makes_spatial_tiling_invariant() -> None:
    """Dividing by H*W: a 2x2 tiling of the same features has the same Gram."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(gram_matrix(x.repeat(1, 1, 2, 2)), gram_matrix(x))


def test_quadratic_in_scale() -> None:
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(gram_matrix(3.0 * x), 9.0 * gram_matrix(x))


def test_float64_stays_float64() -> None:
    assert gram_matrix(torch.randn(1, 2, 3, 3, dtype=torch.float64)).dtype == torch.float64


def test_half_precision_input_accumulates_in_float32() -> None:
    x = torch.randn(1, 3, 8, 8)
    out = gram_matrix(x.half())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, gram_matrix(x.half().float()))


def test_bfloat16_features_under_autocast_give_float32() -> None:
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(4, 8, 3, padding=1)
    x = torch.randn(2, 4, 16, 16)
    reference = gram_matrix(conv(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = conv(x)
        assert feats.dtype == torch.bfloat16
        out = gram_matrix(feats)
    assert out.dtype == torch.float32
    # Exactly the float32 Gram of the bf16 values (no bf16 accumulation) ...
    torch.testing.assert_close(out, gram_matrix(feats.float()), rtol=1e-6, atol=1e-6)
    # ... and close to the full-float32 result (bf16 features carry ~3 significant digits).
    torch.testing.assert_close(out, reference, rtol=2e-2, atol=2e-2 * reference.abs().max().item())


def test_float32_input_under_autocast_is_not_downcast() -> None:
    x = torch.randn(2, 16, 12, 12)
    reference = gram_matrix(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gram_matrix(x)
    assert out.dtype == torch.float32
    # bf16 matmul would be off by ~1e-2 relative; float32 agrees to rounding.
    torch.testing.assert_close(out, reference, rtol=1e-6, atol=1e-6)


def test_gradcheck() -> None:
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gram_matrix, (x,))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (1, 2, 3, 4, 5)])
def test_wrong_rank_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"\(B, C, H, W\)"):
        gram_matrix(torch.randn(*shape))


def test_non_tensor_raises_type_error() -> None:
    """Like every other 'not a tensor' in lossnet: InputTypeError, a TypeError."""
    with pytest.raises(InputTypeError, match="got list"):
        gram_matrix([[1.0, 2.0]])  # type: ignore[arg-type]


def test_integer_features_raise_type_error() -> None:
    with pytest.raises(InputTypeError, match="floating-point"):
        gram_matrix(torch.ones(1, 2, 3, 3, dtype=torch.int64))


def test_gradgradcheck() -> None:
    """The custom backward is written in differentiable operations, so second derivatives work."""
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(gram_matrix, (x,))


def test_gradcheck_channels_last() -> None:
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (x,))


def _bf16_features(shape: tuple[int, ...], channels_last: bool) -> torch.Tensor:
    x = torch.randn(*shape).relu().bfloat16()
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("channels_last", [False, True])
def test_chunked_float32_sum_equals_the_whole(monkeypatch: pytest.MonkeyPatch, channels_last: bool) -> None:
    """Half-precision features summed a slice of pixels at a time: the float32 Gram of the same values."""
    import lossnet.functional.gram as gram_module

    x = _bf16_features((2, 8, 30, 31), channels_last)  # 930 pixels: 4 slices of 256, the last one short
    monkeypatch.setattr(gram_module, "CPU_CHUNK_BYTES", 1)
    chunked = gram_matrix(x)
    expected = numpy_gram(x.float())
    np.testing.assert_allclose(chunked.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
def test_bfloat16_gradient_close_to_float64(channels_last: bool) -> None:
    """The bf16 backward (one bf16 product) against the float64 gradient of the same bf16 values."""
    torch.manual_seed(0)
    x = _bf16_features((2, 16, 12, 12), channels_last).requires_grad_(True)
    weight = torch.randn(2, 16, 16)
    (gram_matrix(x) * weight).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16
    assert x.grad.is_contiguous(memory_format=torch.channels_last) == channels_last
    x64 = x.detach().double().requires_grad_(True)
    (gram_matrix(x64) * weight.double()).sum().backward()
    rel = (x.grad.double() - x64.grad).norm() / x64.grad.norm()
    assert rel < 1e-2  # bf16 keeps 8 bits: about 4e-3 relative per element


def test_half_precision_features_are_saved_without_a_float32_copy() -> None:
    """What the graph keeps for the backward is the bf16 activation itself, not a float32 copy of it."""
    x = _bf16_features((1, 8, 16, 16), True).requires_grad_(True)
    saved: list[torch.dtype] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        gram_matrix(x)
    assert saved == [torch.bfloat16]


def test_float16_gradient_is_the_float32_product_rounded() -> None:
    x = (torch.randn(1, 4, 6, 6) * 4).half().requires_grad_(True)
    weight = torch.randn(1, 4, 4)
    (gram_matrix(x) * weight).sum().backward()
    x32 = x.detach().float().requires_grad_(True)
    (gram_matrix(x32) * weight).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float16
    torch.testing.assert_close(x.grad, x32.grad.half(), rtol=1e-3, atol=1e-6)
