"""What an evaluation reads: the ground-truth images, and each one's input as the networks' task makes it.

:func:`ground_truth` gives the whole, unflipped images of a folder, a file or a list (the held-out default
images without one); :func:`scored_pair` the deterministic ``(input, truth)`` of one of them
(:mod:`lossnet.evaluation.run` scores the networks and the baseline on it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lossnet.data.folder import DEFAULT_SPLITS, ImageFolder, default_dataset
from lossnet.errors import InputError
from lossnet.tasks import Task


def ground_truth(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None, size: int | None
) -> tuple[ImageFolder, list[str], list[tuple[Path, str]]]:
    """The dataset of whole, unflipped images, their names, and the files that could not be read."""
    if data is None:
        dataset = default_dataset("val", flip=False, size=size)
        names = list(DEFAULT_SPLITS["val"])
        return dataset, names, []
    if isinstance(data, (str, os.PathLike)) and not Path(data).exists():
        raise FileNotFoundError(f"no such image folder: {data}")
    if isinstance(data, (str, os.PathLike)) and Path(data).is_file():
        data = [data]  # one image
    dataset = ImageFolder(data, crop_size=None, flip=False, size=size, probe="decode")
    root = Path(data) if isinstance(data, (str, os.PathLike)) and Path(data).is_dir() else None
    names = [path.relative_to(root).as_posix() if root is not None else path.name for path in dataset.files]
    if len(set(names)) < len(names):  # files of the same name from different folders of a list
        names = [str(path) for path in dataset.files]
    return dataset, names, list(dataset.skipped)


def scored_pair(task: Task, truth: torch.Tensor, options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input, ground truth)`` for one image ``(1, 3, H, W)``; deterministic (the evaluation options draw nothing,
    and any draw would come from a fixed seed)."""
    scale = task.scale(options)
    if scale != 1:
        h, w = truth.shape[-2:]
        if h < 2 * scale or w < 2 * scale:
            raise InputError(f"x{scale} super-resolution needs images of at least {2 * scale} px a side; got {h}x{w}")
    inp, target, *_ = task.pair(truth, options, generator=torch.Generator().manual_seed(0))
    return inp, target
