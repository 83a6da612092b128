"""MRF (patch) loss against a loop over patches written from Li & Wand's definition."""

import pytest
import torch

from lossnet.errors import InputError
from lossnet.losses.mrf import MRFLoss, mrf_loss, style_patches


def reference(x, style, k=3, stride=1):
    out = []
    c = style.shape[1]
    s = [style[0, :, i : i + k, j : j + k] for i in range(0, style.shape[2] - k + 1, stride)
         for j in range(0, style.shape[3] - k + 1, stride)]
    for b in range(x.shape[0]):
        total, n = 0.0, 0
        for i in range(x.shape[2] - k + 1):
            for j in range(x.shape[3] - k + 1):
                p = x[b, :, i : i + k, j : j + k]
                ncc = [float((p * q).sum() / (p.norm() * q.norm())) for q in s]
                best = s[max(range(len(s)), key=ncc.__getitem__)]
                total = total + (p - best).square().mean()
                n += 1
        out.append(total / n)
    assert c == x.shape[1]
    return torch.stack(out)


@pytest.mark.parametrize("stride", [1, 2])
def test_matches_the_definition(stride):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    style = torch.rand(1, 3, 6, 7, generator=g, dtype=torch.float64)
    got = mrf_loss(x, style_patches(style, 3, stride), reduction="none")
    torch.testing.assert_close(got, reference(x, style, 3, stride))


def test_chunking_does_not_change_the_matches():
    g = torch.Generator().manual_seed(4)
    x, style = torch.rand(2, 4, 6, 6, generator=g), torch.rand(1, 4, 9, 9, generator=g)
    patches = style_patches(style)
    one = 2 * 16 * 4 * 2  # budget of exactly one style patch per chunk
    torch.testing.assert_close(mrf_loss(x, patches, memory_budget=one), mrf_loss(x, patches))


def test_gradient_pulls_each_patch_to_its_match():
    style = torch.rand(1, 2, 5, 5, dtype=torch.float64)
    x = torch.rand(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    loss = MRFLoss(style)
    before = loss(x)
    before.backward()
    with torch.no_grad():
        stepped = x - 1e-3 * x.grad / x.grad.norm()  # a small step: the matches stay the same
        assert float(loss(stepped)) < float(before)
    # The matches are piecewise constant, so in float64 with generic data the finite differences agree.
    assert torch.autograd.gradcheck(loss, (x,))
    assert float(loss(style)) == 0.0


def test_module_caches_patches_and_errors():
    style = torch.rand(1, 4, 6, 6)
    m = MRFLoss(style, style_stride=2)
    assert m.patches.shape == (4, 4, 3, 3)
    with pytest.raises(InputError, match="no style target"):
        MRFLoss()(style)
    with pytest.raises(InputError, match="batch 1"):
        style_patches(torch.rand(2, 4, 6, 6))
    with pytest.raises(InputError, match="do not fit"):
        mrf_loss(torch.rand(1, 5, 6, 6), m.patches)
    with pytest.raises(InputError, match="smaller than the 3x3 patches"):
        mrf_loss(torch.rand(1, 4, 2, 6), m.patches)


def test_gradient_is_finite_at_zero_distance():
    style = torch.rand(1, 4, 6, 6)
    style[:, :, :2, :2] = 0
    x = style.clone().requires_grad_(True)
    value = mrf_loss(x, style_patches(style, 3))
    value.backward()
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-10)
    assert bool(torch.isfinite(x.grad).all())
