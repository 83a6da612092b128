"""The embedded default images: the natural images and textures in scikit-image's wheel.

They are read straight from the installed package's data folder with Pillow;
scikit-image itself is never imported (``pip install 'lossnet[offline]'`` installs it; :mod:`lossnet.offline`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from lossnet.data.io import load_image
from lossnet.errors import DataUnavailableError
from lossnet.offline import SCIKIT_IMAGE
from lossnet.validation import check_choice

#: name -> file in ``skimage/data``: colour photographs and textures.
DEFAULT_IMAGES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle_left": "motorcycle_left.png",
    "motorcycle_right": "motorcycle_right.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "retina": "retina.jpg",
    "camera": "camera.png",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
}


def _data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data"
        if path.is_dir():
            return path
    raise DataUnavailableError(
        f"the default images come with scikit-image: {SCIKIT_IMAGE.install_hint}, or pass your own image files"
    )


def default_image_path(name: str) -> Path:
    """Path of the default image ``name`` (see :data:`DEFAULT_IMAGES`)."""
    check_choice(name, list(DEFAULT_IMAGES), "default image")
    return _data_dir() / DEFAULT_IMAGES[name]


def load_default_image(name: str, size: int | None = None) -> torch.Tensor:
    """Load a default image as ``(1, 3, H, W)`` in [0, 1]; ``size`` resizes the longer side."""
    return load_image(default_image_path(name), size=size)
