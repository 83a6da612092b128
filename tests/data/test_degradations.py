from __future__ import annotations

import pytest
import torch

import lossnet
from lossnet.data.degradations import DEGRADATIONS, degrade, downscale, gaussian_blur, jpeg_compress, upscale
from lossnet.metrics import psnr


def smooth_image() -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    return torch.stack([x, y, (x + y) / 2]).unsqueeze(0)


def test_downscale_shape_and_constant_preserved() -> None:
    x = torch.full((2, 3, 32, 48), 0.25)
    y = downscale(x, 4)
    assert y.shape == (2, 3, 8, 12)
    torch.testing.assert_close(y, torch.full_like(y, 0.25))


def test_downscale_needs_divisible_size() -> None:
    with pytest.raises(lossnet.InputError, match="divisible"):
        downscale(torch.rand(1, 3, 30, 32), 4)


def test_bicubic_round_trip_is_close_on_smooth_images() -> None:
    x = smooth_image()
    assert float(psnr(upscale(downscale(x, 4), 4), x)) > 30


def test_jpeg_is_lossy_but_close_and_keeps_shape_and_dtype() -> None:
    x = smooth_image()
    y = jpeg_compress(x, 10)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert 20 < float(psnr(y, x)) < float(psnr(jpeg_compress(x, 95), x))


def test_blur_preserves_mean_of_constant() -> None:
    x = torch.full((1, 3, 16, 16), 0.7)
    torch.testing.assert_close(gaussian_blur(x, 2.0), x)


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_named_degradations_change_the_image_but_keep_its_shape(name: str) -> None:
    x = torch.rand(1, 3, 32, 32)
    y = degrade(x, name)
    assert y.shape == x.shape
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert float((y - x).abs().mean()) > 1e-3


def test_unknown_degradation() -> None:
    with pytest.raises(lossnet.InputError, match="jpeg_q10"):
        degrade(torch.rand(1, 3, 8, 8), "jpeg")
