"""Image-quality metrics: PSNR and SSIM, feature distance and LPIPS, as functions and modules.

- :mod:`lossnet.metrics.pixel`: :func:`psnr`, :func:`ssim`, :func:`ssim_map`, :func:`rgb_to_y`,
  :class:`PSNR`, :class:`SSIM` (the super-resolution conventions: luma channel, shaved border);
- :mod:`lossnet.metrics.feature`: :func:`feature_distance`, :class:`FeatureDistance`;
- :mod:`lossnet.metrics.lpips_metric`: :class:`LPIPS`, :func:`lpips`, :func:`load_lpips_calibration`.

The deep metrics are configurations of the term engine (:mod:`lossnet.terms`); metrics do not
import :mod:`lossnet.losses`.
"""

from lossnet.errors import LpipsUnavailableError
from lossnet.metrics.feature import FeatureDistance, feature_distance
from lossnet.metrics.lpips_metric import (
    IMAGENET_VGG16_ID,
    LPIPS,
    LPIPS_LAYERS,
    load_lpips_calibration,
    lpips,
    lpips_from_features,
)
from lossnet.metrics.pixel import (
    PSNR,
    SSIM,
    SSIM_K1,
    SSIM_K2,
    SSIM_SIGMA,
    SSIM_WINDOW,
    psnr,
    rgb_to_y,
    ssim,
    ssim_map,
)
from lossnet.terms import Backbone

__all__ = [
    "IMAGENET_VGG16_ID",
    "LPIPS",
    "LPIPS_LAYERS",
    "PSNR",
    "SSIM",
    "SSIM_K1",
    "SSIM_K2",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "Backbone",
    "FeatureDistance",
    "LpipsUnavailableError",
    "feature_distance",
    "load_lpips_calibration",
    "lpips",
    "lpips_from_features",
    "psnr",
    "rgb_to_y",
    "ssim",
    "ssim_map",
]
