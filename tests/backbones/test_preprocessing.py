"""Preprocess: input_range -> what the weights expect, as one affine map."""

from __future__ import annotations

import pytest
import torch

import lossnet
from lossnet.backbones.preprocessing import CAFFE, HED_CAFFE, TORCH, Preprocess, get_preprocessing

RANGES = [(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)]
MEAN_RGB = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
STD_RGB = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
# Keras preprocess_input("caffe") mean, in B, G, R order
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)


def image_in(
    input_range: tuple[float, float], shape: tuple[int, ...] = (2, 3, 5, 7)
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image in ``input_range`` and the same image in [0, 1], float64."""
    x01 = torch.rand(shape, dtype=torch.float64)
    lo, hi = input_range
    return (x01 * (hi - lo) + lo).float(), x01


@pytest.mark.parametrize("input_range", RANGES)
def test_torch_preprocessing(input_range: tuple[float, float]) -> None:
    x, x01 = image_in(input_range)
    expected = (x01 - MEAN_RGB) / STD_RGB
    out = Preprocess(TORCH, input_range)(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=2e-5)


@pytest.mark.parametrize("input_range", RANGES)
def test_caffe_preprocessing(input_range: tuple[float, float]) -> None:
    x, x01 = image_in(input_range)
    bgr255 = x01[:, [2, 1, 0]] * 255.0
    expected = bgr255 - CAFFE_MEAN_BGR
    out = Preprocess(CAFFE, input_range)(x)
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=5e-4)


def test_caffe_known_value() -> None:
    # pure red in [0, 1]: B = 0 - 103.939, G = 0 - 116.779, R = 255 - 123.68
    red = torch.zeros(1, 3, 1, 1)
    red[:, 0] = 1.0
    out = Preprocess(CAFFE, (0, 1))(red).flatten().tolist()
    assert out == pytest.approx([-103.939, -116.779, 131.32], abs=1e-3)


def test_hed_mean() -> None:
    assert HED_CAFFE.bgr and HED_CAFFE.scale == 255.0
    out = Preprocess(HED_CAFFE, (0, 255))(torch.zeros(1, 3, 1, 1)).flatten().tolist()
    assert out == pytest.approx([-104.00699, -116.66877, -122.67892], abs=1e-4)


def test_buffers_are_not_persistent() -> None:
    p = Preprocess(TORCH, (0, 1))
    assert dict(p.state_dict()) == {}
    assert {name for name, _ in p.named_buffers()} == {"weight", "bias"}
    assert list(p.parameters()) == []
    fx = lossnet.FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    assert not any(k.startswith("preprocess") for k in fx.state_dict())


@pytest.mark.parametrize("prep", [TORCH, CAFFE])
def test_one_channel_is_repeated(prep: object) -> None:
    gray = torch.rand(2, 1, 4, 4)
    p = Preprocess(prep, (0, 1))  # type: ignore[arg-type]
    out = p(gray)
    assert out.shape == (2, 3, 4, 4)
    torch.testing.assert_close(out, p(gray.repeat(1, 3, 1, 1)))


def test_float64_input_stays_float64() -> None:
    x, x01 = image_in((0, 1))
    out = Preprocess(TORCH, (0, 1)).double()(x01)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, (x01 - MEAN_RGB) / STD_RGB, rtol=0, atol=1e-5)


def test_get_preprocessing() -> None:
    assert get_preprocessing("torch") is TORCH
    assert get_preprocessing("caffe") is CAFFE
    assert get_preprocessing(HED_CAFFE) is HED_CAFFE
    with pytest.raises(lossnet.InputError, match="caffe"):
        get_preprocessing("cafe")


@pytest.mark.parametrize("preprocessing", [TORCH, CAFFE, HED_CAFFE])
def test_float64_constants_are_exact_after_double(preprocessing) -> None:
    """``.double()`` gives the float64 constants, not float32 ones widened (about 5e-8 off)."""
    p = Preprocess(preprocessing, input_range=(0.0, 1.0)).double()
    mean = torch.tensor(preprocessing.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=torch.float64).view(1, 3, 1, 1)
    assert p.weight.dtype == torch.float64
    torch.testing.assert_close(p.weight, preprocessing.scale / std, rtol=1e-15, atol=0)
    torch.testing.assert_close(p.bias, -mean / std, rtol=1e-15, atol=0)
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    rgb = x.flip(1) if preprocessing.bgr else x
    torch.testing.assert_close(p(x), (rgb * preprocessing.scale - mean) / std, rtol=1e-14, atol=1e-12)
    # Back to float32: the constants rounded once from float64, as before.
    p.float()
    assert p.weight.dtype == torch.float32
    torch.testing.assert_close(p.weight, (preprocessing.scale / std).float(), rtol=0, atol=0)


def test_double_extractor_preprocesses_exactly() -> None:
    fx = lossnet.FeatureExtractor("vgg11", ["relu1_1"], weights=None).double()
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(fx.preprocess.weight, 1 / std, rtol=1e-15, atol=0)
