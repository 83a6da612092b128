"""Focal frequency loss against a DFT written out as matrices (no torch.fft), and its properties."""

import math

import pytest
import torch

from lossnet.errors import InputError
from lossnet.losses.focal_frequency import FocalFrequencyLoss, focal_frequency_loss


def _dft_matrix(n):
    k = torch.arange(n, dtype=torch.float64)
    angle = -2 * math.pi * torch.outer(k, k) / n
    return torch.complex(torch.cos(angle), torch.sin(angle)) / math.sqrt(n)


def reference(x, y, alpha=1.0, patch=1, log_matrix=False, batch_matrix=False):
    """Per-sample FFL from the paper's definition, with the DFT as W_h X W_w^T, one patch at a time."""
    b, c, h, w = x.shape
    ph, pw = h // patch, w // patch
    wh, ww = _dft_matrix(ph), _dft_matrix(pw)
    dist, weight = [], []
    for i in range(b):
        d_i, w_i = [], []
        for py in range(patch):
            for px in range(patch):
                for ch in range(c):
                    a = x[i, ch, py * ph : (py + 1) * ph, px * pw : (px + 1) * pw].to(torch.complex128)
                    t = y[i, ch, py * ph : (py + 1) * ph, px * pw : (px + 1) * pw].to(torch.complex128)
                    diff = wh @ a @ ww.T - wh @ t @ ww.T
                    d = diff.abs() ** 2
                    m = d.sqrt() ** alpha
                    if log_matrix:
                        m = torch.log(1 + m)
                    d_i.append(d)
                    w_i.append(m)
        dist.append(torch.stack(d_i))
        weight.append(torch.stack(w_i))
    dist, weight = torch.stack(dist), torch.stack(weight)  # (B, P*C, h, w)
    top = weight.max() if batch_matrix else weight.amax(dim=(-2, -1), keepdim=True)
    return ((weight / top).clamp(0, 1) * dist).flatten(1).mean(1)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"alpha": 2.0}, {"patch": 2}, {"log_matrix": True}, {"batch_matrix": True}, {"alpha": 0.0}],
)
def test_matches_the_definition(kwargs):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 8, 12, generator=g, dtype=torch.float64), torch.rand(2, 3, 8, 12, generator=g, dtype=torch.float64)
    patch = kwargs.pop("patch", 1)
    got = focal_frequency_loss(x, y, patch_factor=patch, reduction="none", **kwargs)
    torch.testing.assert_close(got, reference(x, y, patch=patch, **kwargs), rtol=1e-10, atol=1e-12)


def test_alpha_zero_is_the_plain_spectrum_mse_which_parseval_makes_the_pixel_mse():
    x, y = torch.rand(3, 1, 6, 10, dtype=torch.float64), torch.rand(3, 1, 6, 10, dtype=torch.float64)
    got = focal_frequency_loss(x, y, alpha=0.0, reduction="none")
    torch.testing.assert_close(got, (x - y).square().flatten(1).mean(1))


def test_identical_zero_and_reductions_and_module():
    x, y = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    assert float(focal_frequency_loss(x, x)) == 0.0
    per = focal_frequency_loss(x, y, reduction="none")
    assert per.shape == (4,) and bool((per > 0).all())
    torch.testing.assert_close(focal_frequency_loss(x, y), per.mean())
    torch.testing.assert_close(focal_frequency_loss(x, y, reduction="sum"), per.sum())
    torch.testing.assert_close(FocalFrequencyLoss(reduction="none")(x, y), per)
    # batched equals per-sample (the weight is normalised per image unless batch_matrix)
    torch.testing.assert_close(per, torch.cat([focal_frequency_loss(x[i : i + 1], y[i : i + 1], reduction="none") for i in range(4)]))


def test_weight_is_not_differentiated_and_gradient_is_finite():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    focal_frequency_loss(x, y).backward()
    # With the weight fixed, d/dx mean(w |F(x-y)|^2) = 2 F^H(w F(x - y)) / N (F orthonormal).
    with torch.no_grad():
        f = torch.fft.fft2(x - y, norm="ortho")
        w = f.abs() / f.abs().amax(dim=(-2, -1), keepdim=True)
        expected = 2 * torch.fft.ifft2(w * f, norm="ortho").real / x[0].numel()
    torch.testing.assert_close(x.grad, expected)
    z = torch.rand(1, 3, 8, 8, requires_grad=True)
    focal_frequency_loss(z, z.detach()).backward()  # zero distance: 0/0 weights become 0, not NaN
    assert bool(torch.isfinite(z.grad).all())


def test_ave_spectrum_and_bad_patch():
    x, y = torch.rand(2, 3, 8, 8, dtype=torch.float64), torch.rand(2, 3, 8, 8, dtype=torch.float64)
    avg = focal_frequency_loss(x, y, ave_spectrum=True, reduction="none")
    expected = reference(x.mean(0, keepdim=True), y.mean(0, keepdim=True))
    torch.testing.assert_close(avg, expected.expand(2))
    with pytest.raises(InputError, match="patch_factor 3 must divide the image size 8x8"):
        focal_frequency_loss(x, y, patch_factor=3)


def test_gradcheck_float64_with_a_flat_weight():
    # alpha = 0 makes the (non-differentiated) spectrum weight 1 everywhere, so the loss is smooth in x.
    x = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: focal_frequency_loss(t, y, alpha=0.0), (x,))
