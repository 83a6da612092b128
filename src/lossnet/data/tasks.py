"""Training pairs ``(input, target)`` for each image-transformation task.

- ``superres``: input = antialiased bicubic downscale by ``scale``; target = the image,
  cropped (top-left) to multiples of ``scale``.
- ``restore``: input = JPEG at a random quality, optionally with a number drawn on it
  (fastai's ``crappify``); target = the image.
- ``colorize``: input = ITU-R BT.601 luma ``Y' = 0.299 R + 0.587 G + 0.114 B``, one
  channel; target = the image.
- ``style``: input = target = the image (the style image lives in the loss).

The makers and their options are in :mod:`lossnet.data.pairs`; the task registry
(:mod:`lossnet.tasks`) names one of them per task. :func:`make_pair` makes one pair by task name
(the four tasks above); :class:`PairDataset` wraps a dataset of images (such as
:class:`lossnet.data.folder.ImageFolder`) and makes a pair per item, reproducibly, with a task's
name or with any pair maker and its options.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch

from lossnet.data.folder import PAIR_STREAM, check_index, item_generator
from lossnet.data.pairs import (
    BT601, NoOptions, PairMaker, RestoreOptions, SuperResOptions, check_jpeg_quality, colorize_pair, identity_pair,
    luminance, options_from, restore_pair, superres_pair,
)
from lossnet.errors import InputError, InputTypeError
from lossnet.validation import check_choice, check_image, check_positive_int

#: The pair maker and options class of each task :func:`make_pair` knows by name.
PAIR_MAKERS: Mapping[str, tuple[PairMaker, type]] = MappingProxyType(
    {
        "superres": (superres_pair, SuperResOptions),
        "restore": (restore_pair, RestoreOptions),
        "colorize": (colorize_pair, NoOptions),
        "style": (identity_pair, NoOptions),
    }
)
#: The tasks :func:`make_pair` knows.
TASKS = tuple(PAIR_MAKERS)

__all__ = ["BT601", "PAIR_MAKERS", "TASKS", "PairDataset", "apply_pair", "check_pair_options", "luminance", "make_pair"]


def make_pair(
    task: str,
    image: torch.Tensor,
    scale: int = 4,
    jpeg_quality: int | tuple[int, int] = (10, 70),
    text: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Make the ``(input, target)`` pair for ``task`` from one image or a batch.

    Args:
        task: one of :data:`TASKS` (see the table in the module docstring).
        image: ``(C, H, W)`` or ``(B, C, H, W)`` in [0, 1]; ``C = 3`` for ``colorize``,
            1 or 3 otherwise. Both outputs have the same number of dimensions.
        scale: ``superres`` downscale factor. H and W are first cropped (top-left)
            to multiples of it, and the crop is the target.
        jpeg_quality: ``restore`` JPEG quality, an int or a ``(low, high)`` range in
            1-100 from which each image draws one uniformly (both ends included).
            The default follows fastai's ``crappify``.
        text: ``restore`` only: draw a random 1-3 digit number in white at a random
            place before compressing, as fastai's ``crappify`` does, so that the
            network also learns to remove overlays.
        generator: the source of the ``restore`` draws (quality, text). ``None`` uses
            torch's global RNG; :class:`PairDataset` always passes its own.

    Returns:
        ``(input, target)``. ``superres``: input ``(.., C, H/scale, W/scale)``;
        ``colorize``: input ``(.., 1, H, W)``; otherwise the shape of ``image``. For
        ``style`` both are ``image`` itself.

    >>> x, y = make_pair("superres", torch.rand(3, 66, 64), scale=4)
    >>> tuple(x.shape), tuple(y.shape)
    ((3, 16, 16), (3, 64, 64))
    >>> make_pair("restor", torch.rand(3, 8, 8))
    Traceback (most recent call last):
    ...
    lossnet.errors.InputError: unknown task 'restor'; expected one of ['superres', 'restore', 'colorize', 'style']. Did you mean 'restore'?
    """
    maker, options = _named(task, scale=scale, jpeg_quality=jpeg_quality, text=text)
    return apply_pair(maker, image, options, generator)


def apply_pair(
    maker: PairMaker, image: torch.Tensor, options: Any, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, ...]:
    """``maker``'s pair for one image ``(C, H, W)`` or a batch ``(B, C, H, W)`` in [0, 1] (checked here)."""
    if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"image must be (C, H, W) or (B, C, H, W) in [0, 1]; got {shape}")
    single = image.ndim == 3
    pair = maker(check_image(image[None] if single else image, "image"), options, generator)
    return tuple(t[0] for t in pair) if single else tuple(pair)


def _named(task: str, **legacy: Any) -> tuple[PairMaker, Any]:
    """The maker of a task named in :data:`TASKS`, and its options from the keywords it takes (all are checked)."""
    check_choice(task, TASKS, "task")
    check_pair_options(legacy["scale"], legacy["jpeg_quality"], legacy["text"])
    maker, cls = PAIR_MAKERS[task]
    names = {f for f in cls.__dataclass_fields__}
    return maker, options_from(cls, {k: v for k, v in legacy.items() if k in names})


def check_pair_options(scale: object, jpeg_quality: object, text: object) -> tuple[int, tuple[int, int]]:
    """Check make_pair's ``scale``, ``jpeg_quality`` and ``text``; return ``(scale, (low, high))``."""
    scale = check_positive_int(scale, "scale")
    quality = check_jpeg_quality(jpeg_quality)
    if not isinstance(text, bool):
        raise InputTypeError(f"text must be True or False; got {text!r}")
    return scale, quality


class PairDataset(torch.utils.data.Dataset):
    """Wrap a dataset of images ``(C, H, W)`` in [0, 1] so that it yields ``(input, target)`` for a task.

    The pair's random draws (the ``restore`` quality and text, a condition) come from
    :func:`lossnet.data.folder.item_generator` seeded with ``(seed, epoch, index)``
    on a stream of their own, so they are reproducible and independent of the crops.
    Options are checked here, before any training starts.

    Args:
        dataset: yields ``(C, H, W)`` tensors, such as an :class:`~lossnet.data.folder.ImageFolder`.
            With ``superres``, give it a ``crop_size`` divisible by ``scale`` so that
            every target keeps its full size.
        task: one of :data:`TASKS`, or a pair maker (:mod:`lossnet.data.pairs`) with its ``options``.
        options: the maker's options (a task name takes them from ``scale``, ``jpeg_quality``, ``text``).
        scale, jpeg_quality, text: as for :func:`make_pair`, with a task name.
        conditions: with ``N > 0``, each item also draws a condition, an index in ``[0, N)`` (the style
            of a multi-style network), and yields ``(input, target, index)`` (a 0-d int64 tensor).
        seed: base seed; ``None`` takes ``dataset.seed`` (0 if it has none).

    >>> from lossnet.data.folder import default_dataset
    >>> pairs = PairDataset(default_dataset("val", crop_size=64, size=128), "superres", scale=4)
    >>> x, y = pairs[0]
    >>> tuple(x.shape), tuple(y.shape)
    ((3, 16, 16), (3, 64, 64))
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        task: str | PairMaker,
        *,
        options: Any = None,
        scale: int = 4,
        jpeg_quality: int | tuple[int, int] = (10, 70),
        text: bool = False,
        conditions: int = 0,
        seed: int | None = None,
    ) -> None:
        self.dataset = dataset
        if isinstance(task, str):
            self.task = task
            self.maker, self.options = _named(task, scale=scale, jpeg_quality=jpeg_quality, text=text)
        elif callable(task):
            self.task, self.maker, self.options = getattr(task, "__name__", "pair"), task, options
        else:
            raise InputTypeError(f"task must be a task name or a pair maker; got {type(task).__name__}")
        self.conditions = check_index(conditions, "conditions")
        self.seed = check_index(getattr(dataset, "seed", 0) if seed is None else seed, "seed")
        self.epoch = getattr(dataset, "epoch", 0)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and in the wrapped dataset (if it has ``set_epoch``)."""
        self.epoch = check_index(epoch, "epoch")
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image = self.dataset[index]
        if not isinstance(image, torch.Tensor):
            raise InputTypeError(
                f"PairDataset needs a dataset of (C, H, W) tensors; item {index} is a {type(image).__name__}. "
                "For (image, label) datasets, wrap one that returns the image alone."
            )
        g = item_generator(self.seed, self.epoch, index % len(self), PAIR_STREAM)
        pair = apply_pair(self.maker, image, self.options, generator=g)
        if not self.conditions:
            return pair
        return (*pair, torch.randint(self.conditions, (), generator=g))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dataset!r}, task={self.task!r})"
