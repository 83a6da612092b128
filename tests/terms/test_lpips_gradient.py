"""LPIPS as a training term: its unit normalisation keeps gradients finite where the reference gives NaN."""

import torch

from lossnet.terms import LPIPS_EPS, lpips_distance, unit_normalise


def reference_normalise(f):
    """The lpips reference: eps outside the square root."""
    return f / (f.square().sum(1, keepdim=True).sqrt() + LPIPS_EPS)


def test_zero_feature_vectors_keep_a_finite_gradient():
    f = torch.rand(2, 8, 4, 4)
    f[0, :, 1, 2] = 0.0  # a position where every ReLU channel is off
    target = torch.rand(2, 8, 4, 4)
    cal = {"x": torch.rand(8)}
    ours = f.clone().requires_grad_(True)
    lpips_distance({"x": ours}, {"x": target}, cal).sum().backward()
    assert bool(torch.isfinite(ours.grad).all())
    ref = f.clone().requires_grad_(True)
    ((reference_normalise(ref) - reference_normalise(target)).square() * cal["x"].view(1, -1, 1, 1)).sum().backward()
    assert not bool(torch.isfinite(ref.grad).all())  # the reference's NaN, which this avoids


def test_values_match_the_reference_normalisation():
    f = torch.rand(3, 16, 5, 5, dtype=torch.float64) + 1e-3
    torch.testing.assert_close(unit_normalise(f), reference_normalise(f), rtol=1e-9, atol=0)
    assert float(unit_normalise(torch.zeros(1, 4, 1, 1)).abs().max()) == 0.0


def test_identical_inputs_give_zero_and_zero_gradient():
    f = torch.rand(1, 8, 3, 3, requires_grad=True)
    d = lpips_distance({"x": f}, {"x": f.detach()}, {"x": torch.rand(8)})
    assert float(d.detach()) == 0.0
    d.sum().backward()
    assert float(f.grad.abs().max()) == 0.0
