"""Contextual loss against the paper's formulas written out directly, and its defining properties."""

import pytest
import torch

from lossnet.errors import InputError
from lossnet.losses.contextual import ContextualLoss, contextual_loss


def reference(x, y, h=0.5, eps=1e-5):
    """Mechrez et al. 2018, eq. 1-4, one sample at a time, the whole matrix at once, exp / sum (no softmax)."""
    out = []
    for i in range(x.shape[0]):
        a, t = x[i].flatten(1), y[min(i, y.shape[0] - 1)].flatten(1)  # (C, N), (C, M)
        mu = t.mean(1, keepdim=True)
        a, t = a - mu, t - mu
        a, t = a / a.norm(dim=0, keepdim=True), t / t.norm(dim=0, keepdim=True)
        d = 1 - a.T @ t  # (N, M)
        d_rel = d / (d.min(dim=1, keepdim=True).values + eps)
        w = torch.exp((1 - d_rel) / h)
        cx = w / w.sum(dim=1, keepdim=True)
        out.append(-torch.log(cx.max(dim=0).values.mean()))
    return torch.stack(out)


@pytest.mark.parametrize("band_width", [0.5, 0.2, 1.0])
def test_matches_the_formulas(band_width):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 6, 4, 5, generator=g, dtype=torch.float64)
    y = torch.rand(2, 6, 3, 7, generator=g, dtype=torch.float64)  # another size: CX compares sets
    got = contextual_loss(x, y, band_width, reduction="none")
    torch.testing.assert_close(got, reference(x, y, band_width), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(contextual_loss(x, y[:1], band_width, reduction="none"), reference(x, y[:1], band_width))


def test_chunks_give_the_same_value_and_gradient():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 8, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 8, 6, 6, generator=g, dtype=torch.float64)
    whole = contextual_loss(x, y)
    (g_whole,) = torch.autograd.grad(whole, x)
    one_row = 2 * 36 * 8 * 4  # budget for exactly one prediction row per chunk (float64, 4 tensors)
    chunked = contextual_loss(x, y, memory_budget=one_row)
    (g_chunked,) = torch.autograd.grad(chunked, x)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=0)
    torch.testing.assert_close(g_chunked, g_whole, rtol=1e-10, atol=1e-14)


def test_identity_and_position_invariance():
    x = torch.randn(3, 16, 5, 5, dtype=torch.float64)
    assert float(contextual_loss(x, x).abs()) < 1e-6
    perm = torch.randperm(25)
    moved = x.flatten(2)[..., perm].reshape(x.shape)
    y = torch.randn(3, 16, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(contextual_loss(moved, y), contextual_loss(x, y))
    assert float(contextual_loss(y[:, :, :3, :3].contiguous().repeat(1, 1, 2, 2), y)) > 0.05  # unmatched features cost


def test_batched_equals_per_sample_and_module():
    x, y = torch.rand(3, 4, 4, 4), torch.rand(3, 4, 4, 4)
    per = contextual_loss(x, y, reduction="none")
    single = torch.cat([contextual_loss(x[i : i + 1], y[i : i + 1], reduction="none") for i in range(3)])
    torch.testing.assert_close(per, single)
    torch.testing.assert_close(ContextualLoss(reduction="sum")(x, y), per.sum())


def test_gradcheck():
    x = torch.rand(1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, 3, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: contextual_loss(a, y), (x,))


def test_memory_budget_is_checked_before_allocating():
    x = torch.rand(1, 4, 64, 64)
    with pytest.raises(InputError, match=r"needs 0\.1 MiB for a single row .* pass max_positions="):
        contextual_loss(x, x, memory_budget=2**10)


def test_sampling_bounds_the_positions():
    x, y = torch.rand(1, 4, 32, 32), torch.rand(1, 4, 32, 32)
    a = contextual_loss(x, y, max_positions=64, generator=torch.Generator().manual_seed(0))
    b = contextual_loss(x, y, max_positions=64, generator=torch.Generator().manual_seed(0))
    assert float(a) == float(b) and bool(torch.isfinite(a))


def seeded(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("max_positions", [2, 7, 64, 143])
def test_sampling_keeps_a_map_against_itself_at_zero(max_positions):
    # One draw of positions serves both maps (the authors' random_pooling); two draws made this about 0.7.
    x = torch.randn(2, 16, 12, 12, dtype=torch.float64)
    assert float(contextual_loss(x, x, max_positions=max_positions, generator=seeded(0))) < 1e-6
    torch.manual_seed(3)  # the global generator, as ContextualLoss and the term use
    assert float(ContextualLoss(max_positions=max_positions)(x, x)) < 1e-6
    assert float(contextual_loss(x, x[:1].expand(2, -1, -1, -1), max_positions=max_positions, reduction="none")[0]) < 1e-6


def test_sampling_compares_both_maps_at_the_same_positions():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 6, 9, 9, generator=g, dtype=torch.float64)
    y = torch.rand(2, 6, 9, 9, generator=g, dtype=torch.float64)
    got = contextual_loss(x, y, max_positions=20, generator=seeded(5), reduction="none")
    index = torch.randperm(81, generator=seeded(5))[:20]  # the seeded draw: a permutation's first 20 positions
    expected = reference(x.flatten(2)[..., index], y.flatten(2)[..., index])
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_sampling_of_maps_of_different_sizes_draws_for_each():
    # No position to share: the prediction gets the first draw, the target the second; a small map is used whole.
    g = torch.Generator().manual_seed(6)
    x = torch.rand(1, 5, 10, 10, generator=g, dtype=torch.float64)
    y = torch.rand(1, 5, 8, 8, generator=g, dtype=torch.float64)
    gen = seeded(7)
    ix, iy = torch.randperm(100, generator=gen)[:30], torch.randperm(64, generator=gen)[:30]
    got = contextual_loss(x, y, max_positions=30, generator=seeded(7))
    torch.testing.assert_close(got, reference(x.flatten(2)[..., ix], y.flatten(2)[..., iy])[0], rtol=1e-10, atol=1e-12)
    small = y[..., :5, :5]  # 25 positions: kept whole
    only_x = torch.randperm(100, generator=seeded(8))[:30]
    torch.testing.assert_close(
        contextual_loss(x, small, max_positions=30, generator=seeded(8)),
        reference(x.flatten(2)[..., only_x], small.flatten(2))[0],
        rtol=1e-10,
        atol=1e-12,
    )


def test_sampling_is_seeded():
    x, y = torch.rand(2, 4, 16, 16), torch.rand(2, 4, 16, 16)
    first = contextual_loss(x, y, max_positions=40, generator=seeded(1), reduction="none")
    torch.testing.assert_close(contextual_loss(x, y, max_positions=40, generator=seeded(1), reduction="none"), first)
    assert not torch.equal(contextual_loss(x, y, max_positions=40, generator=seeded(2), reduction="none"), first)
    torch.manual_seed(9)
    a = ContextualLoss(max_positions=40)(x, y)
    torch.manual_seed(9)
    assert float(ContextualLoss(max_positions=40)(x, y)) == float(a)
    with pytest.raises(InputError, match="max_positions"):
        contextual_loss(x, y, max_positions=0)


def test_bad_shapes():
    with pytest.raises(InputError, match="same channels"):
        contextual_loss(torch.rand(1, 4, 3, 3), torch.rand(1, 5, 3, 3))
    with pytest.raises(InputError, match="band_width must be > 0"):
        contextual_loss(torch.rand(1, 4, 3, 3), torch.rand(1, 4, 3, 3), band_width=0)


def test_a_shifted_copy_is_closer_than_another_image():
    """Misaligned by a translation, an image's features still match as a set; another image's do not."""
    from lossnet.backbones.extractor import FeatureExtractor
    from lossnet.data import load_default_image

    torch.manual_seed(0)
    fx = FeatureExtractor("vgg11", ["relu2_1"], weights=None)
    astronaut = load_default_image("astronaut", size=72)[..., :64, :64]
    shifted = load_default_image("astronaut", size=72)[..., 6:70, 5:69]
    other = load_default_image("chelsea", size=100)[..., :64, :64]
    with torch.no_grad():
        f = {name: fx(img)["relu2_1"] for name, img in (("a", astronaut), ("s", shifted), ("o", other))}
    to_shifted, to_other = float(contextual_loss(f["s"], f["a"])), float(contextual_loss(f["o"], f["a"]))
    assert to_shifted < 0.8 * to_other, (to_shifted, to_other)
    # Per-pixel the shifted copy is no closer than the other image's features are: only the set view sees it.
    assert float((f["s"] - f["a"]).square().mean()) > 0.3 * float((f["o"] - f["a"]).square().mean())


def test_gradient_is_finite_at_zero_distance():
    y = torch.rand(2, 8, 4, 4)
    y[:, :, 0, 0] = 0  # a zero feature vector, as ReLU layers give
    x = y.clone().requires_grad_(True)
    contextual_loss(x, y).backward()
    assert bool(torch.isfinite(x.grad).all())
