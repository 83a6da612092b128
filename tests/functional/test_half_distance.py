"""The fused half-precision distance: the float32 values and gradients, without float32 copies."""

from __future__ import annotations

import pytest
import torch

import lossnet.functional.half_distance as hd
from lossnet.functional.criteria import CRITERIA, distance, elementwise


def _pair(shape: tuple[int, ...], channels_last: bool, dtype: torch.dtype = torch.bfloat16) -> tuple:
    torch.manual_seed(0)
    x, y = (torch.randn(*shape).to(dtype) for _ in range(2))
    if channels_last:
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    return x, y


def _reference(x: torch.Tensor, y: torch.Tensor, criterion: str) -> torch.Tensor:
    """Written from the definition: float64 per-sample mean of the element-wise criterion."""
    return elementwise(x.double(), y.double(), criterion).flatten(1).mean(1)


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of 4096 elements: the 2 x 8 x 33 x 35 tensors below (9240 a sample) take 3, the last one short."""
    monkeypatch.setattr(hd, "CHUNK_BYTES", 1)


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_are_the_float32_ones(criterion: str, channels_last: bool) -> None:
    x, y = _pair((2, 8, 33, 35), channels_last)
    assert hd.fused_applies(x, y)
    x.requires_grad_(True)
    out = distance(x, y, criterion, "none")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), _reference(x.detach(), y, criterion), rtol=1e-5, atol=1e-7)

    weights = torch.tensor([0.7, -1.3])
    (out * weights).sum().backward()
    x64 = x.detach().double().requires_grad_(True)
    (_reference(x64, y, criterion) * weights.double()).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16
    assert x.grad.is_contiguous(memory_format=torch.channels_last) == channels_last
    # The float32 gradient rounded once to bf16: within bf16's half-ulp (2^-9 relative).
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=2**-8, atol=1e-12)


def test_target_gradient_is_the_negative() -> None:
    x, y = _pair((2, 3, 40, 40), False)
    x.requires_grad_(True)
    y.requires_grad_(True)
    distance(x, y, "mse").backward()
    torch.testing.assert_close(y.grad, -x.grad)


def test_float16_takes_the_same_path() -> None:
    x, y = _pair((1, 4, 64, 64), False, torch.float16)
    torch.testing.assert_close(distance(x, y, "l1").double(), _reference(x, y, "l1").mean(), rtol=1e-5, atol=0)


def test_other_layouts_and_broadcasts_fall_back_to_the_plain_path() -> None:
    x, y = _pair((2, 3, 8, 8), False)
    assert not hd.fused_applies(x, y[:1])  # a broadcast target
    assert not hd.fused_applies(x, y.contiguous(memory_format=torch.channels_last))  # mixed layouts
    assert not hd.fused_applies(x, y.float())  # mixed dtypes
    assert not hd.fused_applies(x.float(), y.float())  # float32 needs nothing fused
    # ... and the fallback gives the same float32 numbers.
    torch.testing.assert_close(distance(x, y[:1], "mse", "none").double(), _reference(x, y[:1].expand_as(x), "mse"))


def test_float32_copies_are_not_kept_for_the_backward() -> None:
    x, y = _pair((1, 4, 16, 16), True)
    x.requires_grad_(True)
    saved: list[torch.dtype] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        distance(x, y, "mse")
    assert saved and set(saved) == {torch.bfloat16}


def test_second_derivatives_raise_instead_of_being_wrong() -> None:
    x, y = _pair((1, 2, 8, 8), False)
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(distance(x, y, "mse"), x, create_graph=True)
    with pytest.raises(RuntimeError, match="twice|once_differentiable|does not require grad"):
        g.sum().backward()


def test_unknown_criterion_is_refused_on_the_fused_path_too() -> None:
    x, y = _pair((1, 2, 8, 8), False)
    assert hd.fused_applies(x, y)
    with pytest.raises(ValueError, match="criterion"):
        distance(x, y, "huber")
