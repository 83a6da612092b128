"""Metrics: PSNR and SSIM against scikit-image, feature distance, and LPIPS against a hand-written reference.

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

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import InputError, InputTypeError, LossnetError, WeightsError, WeightsUnavailableError
from lossnet.metrics import (
    LPIPS,
    LPIPS_LAYERS,
    PSNR,
    SSIM,
    FeatureDistance,
    LpipsUnavailableError,
    feature_distance,
    load_lpips_calibration,
    lpips,
    psnr,
    rgb_to_y,
    ssim,
    ssim_map,
)
from tests.backbones.reference import IMAGENET_MEAN, IMAGENET_STD, make_layers, relu_names

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


# -- feature distance ------------------------------------------------------------------------------


def toy_backbone(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """A 'backbone' with known features: the image itself and its 2x2 average pooling."""
    return {"pixels": x, "pooled": torch.nn.functional.avg_pool2d(x, 2)}


def test_feature_distance_any_backbone_known_value() -> None:
    x, y = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    y[0] = 1.0  # sample 0 differs by 1 everywhere: MSE 1 on both layers; sample 1 is identical
    got = feature_distance(x, y, toy_backbone, {"pixels": 2.0, "pooled": 0.5}, reduction="none")
    torch.testing.assert_close(got, torch.tensor([2.5, 0.0]))
    all_layers = feature_distance(x, y, toy_backbone, reduction="sum")
    torch.testing.assert_close(all_layers, torch.tensor(2.0))
    l1 = feature_distance(x, y * 3, toy_backbone, ["pooled"], criterion="l1", reduction="none")
    torch.testing.assert_close(l1, torch.tensor([3.0, 0.0]))


def test_feature_distance_errors() -> None:
    x = torch.rand(1, 1, 4, 4)
    with pytest.raises(InputError, match=r"returned layers \['pixels', 'pooled'\]; cannot take \['relu2_2'\]"):
        feature_distance(x, x, toy_backbone, ["relu2_2"])
    with pytest.raises(InputTypeError, match="backbone must be a callable"):
        feature_distance(x, x, "vgg16")  # type: ignore[arg-type]


def test_feature_distance_module_equals_function_with_its_extractor() -> None:
    metric = FeatureDistance("vgg11", {"relu1_1": 1.0, "relu2_1": 0.25}, weights=None, reduction="none")
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    expected = feature_distance(x, y, metric.extractor, {"relu1_1": 1.0, "relu2_1": 0.25}, reduction="none")
    torch.testing.assert_close(metric(x, y), expected)
    fx, fy = metric.extractor(x), metric.extractor(y)
    by_hand = ((fx["relu1_1"] - fy["relu1_1"]) ** 2).mean((1, 2, 3)) + 0.25 * (
        (fx["relu2_1"] - fy["relu2_1"]) ** 2
    ).mean((1, 2, 3))
    torch.testing.assert_close(metric(x, y), by_hand)


# -- LPIPS ---------------------------------------------------------------------------------------


def synthetic_calibration(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(LPIPS_LAYERS.values())}


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(synthetic_calibration(), path)
    return path


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty torch.hub cache (and LOSSNET_OFFLINE=1 from conftest): ImageNet weights cannot be had."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def lpips_reference(x: torch.Tensor, y: torch.Tensor, features: torch.nn.Sequential, cal: dict) -> torch.Tensor:
    """LPIPS written from Zhang et al. 2018, eq. 1, over a torchvision-layout VGG16: no lossnet code."""
    relu = relu_names("vgg16")
    taps = {relu[n]: i for i, n in enumerate(["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"])}
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def taps_of(img: torch.Tensor) -> list[torch.Tensor]:
        h, out = (img - mean) / std, []
        for idx, module in enumerate(features):
            h = module(h)
            if idx in taps:
                out.append(h)
        return out

    d = torch.zeros(x.shape[0])
    for i, (a, b) in enumerate(zip(taps_of(x), taps_of(y))):
        na = a / (torch.linalg.vector_norm(a, dim=1, keepdim=True) + 1e-10)
        nb = b / (torch.linalg.vector_norm(b, dim=1, keepdim=True) + 1e-10)
        w = cal[f"lin{i}.model.1.weight"].flatten()
        d += torch.einsum("bchw,c->bhw", (na - nb) ** 2, w).mean((1, 2))
    return d


def test_lpips_computation_matches_hand_written_reference(calibration_file) -> None:
    metric = LPIPS(calibration_file, weights=None, reduction="none", strict=False)
    features = make_layers("vgg16")
    sd = {k.removeprefix("features."): v for k, v in metric.extractor.state_dict().items()}
    features.load_state_dict(sd, strict=False)  # the reference has pool5 too, which has no parameters
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = lpips_reference(x, y, features.eval(), synthetic_calibration())
        got = metric(x, y)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)
    assert (got > 0).all()


def test_lpips_identity_symmetry_and_input_range(calibration_file) -> None:
    x, y = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32)
    metric = LPIPS(calibration_file, weights=None, reduction="none", strict=False)
    with torch.no_grad():
        torch.testing.assert_close(metric(x, x), torch.zeros(2))
        torch.testing.assert_close(metric(x, y), metric(y.expand_as(x), x))
        signed = LPIPS(calibration_file, None, "none", input_range=(-1, 1), strict=False)
        signed.load_state_dict(metric.state_dict())
        torch.testing.assert_close(signed(2 * x - 1, 2 * y - 1), metric(x, y), rtol=1e-5, atol=1e-7)


def test_lpips_unavailable_offline_says_so(calibration_file, empty_hub) -> None:
    with pytest.raises(LpipsUnavailableError, match="only meaningful with torchvision's ImageNet VGG16") as info:
        LPIPS(calibration_file)
    assert "No other weights are substituted" in str(info.value)
    assert isinstance(info.value, WeightsUnavailableError) and isinstance(info.value, LossnetError)
    with pytest.raises(LpipsUnavailableError):
        lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), calibration_file)


@pytest.mark.parametrize("weights", ["hed", None, "auto"])
def test_lpips_strict_refuses_other_backbones(calibration_file, weights) -> None:
    with pytest.raises(LpipsUnavailableError, match="not LPIPS"):
        LPIPS(calibration_file, weights=weights)


def test_lpips_strict_accepts_imagenet_vgg16_and_refuses_other_loaded(calibration_file) -> None:
    from lossnet.backbones.preprocessing import TORCH

    sd = {f"features.{k}": v for k, v in make_layers("vgg16").state_dict().items()}
    LPIPS(calibration_file, LoadedWeights("imagenet:vgg16-397923af", "torchvision vgg16", TORCH, sd))
    LPIPS(calibration_file, LoadedWeights("file:vgg16.pth:397923af", "a local copy", TORCH, sd))
    with pytest.raises(LpipsUnavailableError, match="calibrated for torchvision's ImageNet VGG16"):
        LPIPS(calibration_file, LoadedWeights("file:other.pth:12345678", "another VGG16", TORCH, sd))


def test_load_lpips_calibration(tmp_path, calibration_file) -> None:
    cal = load_lpips_calibration(calibration_file)
    assert list(cal) == list(LPIPS_LAYERS)
    assert [w.shape for w in cal.values()] == [(c,) for c in LPIPS_LAYERS.values()]
    with pytest.raises(LpipsUnavailableError, match="calibration file not found"):
        load_lpips_calibration(tmp_path / "missing.pth")
    bad = synthetic_calibration()
    bad["lin2.model.1.weight"] = torch.rand(1, 128, 1, 1)
    torch.save(bad, tmp_path / "alex.pth")
    with pytest.raises(WeightsError, match=r"expected lin2.model.1.weight of shape \(1, 256, 1, 1\), got \(1, 128"):
        load_lpips_calibration(tmp_path / "alex.pth")
    negative = synthetic_calibration()
    negative["lin0.model.1.weight"] = -negative["lin0.model.1.weight"]
    torch.save(negative, tmp_path / "neg.pth")
    with pytest.raises(WeightsError, match="non-negative"):
        load_lpips_calibration(tmp_path / "neg.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="could not read"):
        load_lpips_calibration(tmp_path / "garbage.pth")


def test_feature_extractor_is_a_feature_distance_backbone() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    x = torch.rand(1, 3, 16, 16)
    assert float(feature_distance(x, x.flip(-1), fx)) > 0
