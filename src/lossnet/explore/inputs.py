"""Reading the images the explore tools look at: bounded in size, checked against the loss network."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.io import load_image, resize_longer_side
from lossnet.errors import InputError

#: The default bound on an input's longer side, on CPU (``--max-size``); GPUs take twice as much.
DEFAULT_MAX_SIZE = 512


def default_max_size(device: str | torch.device = "cpu") -> int:
    """512 pixels on CPU, 1024 on an accelerator.

    >>> default_max_size("cpu")
    512
    """
    return DEFAULT_MAX_SIZE if torch.device(device).type == "cpu" else 2 * DEFAULT_MAX_SIZE


@dataclass
class LoadedInput:
    """An image read for exploring.

    Attributes:
        image: ``(1, 3, H, W)`` in [0, 1], at most ``max_size`` on its longer side.
        path: where it came from.
        original_size: ``(H, W)`` of the file before any resizing.
    """

    image: torch.Tensor
    path: Path
    original_size: tuple[int, int]

    @property
    def resized(self) -> bool:
        """Whether the image was made smaller to fit ``max_size``."""
        return tuple(self.image.shape[-2:]) != self.original_size

    def notice(self, max_size: int) -> str:
        """A one-line notice about the resizing, for the command line."""
        (h0, w0), (h, w) = self.original_size, self.image.shape[-2:]
        return f"{self.path.name} is {w0}x{h0}; resized to {w}x{h} (--max-size {max_size})"


def check_max_size(max_size: object) -> int | None:
    """Return ``max_size`` if it is ``None`` or a positive int (pixels), else raise :class:`InputError`."""
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise InputError(f"max_size must be a positive number of pixels; got {max_size!r}")
    return max_size


def load_input(path: str | os.PathLike[str], max_size: int | None = DEFAULT_MAX_SIZE) -> LoadedInput:
    """Read an image, shrinking it so that its longer side is at most ``max_size`` (never enlarging).

    ``path`` may also name a built-in image (``grass``, ``chelsea``: :data:`lossnet.data.DEFAULT_IMAGES`), as
    ``train --style-image`` takes them, when no file of that name exists.

    Raises:
        FileNotFoundError: no such file.
        InputError: the path is a folder, the file is not a readable image, or ``max_size`` is not positive.
    """
    check_max_size(max_size)
    if str(path) in DEFAULT_IMAGES and not Path(path).exists():
        path = default_image_path(str(path))
    if Path(path).is_dir():
        raise InputError(f"{path} is a folder; give one image file")
    image = load_image(path)
    original = (image.shape[-2], image.shape[-1])
    if max_size is not None and max(original) > max_size:
        image = resize_longer_side(image, max_size)
    return LoadedInput(image, Path(path), original)


def fit_to_network(image: torch.Tensor, extractor: FeatureExtractor, name: str) -> torch.Tensor:
    """Check that ``image`` ``(1, 3, H, W)`` is large enough for the extractor's deepest layer.

    Raises:
        InputError: it is smaller than the deepest layer needs (the message names the layer,
            the sizes and the fix), or it is a batch.
    """
    if image.ndim == 4 and image.shape[0] != 1:
        raise InputError(
            f"{name} must be one image (1, 3, H, W); got a batch {tuple(image.shape)}: index it, e.g. x[:1]"
        )
    return extractor.check(image, name)
