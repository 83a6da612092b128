"""What a run reads: its training and validation images, and its style images (:mod:`lossnet.train.styles`)."""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path

import torch

from lossnet.data.defaults import DEFAULT_IMAGES
from lossnet.data.folder import FLAT_CROP_STD, ImageFolder, default_dataset
from lossnet.errors import InputError
from lossnet.models.registry import MODELS
from lossnet.tasks import TASKS
from lossnet.train.config import TrainConfig, model_kwargs
from lossnet.train.styles import load_styles


def anchored(c: TrainConfig) -> TrainConfig:
    """``c`` with every relative path it reads made absolute, against the current folder.

    A run stores its config (``config.json``, the checkpoint), and a resume may start in another
    folder: a relative ``--data photos`` would then name another folder, or none. So a run reads, and
    stores, the absolute paths: ``data``, ``val_data``, each ``style_image`` that is a file or a folder
    (a default image's name stays a name), and the task options whose field is marked ``path`` in its
    metadata (``style_any``'s ``style_data``). A path that does not exist is left as given, for the error
    that names it. Absolute paths are unchanged, so anchoring twice changes nothing.

    >>> from lossnet.train.config import task_config
    >>> c = anchored(task_config("style", data=".", style_image="brick"))
    >>> c.data == os.path.abspath("."), c.style_image
    (True, 'brick')
    >>> anchored(task_config("style_any", style_data=".")).task_options["style_data"] == os.path.abspath(".")
    True
    """

    def absolute(path: str | None) -> str | None:
        is_path = path is not None and path not in DEFAULT_IMAGES and Path(path).exists()
        return os.path.abspath(path) if is_path else path  # type: ignore[type-var]

    styles = absolute(c.style_image) if isinstance(c.style_image, str) else [absolute(s) for s in c.style_image]
    paths = [f.name for f in dataclasses.fields(TASKS[c.task].options) if f.metadata.get("path")]
    options = {k: absolute(v) if k in paths else v for k, v in c.task_options.items()}
    return c.replace(data=absolute(c.data), val_data=absolute(c.val_data), style_image=styles, task_options=options)


def load_style_image(c: TrainConfig) -> tuple[torch.Tensor, str]:
    """The config's style image ``(1, 3, H, W)`` in [0, 1], longer side ``style_size``, and where it came from.

    Raises:
        InputError: not a default image name nor a readable image file (named as ``--style-image``), or
            several style images.
    """
    ((image, source),) = load_styles(c.style_image, c.style_size, several=False)
    return image, source


def image_dataset(c: TrainConfig, folder: str | None, split: str, crop: int, flip: bool, flag: str) -> ImageFolder:
    """The images of ``folder`` (``None``: the default ``split``), cropped to ``crop``; ``flag`` names the option.

    The training crops of an instance-norm network are never almost one colour (see :class:`ImageFolder`).
    """
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

    A network class whose norm is not a constructor argument declares it as a class attribute ``norm``
    (``MultiStyleNet``: ``"instance"``).

    >>> from lossnet.train.config import task_config
    >>> [instance_normed(task_config(t)) for t in ("style", "style_multi", "superres")]
    [True, True, False]
    """
    fixed = getattr(MODELS[c.model], "norm", None)
    if isinstance(fixed, str):
        return fixed == "instance"
    norm = inspect.signature(MODELS[c.model]).parameters.get("norm")
    return model_kwargs(c).get("norm", norm.default if norm is not None else None) == "instance"
