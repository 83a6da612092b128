"""Images in and out, degradations, the embedded default images, training datasets and task pairs."""

from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path, load_default_image
from lossnet.data.degradations import DEGRADATIONS, degrade, downscale, jpeg_compress
from lossnet.data.folder import DEFAULT_SPLITS, ImageFolder, default_dataset
from lossnet.data.io import BACKGROUND, IMAGE_SUFFIXES, StoredImage, load_image, read_image, save_image, to_pil
from lossnet.data.tasks import TASKS, PairDataset, luminance, make_pair

__all__ = [
    "BACKGROUND",
    "DEFAULT_IMAGES",
    "DEFAULT_SPLITS",
    "DEGRADATIONS",
    "IMAGE_SUFFIXES",
    "TASKS",
    "ImageFolder",
    "PairDataset",
    "StoredImage",
    "default_dataset",
    "default_image_path",
    "degrade",
    "downscale",
    "jpeg_compress",
    "load_default_image",
    "load_image",
    "luminance",
    "make_pair",
    "read_image",
    "save_image",
    "to_pil",
]
