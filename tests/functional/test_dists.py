"""DISTS against the authors' own code (DISTS_pytorch 0.1's DISTS_pt.py, read from the installed wheel and run
with a stand-in for torchvision that hands it lossnet's VGG16 layers), and its properties."""

import pytest
import torch
from torch import nn

from lossnet.backbones.calibration import DISTS_CHANNELS, dists_weights
from lossnet.backbones.pooling import L2Pool2d
from lossnet.backbones.vgg import VGG
from lossnet.errors import InputError
from lossnet.functional.dists import dists_from_features
from tests.functional.dists_reference import authors_dists

_STAGE_ENDS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_POOLS = (4, 9, 16, 23)
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def vgg_features():
    torch.manual_seed(0)
    return VGG("vgg16").features.eval()


@pytest.fixture(scope="module")
def reference_dists(vgg_features):
    return authors_dists(vgg_features)


def _maps(features, x):
    """The image and the five stages through lossnet's VGG16 with L2 pooling in place of its max-pools."""
    layers = [L2Pool2d() if i in _POOLS else m for i, m in enumerate(features[:30])]
    out, h = [x], (x - _MEAN) / _STD
    for i, module in enumerate(layers):
        h = module(h)
        if i in _STAGE_ENDS:
            out.append(h)
    return out


def test_matches_the_authors_code(vgg_features, reference_dists):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 48, generator=g)
    y = (x + 0.2 * torch.rand(2, 3, 64, 48, generator=g)).clamp(0, 1)
    alpha, beta = dists_weights()
    with torch.no_grad():
        ours = dists_from_features(_maps(vgg_features, x), _maps(vgg_features, y), alpha, beta, reduction="none")
        theirs = reference_dists(x, y)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert bool((ours > 0).all())


def test_identical_is_zero_and_gradient_finite(vgg_features):
    alpha, beta = dists_weights()
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    d = dists_from_features(_maps(vgg_features, x), _maps(vgg_features, x.detach()), alpha, beta)
    assert abs(float(d.detach())) < 1e-5
    d.backward()
    assert bool(torch.isfinite(x.grad).all())


def test_batched_equals_per_sample_and_reductions():
    g = torch.Generator().manual_seed(2)
    fx = [torch.rand(3, c, 4, 4, generator=g) for c in DISTS_CHANNELS]
    fy = [torch.rand(3, c, 4, 4, generator=g) for c in DISTS_CHANNELS]
    w = torch.rand(1475, generator=g)
    per = dists_from_features(fx, fy, w, w, reduction="none")
    single = torch.cat([dists_from_features([f[i : i + 1] for f in fx], [f[i : i + 1] for f in fy], w, w, "none") for i in range(3)])
    torch.testing.assert_close(per, single)
    torch.testing.assert_close(dists_from_features(fx, fy, w, w), per.mean())


def test_bad_inputs():
    maps = [torch.rand(1, c, 4, 4) for c in DISTS_CHANNELS]
    w = torch.ones(1475)
    with pytest.raises(InputError, match="6 maps per image"):
        dists_from_features(maps[:5], maps, w, w)
    with pytest.raises(InputError, match="1475 values"):
        dists_from_features(maps, maps, w[:10], w)
    with pytest.raises(InputError, match="64 channels"):
        dists_from_features([maps[0], maps[2], *maps[2:]], maps, w, w)


def test_texture_term_is_blind_to_a_circular_shift_and_structure_is_not():
    g = torch.Generator().manual_seed(4)
    fx = [torch.rand(1, c, 8, 8, generator=g) for c in DISTS_CHANNELS]
    shifted = [f.roll(shifts=(3, 5), dims=(2, 3)) for f in fx]  # a periodic texture moved by part of its period
    w, zero = torch.rand(1475, generator=g), torch.zeros(1475)
    texture_only = dists_from_features(fx, shifted, w, zero, reduction="none")
    structure_only = dists_from_features(fx, shifted, zero, w, reduction="none")
    assert float(texture_only.abs().max()) < 1e-6  # spatial means do not move
    assert float(structure_only.min()) > 0.1  # covariances do


def test_matches_the_papers_equations_typed_out():
    """Ding et al. 2020, eqs. 8-10, per channel with plain loops: texture l(x, y) and structure s(x, y)."""
    g = torch.Generator().manual_seed(7)
    fx = [torch.rand(2, c, 3, 4, generator=g, dtype=torch.float64) for c in DISTS_CHANNELS]
    fy = [torch.rand(2, c, 3, 4, generator=g, dtype=torch.float64) for c in DISTS_CHANNELS]
    alpha, beta = torch.rand(1475, generator=g, dtype=torch.float64), torch.rand(1475, generator=g, dtype=torch.float64)
    c1 = c2 = 1e-6
    expected = []
    for b in range(2):
        total, k = 0.0, 0
        for x, y in zip(fx, fy):
            for ch in range(x.shape[1]):
                xs, ys = x[b, ch].flatten().tolist(), y[b, ch].flatten().tolist()
                n = len(xs)
                mx, my = sum(xs) / n, sum(ys) / n
                vx = sum((v - mx) ** 2 for v in xs) / n
                vy = sum((v - my) ** 2 for v in ys) / n
                cov = sum((u - mx) * (v - my) for u, v in zip(xs, ys)) / n
                texture = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
                structure = (2 * cov + c2) / (vx + vy + c2)
                total += float(alpha[k]) * texture + float(beta[k]) * structure
                k += 1
        expected.append(1 - total / float(alpha.sum() + beta.sum()))
    got = dists_from_features(fx, fy, alpha, beta, reduction="none")
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)
