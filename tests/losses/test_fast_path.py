"""The fast path agrees with an independent plain-PyTorch reference.

The reference is written here from the definitions, over the separately typed
torchvision-layout VGG16 of ``tests/backbones/reference.py``: full-depth ``features``, ImageNet
normalisation, ``einsum`` Grams, plain means; it shares no code with lossnet's loss.

Tolerances:

- float32: every term, the total and the input gradient within 1e-5 relative.
- bfloat16 (``compute_dtype=torch.bfloat16``, the VGG under autocast, channels-last on CPU,
  float32 Grams and reductions): every term within 5e-2 relative, the total within 1e-2, the
  input gradient within 8e-2 in relative L2 norm. Measured with the HED VGG16 on 64x64
  images, random and near-identical pairs: worst term 2.4e-2 (a Gram difference of two
  near-identical images), worst total 4.2e-3, worst gradient 3.7e-2. bf16 keeps 8 bits of
  mantissa (a relative step of 2^-8 = 3.9e-3 per rounding), so these are its expected size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from lossnet import FeatureExtractor, PerceptualLoss
from lossnet.errors import InputError, InputTypeError
from lossnet.functional.gram import gram_matrix
from lossnet.losses.presets import get_preset
from tests.backbones.reference import make_layers, normalise, relu_names

FP32_RTOL = 1e-5
BF16_TERM_RTOL = 5e-2
BF16_TOTAL_RTOL = 1e-2
BF16_GRAD_RTOL = 8e-2

JOHNSON: dict[str, Any] = {**get_preset("johnson2016_style").kwargs(), "pixel_weight": 0.5}
del JOHNSON["arch"]  # vgg16


class ReferenceLoss:
    """The johnson2016_style loss (plus a pixel term) from its definition, on a torchvision-layout VGG16."""

    def __init__(self, features: nn.Sequential, kwargs: dict[str, Any]) -> None:
        self.normalise: Callable[[torch.Tensor], torch.Tensor] = normalise
        self.features = features.eval().requires_grad_(False)
        self.relu = relu_names("vgg16")
        self.feature_layers = kwargs["feature_layers"]
        self.style_layers = kwargs["style_layers"]
        self.pixel_weight, self.tv_weight = kwargs["pixel_weight"], kwargs["tv_weight"]

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = {self.relu[n]: n for n in {**self.feature_layers, **self.style_layers}}
        h, out = self.normalise(x), {}
        for i, module in enumerate(self.features):
            h = module(h)
            if i in wanted:
                out[wanted[i]] = h
        return out

    @staticmethod
    def gram(f: torch.Tensor) -> torch.Tensor:
        b, c, h, w = f.shape
        return torch.einsum("bchw,bdhw->bcd", f, f) / (c * h * w)

    def terms(self, pred: torch.Tensor, target: torch.Tensor, style: torch.Tensor | None = None) -> dict:
        fp, ft = self.activations(pred), self.activations(target)
        fs = ft if style is None else self.activations(style)
        out = {"pixel": self.pixel_weight * ((pred - target) ** 2).mean((1, 2, 3)).mean()}
        for n, w in self.feature_layers.items():
            out[f"feature.{n}"] = w * ((fp[n] - ft[n]) ** 2).mean((1, 2, 3)).mean()
        for n, w in self.style_layers.items():
            out[f"style.{n}"] = w * ((self.gram(fp[n]) - self.gram(fs[n])) ** 2).mean((1, 2)).mean()
        tv = (pred[..., 1:, :] - pred[..., :-1, :]).abs().sum((1, 2, 3))
        tv = tv + (pred[..., :, 1:] - pred[..., :, :-1]).abs().sum((1, 2, 3))
        out["tv"] = self.tv_weight * (tv / pred[0].numel()).mean()
        out["total"] = sum(out.values())
        return out


def pair(loss_kwargs: dict[str, Any], weights: object = None) -> tuple[PerceptualLoss, ReferenceLoss]:
    """lossnet's loss and the reference over the same VGG16 weights."""
    loss = PerceptualLoss("vgg16", weights=weights, **loss_kwargs)
    features = make_layers("vgg16")
    sd = {k.removeprefix("features."): v for k, v in loss.extractor.state_dict().items()}
    missing, _ = features.load_state_dict(sd, strict=False)
    assert all(int(k.split(".")[0]) >= len(loss.extractor.features) for k in missing)  # only layers past the cut
    return loss, ReferenceLoss(features, loss_kwargs)


def images(b: int = 2, size: int = 40, near: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.rand(b, 3, size, size)
    pred = (target + 0.05 * torch.randn_like(target)).clamp(0, 1) if near else torch.rand(b, 3, size, size)
    return pred, target


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


# -- float32: the optimised path equals the reference -----------------------------------------------


@pytest.mark.parametrize("near", [False, True])
def test_fp32_terms_match_reference(near: bool) -> None:
    loss, ref = pair(JOHNSON)
    pred, target = images(near=near)
    got, expected = loss.terms(pred, target), ref.terms(pred, target)
    assert list(got) == list(expected)
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=FP32_RTOL, atol=0, msg=name)


@pytest.mark.parametrize("near", [False, True])
def test_fp32_gradient_matches_reference(near: bool) -> None:
    # A ReLU network's gradient jumps where a pre-activation crosses 0, so a 1-ulp difference
    # in the network's input (the reference normalises as (x - mean) / std in float64, lossnet
    # as one float32 multiply-add) can switch a unit and move the gradient by 1e-4 on some
    # inputs. The gradients are therefore compared on the same network input: the reference
    # takes lossnet's normalisation here (whose values the term test above checks), in the extractor's
    # CPU layout (channels-last), for the same reason: the convolutions then sum in the same order.
    loss, ref = pair(JOHNSON)
    ref.normalise = lambda x: loss.extractor.preprocess(x).contiguous(memory_format=torch.channels_last)
    pred, target = images(near=near)
    p1, p2 = pred.clone().requires_grad_(True), pred.clone().requires_grad_(True)
    loss(p1, target).backward()
    ref.terms(p2, target)["total"].backward()
    assert rel_err(p1.grad, p2.grad) < FP32_RTOL


def test_fp32_cached_style_matches_reference() -> None:
    loss, ref = pair(JOHNSON)
    pred, target = images()
    style = torch.rand(1, 3, 56, 48)
    loss.set_style_target(style)
    got, expected = loss.terms(pred, target), ref.terms(pred, target, style=style)
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=FP32_RTOL, atol=0, msg=name)


def test_fp32_path_stays_float32_and_runs_channels_last_on_cpu() -> None:
    # compute_dtype=None runs in float32 without autocast; on CPU the activations are channels-last, which
    # oneDNN runs 1.03-1.27x faster in fp32 (benchmarks/fp32_tuning.py, BENCHMARKS.md).
    fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
    out = fx(torch.rand(1, 3, 16, 16))
    assert all(v.dtype == torch.float32 and v.is_contiguous(memory_format=torch.channels_last) for v in out.values())


def test_fast_path_does_not_track_parameter_gradients() -> None:
    loss = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], compute_dtype=torch.bfloat16)
    pred, target = images(size=16)
    pred.requires_grad_(True)
    loss(pred, target).backward()
    assert pred.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())


# -- bfloat16: within the documented tolerance ------------------------------------------------------


@pytest.mark.parametrize("near", [False, True])
def test_bf16_matches_fp32_within_tolerance(hed_weights: object, near: bool) -> None:
    # Against float32 lossnet (equal to the reference above); HED's Caffe preprocessing is not the reference's.
    loss = PerceptualLoss("vgg16", weights=hed_weights, compute_dtype=torch.bfloat16, **JOHNSON)
    ref_loss = PerceptualLoss("vgg16", weights=hed_weights, **JOHNSON)
    pred, target = images(size=64, near=near)
    p1, p2 = pred.clone().requires_grad_(True), pred.clone().requires_grad_(True)
    got, expected = loss.terms(p1, target), ref_loss.terms(p2, target)
    for name in got:
        assert got[name].dtype == torch.float32
        tol = BF16_TOTAL_RTOL if name == "total" else BF16_TERM_RTOL
        torch.testing.assert_close(got[name], expected[name], rtol=tol, atol=0, msg=name)
    got["total"].backward()
    expected["total"].backward()
    assert rel_err(p1.grad, p2.grad) < BF16_GRAD_RTOL


def test_compute_dtype_equals_the_callers_autocast() -> None:
    fast = PerceptualLoss("vgg11", weights=None, feature_layers=["relu2_1"], style_layers=["relu1_1"])
    own = PerceptualLoss(
        "vgg11", weights=None, feature_layers=["relu2_1"], style_layers=["relu1_1"], compute_dtype=torch.bfloat16
    )
    own.load_state_dict(fast.state_dict())
    pred, target = images(size=24)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        wrapped = fast.terms(pred, target)
    inside = own.terms(pred, target)
    for name in inside:
        torch.testing.assert_close(inside[name], wrapped[name], rtol=0, atol=0, msg=name)


def test_bf16_features_are_half_and_channels_last_grams_float32() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None, compute_dtype=torch.bfloat16)
    out = fx(torch.rand(2, 3, 16, 16))
    assert all(v.dtype == torch.bfloat16 for v in out.values())
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in out.values())
    loss = PerceptualLoss("vgg11", weights=None, style_layers=["relu2_1"], compute_dtype=torch.bfloat16)
    loss.set_style_target(torch.rand(1, 3, 20, 20))
    assert loss.style_gram("relu2_1").dtype == torch.float32


def test_compute_dtype_float32_means_none_and_bad_values_raise() -> None:
    assert FeatureExtractor("vgg11", ["relu1_1"], weights=None, compute_dtype=torch.float32).compute_dtype is None
    with pytest.raises(InputError, match=r"compute_dtype must be None \(float32\), torch.bfloat16 or torch.float16"):
        PerceptualLoss("vgg11", weights=None, feature_layers=["relu1_1"], compute_dtype=torch.int8)
    with pytest.raises(InputError, match=r"unknown compute_dtype 'bf32'.*Did you mean .*'bf16'"):
        FeatureExtractor("vgg11", ["relu1_1"], weights=None, compute_dtype="bf32")
    with pytest.raises(InputTypeError, match="compute_dtype must be a torch.dtype"):
        FeatureExtractor("vgg11", ["relu1_1"], weights=None, compute_dtype=3)  # type: ignore[arg-type]


# -- channels-last Grams ----------------------------------------------------------------------------


def test_channels_last_gram_equals_contiguous_gram_and_gradient() -> None:
    x = torch.randn(2, 5, 6, 7)
    cl = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    plain = x.clone().requires_grad_(True)
    torch.testing.assert_close(gram_matrix(cl), gram_matrix(plain), rtol=1e-6, atol=1e-7)
    weights = torch.randn(2, 5, 5)
    (gram_matrix(cl) * weights).sum().backward()
    (gram_matrix(plain) * weights).sum().backward()
    torch.testing.assert_close(cl.grad, plain.grad, rtol=1e-5, atol=1e-6)
    xd = torch.randn(1, 3, 4, 4, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(gram_matrix, (xd.requires_grad_(True),))
