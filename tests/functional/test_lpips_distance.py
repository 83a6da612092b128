"""LPIPS's per-layer distance: the fused slice-at-a-time form against the plain composition."""

import pytest
import torch

from lossnet.functional import lpips as L


def plain(x, y, w):
    return L.lpips_layer_map(x, y, w).flatten(1).mean(1)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("target_batch", [3, 1])
def test_fused_equals_plain_in_value_and_gradient(layout, target_batch, monkeypatch) -> None:
    monkeypatch.setattr(L, "CHUNK_BYTES", 4 * 3 * 16 * 70)  # several slices, the last one short
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 16, 9, 11, generator=g)
    y = torch.rand(target_batch, 16, 9, 11, generator=g)
    x[0, :, :2, :2] = 0  # zero feature vectors: the gradient must stay finite
    w = torch.rand(16, generator=g)
    if layout == "channels_last":
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    assert L._fused_applies(x, y)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fused, reference = L.lpips_layer_distance(a, y, w), plain(b, y, w)
    torch.testing.assert_close(fused, reference, rtol=1e-6, atol=1e-9)
    upstream = torch.rand(3, generator=g)
    (fused * upstream).sum().backward()
    (reference * upstream).sum().backward()
    assert a.grad.stride() == x.stride()  # the gradient keeps the features' layout
    assert bool(torch.isfinite(a.grad).all())
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-9)


def test_half_precision_features_are_compared_in_float32() -> None:
    g = torch.Generator().manual_seed(1)
    x, y, w = torch.rand(2, 32, 8, 8, generator=g), torch.rand(2, 32, 8, 8, generator=g), torch.rand(32, generator=g)
    xb, yb = x.bfloat16().requires_grad_(True), y.bfloat16()
    fused = L.lpips_layer_distance(xb, yb, w)
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused, plain(xb.detach().float(), yb.float(), w), rtol=1e-6, atol=1e-9)
    fused.sum().backward()
    assert xb.grad.dtype == torch.bfloat16
    ref = xb.detach().float().requires_grad_(True)
    plain(ref, yb.float(), w).sum().backward()
    torch.testing.assert_close(xb.grad.float(), ref.grad, rtol=0.02, atol=1e-6)


def test_identical_gives_zero_and_plain_path_elsewhere() -> None:
    x, w = torch.rand(2, 4, 3, 3), torch.rand(4)
    assert float(L.lpips_layer_distance(x, x, w).abs().max()) == 0.0
    y = torch.rand(2, 4, 3, 3, requires_grad=True)  # a target with its own gradient: the plain path
    assert not L._fused_applies(x, y)
    assert not L._fused_applies(x.double(), x.double())
    d = L.lpips_layer_distance(x, y, w)
    d.sum().backward()
    assert y.grad is not None
