"""The loss and its fast path on every device present: CPU always, CUDA when torch sees a GPU (skipped otherwise)."""

from __future__ import annotations

import pytest
import torch

from lossnet import PerceptualLoss
from lossnet.backbones.preprocessing import TORCH
from lossnet.backbones.vgg import VGG
from lossnet.backbones.weights import LoadedWeights
from lossnet.losses import LPIPSLoss

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
STYLE = {"relu1_2": 5.0, "relu2_2": 5.0, "relu3_3": 5.0}


@pytest.fixture(scope="module")
def weights() -> LoadedWeights:
    torch.manual_seed(0)
    return LoadedWeights("imagenet:vgg16-397923af", "random VGG16 under the ImageNet id", TORCH, dict(VGG("vgg16").state_dict()))


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 48, 48, generator=g), torch.rand(2, 3, 48, 48, generator=g)


def _terms(loss: PerceptualLoss, device: str, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, torch.Tensor]:
    loss = loss.to(device)
    pred = x.detach().to(device, copy=True).requires_grad_(True)  # a fresh leaf; the fixture stays untouched
    terms = loss.terms(pred, y.to(device))
    terms["total"].sum().backward()
    return {k: v.detach().cpu() for k, v in terms.items()}, pred.grad.cpu()


@pytest.mark.parametrize("device", DEVICES)
def test_fp32_on_the_device_equals_the_cpu(device, weights, images, monkeypatch) -> None:
    # PyTorch runs "fp32" convolutions on Ampere and later GPUs in TF32 by default (10-bit mantissa): the gradient
    # then differed from the CPU's by 4.2% (H200, torch 2.11). The comparison is of fp32 maths, so TF32 is off.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    make = lambda: PerceptualLoss(  # noqa: E731
        "vgg16", weights, feature_layers=["relu2_2"], style_layers=STYLE, lpips_weight=1.0, tv_weight=1e-3
    )
    cpu_terms, cpu_grad = _terms(make(), "cpu", *images)
    terms, grad = _terms(make(), device, *images)
    for key, value in cpu_terms.items():
        torch.testing.assert_close(terms[key], value, rtol=1e-4, atol=1e-7, msg=key)
    assert float((grad - cpu_grad).norm() / cpu_grad.norm()) < 1e-3


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_precision_fast_path_agrees_with_fp32(device, dtype, weights, images) -> None:
    if device == "cpu" and dtype == "fp16":
        pytest.skip("fp16 autocast is a CUDA path")
    if device == "cuda" and dtype == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no native bf16")
    make = lambda compute: PerceptualLoss(  # noqa: E731
        "vgg16", weights, feature_layers=["relu2_2"], style_layers=STYLE, lpips_weight=1.0, compute_dtype=compute
    )
    ref, ref_grad = _terms(make(None), device, *images)
    fast, grad = _terms(make(dtype), device, *images)
    torch.testing.assert_close(fast["total"], ref["total"], rtol=1e-2, atol=0)
    for key in ref:
        assert fast[key].dtype == torch.float32
        torch.testing.assert_close(fast[key], ref[key], rtol=5e-2, atol=0, msg=key)
    # The gradient's yardstick: how far the fp32 gradient moves when only the images and weights are rounded to
    # the half dtype. Through a (random) VGG's ReLUs that alone is ~11% for bf16 (measured, 2-core Xeon, fp32);
    # the half path may add a little to it, not a multiple of it.
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    rounded = make(None)
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(half).float())
    _, floor_grad = _terms(rounded, device, *(t.to(half).float() for t in images))
    floor = float((floor_grad - ref_grad).norm() / ref_grad.norm())
    error = float((grad - ref_grad).norm() / ref_grad.norm())
    assert 0 < error < 1.5 * floor + 1e-3, (error, floor)


@pytest.mark.parametrize("device", DEVICES)
def test_lpips_loss_on_the_device(device, weights, images) -> None:
    cpu, _ = _terms(LPIPSLoss(weights=weights, reduction="none"), "cpu", *images)
    on_device, grad = _terms(LPIPSLoss(weights=weights, reduction="none"), device, *images)
    torch.testing.assert_close(on_device["lpips"], cpu["lpips"], rtol=1e-4, atol=1e-7)
    assert bool(torch.isfinite(grad).all())
