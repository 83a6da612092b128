"""Images in and out, degradations, and the embedded default images."""

from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path, load_default_image
from lossnet.data.degradations import DEGRADATIONS, degrade, downscale, jpeg_compress
from lossnet.data.io import IMAGE_SUFFIXES, load_image, save_image, to_pil

__all__ = [
    "DEFAULT_IMAGES",
    "DEGRADATIONS",
    "IMAGE_SUFFIXES",
    "default_image_path",
    "degrade",
    "downscale",
    "jpeg_compress",
    "load_default_image",
    "load_image",
    "save_image",
    "to_pil",
]
