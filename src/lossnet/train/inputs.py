"""What a run reads: its training and validation images, and the style image of ``style``."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from PIL import Image

from lossnet.data.content_style import ContentStyleDataset, style_images
from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.folder import FLAT_CROP_STD, ImageFolder, default_dataset
from lossnet.data.io import load_image, resize_longer_side
from lossnet.errors import InputError
from lossnet.models.registry import MODELS
from lossnet.tasks import TASKS
from lossnet.train.config import TrainConfig, model_kwargs


def load_style_image(c: TrainConfig) -> tuple[torch.Tensor, str]:
    """The config's style image ``(1, 3, H, W)`` in [0, 1], longer side ``style_size``, and where it came from.

    Raises:
        InputError: not a default image name nor a readable image file (named as ``--style-image``).
    """
    name = c.style_image
    if name in DEFAULT_IMAGES:
        path = default_image_path(name)
    else:
        path = Path(name)
        fix = f"give one image file, or a default image: {', '.join(DEFAULT_IMAGES)}"
        if path.is_dir():
            raise InputError(f"--style-image {name} is a folder; {fix}")
        if not path.is_file():
            raise InputError(f"--style-image {name}: no such image file; {fix}")
    try:
        image = load_image(path)
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # a non-image, a decompression bomb
        raise InputError(f"--style-image {name}: {err}") from None
    source = f"default {name!r} (scikit-image)" if name in DEFAULT_IMAGES else str(path)
    return resize_longer_side(image, c.style_size), source


def image_dataset(
    c: TrainConfig, folder: str | None, split: str, crop: int, flip: bool, flag: str
) -> ImageFolder | ContentStyleDataset:
    """The images of ``folder`` (``None``: the default ``split``), cropped to ``crop``; ``flag`` names the option.

    The training crops of an instance-norm network are never almost one colour (see :class:`ImageFolder`).
    A task that pairs its images with styles (``style_any``) gets each with a style crop of ``style_data``.
    """
    images = _images(c, folder, split, crop, flip, flag)
    if not TASKS[c.task].pairs_with_styles:
        return images
    try:
        styles = style_images(c.style_data, c.style_size, cache=c.cache_images)
    except (FileNotFoundError, InputError) as err:
        raise InputError(f"--style-data: {err}") from None
    return ContentStyleDataset(images, styles, flip=flip)


def _images(c: TrainConfig, folder: str | None, split: str, crop: int, flip: bool, flag: str) -> ImageFolder:
    cache = c.cache_images if c.cache_images is not None else folder is None
    min_std = FLAT_CROP_STD if split == "train" and instance_normed(c) else 0.0
    if folder is None:
        return default_dataset(
            split, crop_size=crop, flip=flip, seed=c.seed, size=c.image_size, cache=cache, min_std=min_std
        )
    if not Path(folder).exists():
        raise InputError(f"--{flag} {folder}: no such folder; give the folder that holds your images")
    return ImageFolder(folder, crop_size=crop, flip=flip, seed=c.seed, size=c.image_size, cache=cache, min_std=min_std)


def instance_normed(c: TrainConfig) -> bool:
    """Whether the run's network normalises each image by its own statistics (``norm="instance"``).

    >>> from lossnet.train.config import task_config
    >>> instance_normed(task_config("style")), instance_normed(task_config("superres"))
    (True, False)
    """
    norm = inspect.signature(MODELS[c.model]).parameters.get("norm")
    return model_kwargs(c).get("norm", norm.default if norm is not None else None) == "instance"
