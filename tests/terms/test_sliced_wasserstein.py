"""The sliced-Wasserstein style term (Heitz et al. 2021): zero, invariances, a float64 reference, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossnet
from lossnet.errors import InputError
from lossnet.terms.sliced_wasserstein import (
    SlicedWassersteinLoss,
    SlicedWassersteinTerm,
    random_directions,
    resample_quantiles,
    sliced_wasserstein,
)


def directions(c: int = 6, k: int = 10, seed: int = 0) -> torch.Tensor:
    return random_directions(c, k, torch.Generator().manual_seed(seed))


def reference(x: np.ndarray, y: np.ndarray, v: np.ndarray) -> float:
    """The paper's loss for one sample, in float64 from its equations: for each unit direction v_k, the
    squared distance between the sorted projections <F^x, v_k> and <F^y, v_k> (a quantile function read
    at the midpoints (i + 1/2)/n, linearly interpolated, when the counts differ), averaged."""
    fx, fy = x.reshape(x.shape[0], -1).T, y.reshape(y.shape[0], -1).T  # (N, C), (M, C): one point per position
    n, m = len(fx), len(fy)
    total = 0.0
    for k in range(v.shape[1]):
        a, b = np.sort(fx @ v[:, k]), np.sort(fy @ v[:, k])
        if m != n:
            b = np.interp((np.arange(n) + 0.5) / n, (np.arange(m) + 0.5) / m, b)
        total += np.mean((a - b) ** 2)
    return total / v.shape[1]


def test_zero_for_identical_maps() -> None:
    x = torch.rand(3, 6, 7, 5)
    assert float(sliced_wasserstein(x, x, directions())) == 0.0
    assert float(SlicedWassersteinLoss(directions=4)(x, x)) == 0.0  # redrawn directions: still exactly 0


def test_invariant_to_a_permutation_of_pixel_positions() -> None:
    x, y = torch.rand(2, 6, 8, 8), torch.rand(2, 6, 8, 8)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    shuffled = x.flatten(2)[:, :, perm].view_as(x)
    d = directions()
    assert float(sliced_wasserstein(x, shuffled, d)) == 0.0
    torch.testing.assert_close(sliced_wasserstein(shuffled, y, d), sliced_wasserstein(x, y, d))
    # ... which a position-wise distance is not: the test could fail
    assert float((x - shuffled).pow(2).mean()) > 0.01


@pytest.mark.parametrize("target_size", [(8, 8), (5, 11), (16, 4)])
def test_agrees_with_a_float64_reference_from_the_paper(target_size: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 6, 8, 8, generator=g, dtype=torch.float64)
    y = torch.rand(2, 6, *target_size, generator=g, dtype=torch.float64) * 2
    d = directions(6, 12)
    got = sliced_wasserstein(x, y, d, reduction="none")
    want = [reference(x[i].numpy(), y[i].numpy(), d.double().numpy()) for i in range(2)]
    # the term computes in float32; the reference in float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)
    assert min(want) > 0.01  # a real difference, not a trivial zero


def test_finite_gradients_and_gradcheck() -> None:
    x = torch.rand(2, 4, 6, 6, requires_grad=True)
    sliced_wasserstein(x, torch.rand(1, 4, 9, 5), directions(4, 8)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # the float32 cast inside keeps gradcheck away; check the resampling's gradient in float64 instead
    values = torch.sort(torch.rand(1, 3, 7, dtype=torch.float64), dim=-1).values.requires_grad_()
    assert torch.autograd.gradcheck(lambda v: resample_quantiles(v, 5), (values,))


def test_resampling_rule() -> None:
    values = torch.tensor([[[0.0, 1.0, 4.0]]])
    assert resample_quantiles(values, 3) is values  # same counts: matched one to one
    assert resample_quantiles(values, 6).flatten().tolist() == [0.0, 0.25, 0.75, 1.75, 3.25, 4.0]


def test_directions_are_seeded_unit_vectors_redrawn_or_fixed() -> None:
    a, b = directions(5, 3, seed=7), directions(5, 3, seed=7)
    assert torch.equal(a, b) and torch.allclose(a.norm(dim=0), torch.ones(3))
    x, y = torch.rand(1, 5, 4, 4), torch.rand(1, 5, 4, 4)
    fixed = SlicedWassersteinLoss(directions=3, seed=7, redraw=False)
    assert float(fixed(x, y)) == float(fixed(x, y)) == float(sliced_wasserstein(x, y, a))
    redrawn = SlicedWassersteinLoss(directions=3, seed=7, redraw=True)
    first, second = float(redrawn(x, y)), float(redrawn(x, y))
    assert first == float(sliced_wasserstein(x, y, a)) and second != first
    # None: as many directions as channels, as the authors do
    term = SlicedWassersteinTerm("relu1_1", redraw=False)
    assert term.directions(5).shape == (5, 5)


def test_batched_equals_per_sample_and_module_equals_function() -> None:
    x, y = torch.rand(3, 4, 5, 5), torch.rand(3, 4, 6, 6)
    d = directions(4, 6)
    batched = sliced_wasserstein(x, y, d, reduction="none")
    single = torch.stack([sliced_wasserstein(x[i : i + 1], y[i : i + 1], d) for i in range(3)])
    torch.testing.assert_close(batched, single)
    module = SlicedWassersteinLoss(directions=6, seed=0, redraw=False, reduction="sum")
    torch.testing.assert_close(module(x, y), sliced_wasserstein(x, y, directions(4, 6), reduction="sum"))


def test_bad_input_says_what_was_expected() -> None:
    with pytest.raises(InputError, match=r"same channels.*\(1, 4, 5, 5\).*\(1, 3, 5, 5\)"):
        sliced_wasserstein(torch.rand(1, 4, 5, 5), torch.rand(1, 3, 5, 5))
    with pytest.raises(InputError, match=r"directions must be \(C, K\) with C = 4"):
        sliced_wasserstein(torch.rand(1, 4, 5, 5), torch.rand(1, 4, 5, 5), torch.rand(3, 2))
    with pytest.raises(InputError, match="directions must be an int >= 1"):
        SlicedWassersteinLoss(directions=0)


def test_in_perceptual_loss_with_a_fixed_style_image_and_the_preset() -> None:
    loss = lossnet.PerceptualLoss(
        "vgg11", None, sliced_wasserstein_layers=["relu1_1", "relu2_1"], sliced_wasserstein_redraw=False
    )
    loss.set_style_target(torch.rand(1, 3, 40, 24))
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    terms = loss.terms(x)
    assert sorted(terms) == ["sliced_wasserstein.relu1_1", "sliced_wasserstein.relu2_1", "total"]
    terms["total"].backward()
    assert torch.isfinite(x.grad).all()
    preset = lossnet.losses.get_preset("sliced_wasserstein_style")
    assert preset.arch == "vgg19" and list(preset.sliced_wasserstein_layers) == [f"relu{i}_1" for i in range(1, 6)]
    assert preset.source and preset.notes
    built = lossnet.perceptual_loss_from_preset("sliced_wasserstein_style", weights=None)
    assert len([t for t in built.engine if t.key.startswith("sliced_wasserstein.")]) == 5


def test_a_large_target_is_sampled_once_and_stays_close_to_all_of_it() -> None:
    """target_positions keeps a seeded sample of a large target's positions: the same sample every time,
    the whole target when it is small enough, and a value within a few percent of the full target's."""
    g = torch.Generator().manual_seed(1)
    x, style = torch.rand(2, 8, 32, 32, generator=g), torch.rand(1, 8, 96, 96, generator=g) * 2  # 9216 positions
    full = SlicedWassersteinTerm("relu1_1", redraw=False, target_positions=None)
    sampled = SlicedWassersteinTerm("relu1_1", redraw=False, target_positions=1024)
    kept = sampled.target_statistics(style, {"relu1_1": style})["relu1_1"]
    assert kept.shape == (1, 8, 1, 1024)
    assert torch.equal(kept, sampled.target_statistics(style, {"relu1_1": style})["relu1_1"])  # seeded, repeatable
    # every kept point is one of the target's own points (a sample of positions, not of channels)
    points = {tuple(p) for p in style.flatten(2)[0].t().tolist()}
    assert all(tuple(p) in points for p in kept.flatten(2)[0].t().tolist())
    exact = full.per_sample(x, {"relu1_1": x}, full.target_statistics(style, {"relu1_1": style}))
    approx = sampled.per_sample(x, {"relu1_1": x}, {"relu1_1": kept})
    assert torch.allclose(approx, exact, rtol=0.05), (approx, exact)
    small = torch.rand(1, 8, 16, 16, generator=g)  # fewer positions than target_positions: all kept, reordered
    kept_small = sampled.target_statistics(small, {"relu1_1": small})["relu1_1"]
    assert torch.equal(kept_small.flatten(2).sort(-1).values, small.flatten(2).sort(-1).values)
    with pytest.raises(InputError, match="target_positions"):
        SlicedWassersteinTerm("relu1_1", target_positions=0)


def test_a_call_sorts_at_most_four_target_positions_per_prediction_position() -> None:
    """The per-call cut (TARGET_PER_POSITION): an 8x8 prediction reads the first 256 positions of the kept sample,
    exactly as the functional form does on them, and lands near the value against the whole sample (a target
    from another distribution, so that the distance is not sampling noise)."""
    from lossnet.terms.sliced_wasserstein import TARGET_PER_POSITION, random_directions

    g = torch.Generator().manual_seed(2)
    x, style = torch.rand(3, 8, 8, 8, generator=g), 2 * torch.rand(1, 8, 40, 40, generator=g) ** 2
    term = SlicedWassersteinTerm("relu1_1", redraw=False, target_positions=1024, directions=64)
    kept = term.target_statistics(style, {"relu1_1": style})
    cut = kept["relu1_1"].flatten(2)[:, :, : TARGET_PER_POSITION * 64].unsqueeze(2)
    d = random_directions(8, 64, torch.Generator().manual_seed(0))  # the term's fixed set (redraw=False, seed 0)
    value = term.per_sample(x, {"relu1_1": x}, kept)
    assert torch.allclose(value, sliced_wasserstein(x, cut, d, reduction="none"), rtol=1e-6, atol=0)
    whole = sliced_wasserstein(x, kept["relu1_1"], d, reduction="none")
    assert not torch.equal(value, whole) and torch.allclose(value, whole, rtol=0.05), (value, whole)


def test_the_numpy_sort_equals_torch_sort_in_values_and_gradient() -> None:
    from lossnet.terms.sliced_wasserstein import sort_last

    edges = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, float("inf"), -float("inf"), 1e-38, -1e-38, 3.0, 3.0])
    x = torch.cat([torch.randn(2, 5, 300) * 10.0 ** torch.randint(-3, 4, (2, 5, 1)), edges.expand(2, 5, -1)], -1)
    assert torch.equal(sort_last(x), torch.sort(x, dim=-1).values)
    assert torch.equal(sort_last(x.mT), torch.sort(x.mT, dim=-1).values)  # a strided input
    distinct = torch.randn(3, 4, 200, requires_grad=True)
    weights = torch.randn(3, 4, 200)
    (ours,) = torch.autograd.grad((sort_last(distinct) * weights).sum(), distinct)
    (theirs,) = torch.autograd.grad((torch.sort(distinct, dim=-1).values * weights).sum(), distinct)
    assert torch.equal(ours, theirs)
    with torch.no_grad():  # the values-only path
        assert torch.equal(sort_last(distinct), torch.sort(distinct, dim=-1).values)
    nan = torch.tensor([[2.0, float("nan"), -1.0]])
    assert sort_last(nan)[0, :2].tolist() == [-1.0, 2.0] and sort_last(nan)[0, 2].isnan()


def test_projections_are_float32_under_bf16_autocast() -> None:
    # Autocast would run the projection in bf16 and sort rounded values: the term compares in float32.
    from lossnet.terms.sliced_wasserstein import sorted_projections

    features = torch.randn(2, 16, 8, 8)
    d = random_directions(16, 16, torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = sorted_projections(features, d)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, sorted_projections(features, d), rtol=1e-6, atol=1e-6)