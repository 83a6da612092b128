"""score(): one scoring function, with each metric declared once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import lossnet.evaluate
from lossnet import evaluation, metrics
from lossnet.errors import InputError
from lossnet.evaluation.scoring import (
    PIXEL_METRICS,
    PSNR_RGB,
    PSNR_Y,
    SSIM_RGB,
    feature_metric,
    headline_metrics,
    lpips_metric,
    score,
)


def pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    truth = torch.rand(2, 3, 40, 36, generator=g)
    return (truth + 0.1 * torch.randn(truth.shape, generator=g)).clamp(0, 1), truth


def test_each_column_is_declared_once():
    keys = [m.key for m in PIXEL_METRICS]
    assert keys == ["psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"]
    assert [m.label for m in PIXEL_METRICS] == ["PSNR-Y (dB)", "SSIM-Y", "PSNR-RGB (dB)", "SSIM-RGB"]
    assert all(m.higher_is_better for m in PIXEL_METRICS)
    assert headline_metrics("superres")[0] is PSNR_Y and headline_metrics("restore") == (PSNR_RGB, SSIM_RGB)


def test_superres_shaves_the_scale_and_matches_scikit_image():
    out, truth = pair()
    s = score("superres", out, truth, scale=4, metrics=[PSNR_RGB, SSIM_RGB])
    a, b = (x[..., 4:-4, 4:-4].permute(0, 2, 3, 1).double().numpy() for x in (out, truth))
    psnr = np.mean([peak_signal_noise_ratio(b[i], a[i], data_range=1.0) for i in range(2)])
    ssim = np.mean(
        [
            structural_similarity(b[i], a[i], data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False)
            for i in range(2)
        ]
    )  # fmt: skip
    assert s["psnr_rgb"] == pytest.approx(psnr, abs=1e-9)
    assert s["ssim_rgb"] == pytest.approx(ssim, abs=1e-4)


def test_the_whole_image_for_other_tasks_and_the_output_is_clamped():
    out, truth = pair(1)
    whole = score("restore", out, truth)
    assert whole["psnr_y"] == pytest.approx(float(metrics.psnr(out.double(), truth.double(), y_channel=True)))
    assert score("colorize", out + 2.0, truth)["psnr_rgb"] == score("colorize", torch.ones_like(out), truth)["psnr_rgb"]


def test_deep_and_unavailable_metrics():
    out, truth = pair(2)
    feature = metrics.FeatureDistance("vgg16", ["relu1_2"], weights=None)
    column = feature_metric(feature)
    assert (column.key, column.label, column.higher_is_better) == ("feature_relu1_2", "feature relu1_2", False)
    s = score("superres", out, truth, scale=2, metrics=[column, lpips_metric(None)])
    expected = float(feature(out[..., 2:-2, 2:-2], truth[..., 2:-2, 2:-2]))
    assert s["feature_relu1_2"] == pytest.approx(expected, rel=1e-6) and s["lpips"] is None


def test_refusals():
    out, truth = pair()
    with pytest.raises(InputError, match="'style' has no ground truth"):
        score("style", out, truth)
    with pytest.raises(InputError, match="same shape"):
        score("restore", out[..., :-1], truth)
    with pytest.raises(InputError, match="nothing after shaving 20 px"):
        score("superres", out, truth, scale=20)


def test_the_old_module_is_an_alias():
    for name in ("evaluate", "EvalResult", "write_tables", "method_names", "EVAL_TASKS", "DEFAULT_JPEG_QUALITY"):
        assert getattr(lossnet.evaluate, name) is getattr(evaluation, name)
