"""PSNR and SSIM against scikit-image, the outside reference.

scikit-image is the outside reference for PSNR and SSIM (``peak_signal_noise_ratio``,
``structural_similarity`` with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``,
``color.rgb2ycbcr`` for the luma channel). Both sides compute in float64, so they agree to 1e-9
(relative for PSNR, absolute for SSIM in [-1, 1]): a disagreement at that level is a different
formula, not rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lossnet.errors import InputError, InputTypeError
from lossnet.metrics import PSNR, SSIM, psnr, rgb_to_y, ssim, ssim_map

SKIMAGE_TOL = 1e-9


def pair(b: int = 3, c: int = 3, size: int = 24, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(b, c, size, size, dtype=torch.float64)
    return x, (x + noise * torch.randn_like(x)).clamp(0, 1)


def hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def skimage_y(t: torch.Tensor) -> np.ndarray:
    """Luma in [16, 235] by scikit-image, of a (3, H, W) image in [0, 1]."""
    return rgb2ycbcr(hwc(t))[..., 0]


def skimage_ssim(a: np.ndarray, b: np.ndarray, data_range: float, channel_axis: int | None = None) -> float:
    return float(
        structural_similarity(
            a,
            b,
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=channel_axis,
        )
    )


# -- PSNR ------------------------------------------------------------------------------------------


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


def test_psnr_matches_skimage_rgb_and_shave() -> None:
    x, y = pair()
    got = psnr(x, y, reduction="none", shave=4)
    for i in range(3):
        ref = peak_signal_noise_ratio(x[i, :, 4:-4, 4:-4].numpy(), y[i, :, 4:-4, 4:-4].numpy(), data_range=1.0)
        assert math.isclose(float(got[i]), ref, rel_tol=SKIMAGE_TOL)


def test_psnr_y_channel_matches_skimage_rgb2ycbcr() -> None:
    x, y = pair()
    got = psnr(x, y, reduction="none", y_channel=True, shave=2)
    for i in range(3):
        ref = peak_signal_noise_ratio(skimage_y(x[i])[2:-2, 2:-2], skimage_y(y[i])[2:-2, 2:-2], data_range=255)
        assert math.isclose(float(got[i]), ref, rel_tol=SKIMAGE_TOL)
    # The same figure for [0, 255] data with data_range=255.
    assert math.isclose(float(psnr(x * 255, y * 255, 255, y_channel=True, shave=2)), float(got.mean()), rel_tol=1e-9)


def test_rgb_to_y_matches_skimage_and_range() -> None:
    x = torch.rand(1, 3, 5, 7, dtype=torch.float64)
    np.testing.assert_allclose(rgb_to_y(x)[0, 0].numpy() * 255, skimage_y(x[0]), rtol=1e-12)
    extremes = rgb_to_y(torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)]).double()).flatten()
    torch.testing.assert_close(extremes * 255, torch.tensor([16.0, 235.0], dtype=torch.float64))


def test_psnr_module_equals_function_and_dtype_preserved() -> None:
    x, y = pair(c=3)
    x32, y32 = x.float(), y.float()
    out = PSNR(reduction="sum", y_channel=True, shave=1)(x32, y32)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, psnr(x32, y32, reduction="sum", y_channel=True, shave=1))


# -- SSIM ------------------------------------------------------------------------------------------


def test_ssim_matches_skimage_grey() -> None:
    x, y = pair(c=1, size=32, noise=0.1)
    got = ssim(x, y, reduction="none")
    for i in range(3):
        assert abs(float(got[i]) - skimage_ssim(x[i, 0].numpy(), y[i, 0].numpy(), 1.0)) < SKIMAGE_TOL


def test_ssim_matches_skimage_rgb_channel_mean() -> None:
    x, y = pair(c=3, size=27, noise=0.2)  # odd, non-square sizes exercise the window bounds
    x, y = x[..., :23], y[..., :23]
    got = ssim(x, y, reduction="none")
    for i in range(3):
        assert abs(float(got[i]) - skimage_ssim(hwc(x[i]), hwc(y[i]), 1.0, channel_axis=2)) < SKIMAGE_TOL


def test_ssim_y_channel_and_shave_match_skimage() -> None:
    x, y = pair(c=3, size=40, noise=0.1)
    got = ssim(x, y, reduction="none", y_channel=True, shave=4)
    for i in range(3):
        ref = skimage_ssim(skimage_y(x[i])[4:-4, 4:-4], skimage_y(y[i])[4:-4, 4:-4], 255.0)
        assert abs(float(got[i]) - ref) < SKIMAGE_TOL


def test_ssim_data_range_255_matches_skimage() -> None:
    x, y = pair(c=1, size=20)
    x, y = (x * 255).round(), (y * 255).round()
    got = float(ssim(x, y, data_range=255))
    ref = np.mean([skimage_ssim(x[i, 0].numpy(), y[i, 0].numpy(), 255.0) for i in range(3)])
    assert abs(got - ref) < SKIMAGE_TOL


def test_ssim_known_value_for_constant_images() -> None:
    # Constant images have zero variances: SSIM = (2ab + C1) / (a^2 + b^2 + C1) * (C2 / C2).
    a, b = 0.2, 0.6
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim(torch.full((1, 1, 16, 16), a, dtype=torch.float64), torch.full((1, 1, 16, 16), b, dtype=torch.float64))
    assert math.isclose(float(got), expected, rel_tol=1e-12)


def test_ssim_identity_symmetry_and_anticorrelation() -> None:
    x, y = pair(c=3, size=16)
    torch.testing.assert_close(ssim(x, x, reduction="none"), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    assert float(ssim(x, 1 - x)) < 0  # a negative image is anti-correlated everywhere


def test_ssim_map_shape_and_mean() -> None:
    x, y = pair(b=2, c=3, size=20)
    m = ssim_map(x, y)
    assert m.shape == (2, 3, 10, 10)
    torch.testing.assert_close(m.flatten(1).mean(1), ssim(x, y, reduction="none"))


def test_ssim_batched_equals_per_sample_and_broadcast_target() -> None:
    x, y = pair(b=3, c=3, size=16)
    batched = ssim(x, y, reduction="none")
    single = torch.stack([ssim(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single)
    broadcast = ssim(x, y[:1], reduction="none")
    torch.testing.assert_close(broadcast, torch.stack([ssim(x[i : i + 1], y[:1]) for i in range(3)]))


def test_ssim_module_equals_function_and_dtype() -> None:
    x, y = (t.float() for t in pair(c=3, size=16))
    out = SSIM(reduction="none", y_channel=True, shave=1)(x, y)
    assert out.dtype == torch.float32 and out.shape == (3,)
    torch.testing.assert_close(out, ssim(x, y, reduction="none", y_channel=True, shave=1))


def test_ssim_gradcheck_float64() -> None:
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y), (x,))


@pytest.mark.parametrize("fn", [psnr, ssim])
def test_metric_input_errors(fn) -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(InputError, match="shave=8 leave 0x0"):
        fn(x, x, shave=8)
    with pytest.raises(InputTypeError, match="shave must be an int"):
        fn(x, x, shave=1.5)
    with pytest.raises(InputError, match="data_range must be a finite number > 0"):
        fn(x, x, data_range=0)
    with pytest.raises(InputError, match=r"Pass y_channel=False"):
        fn(x[:, :1], x[:, :1], y_channel=True)
    with pytest.raises(InputError, match="same shape"):
        fn(x, x[..., :8])
    with pytest.raises(InputError, match="unknown reduction 'avg'"):
        fn(x, x, reduction="avg")
    with pytest.raises(InputTypeError, match="floating-point"):
        fn((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))


def test_ssim_too_small_says_the_window_size() -> None:
    x = torch.rand(1, 1, 10, 30)
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(x, x)
