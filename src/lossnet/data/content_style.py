"""Content and style images for arbitrary style transfer (``style_any``): each content crop with a style crop.

AdaIN (Huang & Belongie 2017) trains on two folders, MS-COCO's photographs as contents and WikiArt's
paintings as styles, and pairs every content crop with a random style crop. :class:`ContentStyleDataset`
does that over any two image datasets, reproducibly: the style drawn for an item, its crop and flip
come from :func:`~lossnet.data.folder.item_generator` seeded with ``(seed, epoch, index)`` on a stream
of their own. An item is the content and the style stacked on the channels, ``(6, H, W)``, content
first (the convention :func:`lossnet.functional.adain.split_content_style` reads), so that the
trainer's pairs, batches and samplers carry both unchanged.

Offline, :data:`DEFAULT_STYLES` are the styles: scikit-image's textures and its two painting-like
colour images. ``grass`` is left out, so that a style never seen in training is at hand.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.folder import ImageFolder, check_index, item_generator, random_crop
from lossnet.errors import InputError, InputTypeError

#: The default style images: two grey textures and two painting-like colour images (``grass`` is held out).
DEFAULT_STYLES: tuple[str, ...] = ("brick", "gravel", "ihc", "retina")
#: The random stream of the style draws (the crops use 0, the task pairs 1).
STYLE_STREAM = 2


def style_images(spec: str | None = None, size: int | None = None, *, cache: bool | None = None) -> ImageFolder:
    """The style images: whole (no crop), the longer side resized to ``size``.

    Args:
        spec: ``None`` (the :data:`DEFAULT_STYLES`), a folder (searched recursively), or default image
            names joined by commas (``'brick,ihc'``; see :data:`lossnet.data.DEFAULT_IMAGES`).
        size: the longer side of each style image (``None`` keeps the file's).
        cache: keep the decoded images in memory; ``None``: only for default images.

    Raises:
        InputError: an unknown name, a missing folder, or no readable image in it.

    >>> styles = style_images("brick,ihc", size=64)
    >>> len(styles), styles[1].shape
    (2, torch.Size([3, 64, 64]))
    """
    if spec is not None and not isinstance(spec, str):
        raise InputTypeError(f"the style images are a folder or default names joined by commas; got {spec!r}")
    names = list(DEFAULT_STYLES) if spec is None else [n.strip() for n in spec.split(",") if n.strip()]
    if spec is not None and not Path(spec).exists():
        unknown = [n for n in names if n not in DEFAULT_IMAGES]
        if unknown or not names:
            raise InputError(
                f"style images {spec!r}: no such folder, and {unknown[0] if unknown else spec!r} is no default image "
                f"name; give a folder of style images, or names among {', '.join(DEFAULT_IMAGES)} joined by commas"
            )
    defaults = spec is None or not Path(spec).exists()
    root = [default_image_path(n) for n in names] if defaults else Path(spec)  # type: ignore[arg-type]
    keep = defaults if cache is None else cache
    return ImageFolder(root, crop_size=None, flip=False, size=size, cache=keep)


class ContentStyleDataset(torch.utils.data.Dataset):
    """Each content image with a style drawn at random, cropped to the content's size, as ``(6, H, W)``.

    Args:
        contents: a dataset of ``(3, H, W)`` crops in [0, 1] (an :class:`ImageFolder` with a ``crop_size``).
        styles: a dataset of ``(3, H', W')`` style images in [0, 1] (:func:`style_images`); each is cropped
            (an image smaller than the crop is upscaled first, as :func:`random_crop` does) and, with
            ``flip``, mirrored half the time.
        seed: the base seed of the style draws; ``None`` takes ``contents.seed`` (0 if it has none).
        flip: mirror half the style crops left-right.

    Attributes:
        files, skipped, num_ignored: the contents' files, and every unreadable file of both datasets.

    Example:
        >>> from lossnet.data.folder import default_dataset
        >>> pairs = ContentStyleDataset(default_dataset("val", crop_size=32, size=64), style_images(size=64))
        >>> x = pairs[0]
        >>> x.shape, torch.equal(x, pairs[0])
        (torch.Size([6, 32, 32]), True)
    """

    def __init__(
        self,
        contents: torch.utils.data.Dataset,
        styles: torch.utils.data.Dataset,
        seed: int | None = None,
        flip: bool = True,
    ) -> None:
        self.contents, self.styles, self.flip = contents, styles, bool(flip)
        self.seed = check_index(getattr(contents, "seed", 0) if seed is None else seed, "seed")
        self.epoch = getattr(contents, "epoch", 0)
        if len(styles) == 0:  # type: ignore[arg-type]
            raise InputError("no style images: give at least one")

    @property
    def files(self) -> list[Path]:
        return list(getattr(self.contents, "files", []))

    @property
    def skipped(self) -> list[tuple[Path, str]]:
        return [*getattr(self.contents, "skipped", []), *getattr(self.styles, "skipped", [])]

    @property
    def num_ignored(self) -> int:
        return int(getattr(self.contents, "num_ignored", 0)) + int(getattr(self.styles, "num_ignored", 0))

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's styles, crops and flips (and the contents', where they have ``set_epoch``)."""
        self.epoch = check_index(epoch, "epoch")
        if hasattr(self.contents, "set_epoch"):
            self.contents.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.contents)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> torch.Tensor:
        content = self.contents[index]
        if not isinstance(content, torch.Tensor) or content.ndim != 3 or content.shape[0] != 3:
            got = tuple(content.shape) if isinstance(content, torch.Tensor) else type(content).__name__
            raise InputTypeError(f"ContentStyleDataset needs (3, H, W) content images; item {index} is {got}")
        g = item_generator(self.seed, self.epoch, index % len(self), STYLE_STREAM)
        style = self.styles[int(torch.randint(len(self.styles), (), generator=g))]  # type: ignore[arg-type]
        style = random_crop(style, tuple(content.shape[-2:]), g)  # type: ignore[arg-type]
        if self.flip and bool(torch.rand((), generator=g) < 0.5):
            style = style.flip(-1)
        return torch.cat([content, style.to(content.dtype)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.contents!r}, styles={self.styles!r})"
