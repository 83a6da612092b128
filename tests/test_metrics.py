from __future__ import annotations

import math

import numpy as np
import torch

from lossnet.metrics import psnr


def test_psnr_known_value_and_reference() -> None:
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    per_image = psnr(x, y, reduction="none")
    for i in range(3):
        mse = np.mean((x[i].numpy() - y[i].numpy()) ** 2)
        assert math.isclose(float(per_image[i]), 10 * math.log10(1 / mse), rel_tol=1e-9)
    assert math.isclose(float(psnr(x, y)), float(per_image.mean()), rel_tol=1e-9)


def test_psnr_data_range_and_identity() -> None:
    x = torch.rand(1, 3, 8, 8)
    y = x + 0.01
    assert abs(float(psnr(x * 255, y * 255, data_range=255)) - float(psnr(x, y))) < 1e-3
    assert math.isinf(float(psnr(x, x)))
