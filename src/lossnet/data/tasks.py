"""Training pairs ``(input, target)`` for each image-transformation task.

- ``superres``: input = antialiased bicubic downscale by ``scale``; target = the image,
  cropped (top-left) to multiples of ``scale``.
- ``restore``: input = JPEG at a random quality, optionally with a number drawn on it
  (fastai's ``crappify``); target = the image.
- ``colorize``: input = ITU-R BT.601 luma ``Y' = 0.299 R + 0.587 G + 0.114 B``, one
  channel; target = the image.
- ``style``: input = target = the image (the style image lives in the loss).
- ``style_any``: input = target = the content and its style image stacked on the channels, ``(6, H, W)``
  (:class:`lossnet.data.content_style.ContentStyleDataset` makes them; AdaIN's loss reads both).

:func:`make_pair` makes one pair; :class:`PairDataset` wraps a dataset of images
(such as :class:`lossnet.data.folder.ImageFolder`) and makes a pair per item,
reproducibly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import ImageDraw, ImageFont

from lossnet.data.degradations import downscale, jpeg_compress
from lossnet.data.folder import PAIR_STREAM, check_index, item_generator
from lossnet.data.io import to_pil
from lossnet.errors import InputError, InputTypeError
from lossnet.validation import check_choice, check_image, check_positive_int

#: The tasks :func:`make_pair` knows.
TASKS = ("superres", "restore", "colorize", "style", "style_any")

#: ITU-R BT.601 luma weights for R, G, B.
BT601 = (0.299, 0.587, 0.114)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of ``(B, 3, H, W)`` in [0, 1], as ``(B, 1, H, W)`` in [0, 1].

    ``Y' = 0.299 R + 0.587 G + 0.114 B``, on the gamma-encoded (sRGB) values as they
    are stored, as JPEG and PIL's ``convert("L")`` do.

    >>> luminance(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten()
    tensor([0.2990])
    """
    check_image(x, "image")
    if x.shape[1] != 3:
        raise InputError(f"luminance needs RGB, (B, 3, H, W); got {tuple(x.shape)}")
    w = torch.tensor(BT601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


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
    lossnet.errors.InputError: unknown task 'restor'; expected one of ['superres', 'restore', 'colorize', 'style', 'style_any']. Did you mean 'restore'?
    """
    check_choice(task, TASKS, "task")
    scale, quality = check_pair_options(scale, jpeg_quality, text)
    if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"image must be (C, H, W) or (B, C, H, W) in [0, 1]; got {shape}")
    single = image.ndim == 3
    if task == "style_any":  # a content and a style stacked (6 channels): passed on as they are
        return image, image
    x = check_image(image[None] if single else image, "image")

    if task == "superres":
        h, w = x.shape[-2:]
        if h < scale or w < scale:
            raise InputError(f"superres by {scale} needs an image of at least {scale}x{scale}; got {h}x{w}")
        target = x[..., : h - h % scale, : w - w % scale]
        inp = downscale(target, scale)
    elif task == "restore":
        inp = torch.cat([_crappify(img[None], quality, text, generator) for img in x])
        target = x
    elif task == "colorize":
        if x.shape[1] != 3:
            raise InputError(f"colorize needs an RGB image, C = 3; got {tuple(image.shape)}")
        inp, target = luminance(x), x
    else:  # style
        inp = target = x
    return (inp[0], target[0]) if single else (inp, target)


def _crappify(x: torch.Tensor, quality: tuple[int, int], text: bool, g: torch.Generator | None) -> torch.Tensor:
    """JPEG-compress ``(1, C, H, W)`` at a quality drawn from ``quality``, after drawing a number on it."""
    q = int(torch.randint(quality[0], quality[1] + 1, (), generator=g))
    if not text:
        return jpeg_compress(x, q)
    im = to_pil(x)
    h, w = x.shape[-2:]
    digits = int(torch.randint(1, 4, (), generator=g))
    number = str(int(torch.randint(0, 10**digits, (), generator=g)))
    font = ImageFont.load_default(size=max(6, min(h, w) // 4))  # a bitmap font where FreeType is missing
    left = int(torch.randint(0, max(1, w * 3 // 4), (), generator=g))
    top = int(torch.randint(0, max(1, h * 3 // 4), (), generator=g))
    ImageDraw.Draw(im).text((left, top), number, fill=255 if im.mode == "L" else (255, 255, 255), font=font)
    arr = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)
    drawn = (arr.permute(2, 0, 1) if arr.ndim == 3 else arr[None])[None]
    return jpeg_compress(drawn, q).to(x.device, x.dtype)


def check_pair_options(scale: object, jpeg_quality: object, text: object) -> tuple[int, tuple[int, int]]:
    """Check make_pair's ``scale``, ``jpeg_quality`` and ``text``; return ``(scale, (low, high))``."""
    scale = check_positive_int(scale, "scale")
    if isinstance(jpeg_quality, int) and not isinstance(jpeg_quality, bool):
        jpeg_quality = (jpeg_quality, jpeg_quality)
    if not (
        isinstance(jpeg_quality, Sequence)
        and len(jpeg_quality) == 2
        and all(isinstance(q, int) and not isinstance(q, bool) for q in jpeg_quality)
    ):
        raise InputTypeError(f"jpeg_quality must be an int or a (low, high) pair of ints; got {jpeg_quality!r}")
    lo, hi = jpeg_quality
    if not 1 <= lo <= hi <= 100:
        raise InputError(
            f"jpeg_quality must lie in 1-100 with low <= high; got {(lo, hi)}. Lower qualities compress harder, "
            "e.g. (10, 70)."
        )
    if not isinstance(text, bool):
        raise InputTypeError(f"text must be True or False; got {text!r}")
    return scale, (lo, hi)


class PairDataset(torch.utils.data.Dataset):
    """Wrap a dataset of images ``(C, H, W)`` in [0, 1] so that it yields ``(input, target)`` for ``task``.

    The pair's random draws (the ``restore`` quality and text) come from
    :func:`lossnet.data.folder.item_generator` seeded with ``(seed, epoch, index)``
    on a stream of their own, so they are reproducible and independent of the crops.
    Options are checked here, before any training starts.

    Args:
        dataset: yields ``(C, H, W)`` tensors, such as an :class:`~lossnet.data.folder.ImageFolder`.
            With ``superres``, give it a ``crop_size`` divisible by ``scale`` so that
            every target keeps its full size.
        task: one of :data:`TASKS`.
        scale, jpeg_quality, text: as for :func:`make_pair`.
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
        task: str,
        *,
        scale: int = 4,
        jpeg_quality: int | tuple[int, int] = (10, 70),
        text: bool = False,
        seed: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.task = check_choice(task, TASKS, "task")
        self.scale, self.jpeg_quality = check_pair_options(scale, jpeg_quality, text)
        self.text = text
        self.seed = check_index(getattr(dataset, "seed", 0) if seed is None else seed, "seed")
        self.epoch = getattr(dataset, "epoch", 0)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and in the wrapped dataset (if it has ``set_epoch``)."""
        self.epoch = check_index(epoch, "epoch")
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.dataset[index]
        if not isinstance(image, torch.Tensor):
            raise InputTypeError(
                f"PairDataset needs a dataset of (C, H, W) tensors; item {index} is a {type(image).__name__}. "
                "For (image, label) datasets, wrap one that returns the image alone."
            )
        g = item_generator(self.seed, self.epoch, index % len(self), PAIR_STREAM)
        return make_pair(self.task, image, self.scale, self.jpeg_quality, self.text, generator=g)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dataset!r}, task={self.task!r})"
