"""Each task's pair maker and the options it takes: what turns one image into ``(input, target)``.

A pair maker is ``maker(images, options, generator) -> (input, target)`` on a batch ``(B, C, H, W)``
in [0, 1]; ``options`` is an instance of the frozen dataclass the maker declares beside it. The
task registry (:mod:`lossnet.tasks`) names one maker and its options class per task, and the
command line turns the options' fields into flags (``--scale``, ``--jpeg-quality``, ``--text``),
with each field's ``help`` metadata as the flag's help.

==========================  ===================  ======================================================
maker                       options              pair
==========================  ===================  ======================================================
:func:`superres_pair`       ``SuperResOptions``  antialiased bicubic downscale by ``scale`` -> the image
:func:`restore_pair`        ``RestoreOptions``   JPEG at a quality drawn from ``jpeg_quality`` (+ a number)
:func:`colorize_pair`       ``NoOptions``        BT.601 luma, one channel -> the image
:func:`identity_pair`       ``NoOptions``        the image -> the image (the style lives in the loss)
:func:`content_style_pair`  ``StyleAnyOptions``  the image and a style crop of ``style_data``, stacked
                                                 ``(B, 6, H, W)`` -> the same (AdaIN's loss reads both)
==========================  ===================  ======================================================

>>> superres_pair(torch.rand(1, 3, 32, 32), SuperResOptions(scale=2))[0].shape
torch.Size([1, 3, 16, 16])
>>> options_from(RestoreOptions, {"jpeg_quality": 30})
RestoreOptions(jpeg_quality=(30, 30), text=True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import ImageDraw, ImageFont

from lossnet.data.content_style import cached_style_images, check_style_data, style_crop
from lossnet.data.degradations import downscale, jpeg_compress
from lossnet.data.io import to_pil
from lossnet.errors import InputError, InputTypeError
from lossnet.validation import check_image, check_positive_int, suggest

#: ``maker(images (B, C, H, W) in [0, 1], options, generator) -> (input, target)``.
PairMaker = Callable[[torch.Tensor, Any, "torch.Generator | None"], tuple[torch.Tensor, torch.Tensor]]

#: ITU-R BT.601 luma weights for R, G, B.
BT601 = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class NoOptions:
    """The options of a task that has none (``colorize``, ``style``)."""


@dataclass(frozen=True)
class SuperResOptions:
    """``superres``: the input is the image downscaled by ``scale``."""

    scale: int = field(default=4, metadata={"help": "superres: the upscaling factor (2, 4 or 8)."})

    def __post_init__(self) -> None:
        check_positive_int(self.scale, "scale")


@dataclass(frozen=True)
class RestoreOptions:
    """``restore``: the input is the image through JPEG at a quality drawn from ``jpeg_quality``.

    ``jpeg_quality`` may be given as one int (a fixed quality) or a list (as JSON stores it); it
    is kept as a ``(low, high)`` pair in 1-100, both ends included.
    """

    jpeg_quality: tuple[int, int] = field(
        default=(10, 70), metadata={"help": "restore: the JPEG quality range of the degraded inputs."}
    )
    text: bool = field(default=True, metadata={"help": "restore: draw a random number on the inputs, as fastai's crappify does."})

    def __post_init__(self) -> None:
        object.__setattr__(self, "jpeg_quality", check_jpeg_quality(self.jpeg_quality))
        if not isinstance(self.text, bool):
            raise InputTypeError(f"text must be True or False; got {self.text!r}")


@dataclass(frozen=True)
class StyleAnyOptions:
    """``style_any``: each content crop is paired with a crop of one of the style images ``style_data``."""

    style_data: str | None = field(
        default=None,
        metadata={
            "help": "style_any: a folder of style images, or default image names joined by commas; "
            "none = brick,gravel,ihc,retina (grass is held out as an unseen style).",
            "path": True,  # a run stores it absolute (lossnet.train.inputs.anchored)
        },
    )

    def __post_init__(self) -> None:
        check_style_data(self.style_data)


def check_jpeg_quality(jpeg_quality: object) -> tuple[int, int]:
    """``jpeg_quality`` (an int or a ``(low, high)`` pair of ints in 1-100) as a checked pair."""
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
    return lo, hi


def options_from(cls: type, values: Mapping[str, Any] | None = None, *, task: str | None = None) -> Any:
    """An instance of the options dataclass ``cls`` from ``{field: value}`` (checked by the class).

    Raises:
        InputError: a key that is no field of ``cls`` (the message lists its fields), or a bad value.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in (values or {}) if k not in names]
    if unknown:
        whose = f"task {task!r}" if task else cls.__name__
        takes = f"takes {', '.join(names)}" if names else "takes no option"
        raise InputError(f"{whose} has no option {unknown[0]!r}; it {takes}.{suggest(unknown[0], names)}")
    return cls(**dict(values or {}))


def options_dict(options: Any) -> dict[str, Any]:
    """The options as JSON-compatible values (tuples become lists), as a config stores them."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


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


def superres_pair(
    x: torch.Tensor, options: SuperResOptions, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input: ``x`` cropped (top-left) to multiples of ``scale``, then downscaled by it; target: the crop."""
    scale = options.scale
    h, w = x.shape[-2:]
    if h < scale or w < scale:
        raise InputError(f"superres by {scale} needs an image of at least {scale}x{scale}; got {h}x{w}")
    target = x[..., : h - h % scale, : w - w % scale]
    return downscale(target, scale), target


def restore_pair(
    x: torch.Tensor, options: RestoreOptions, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input: each image through JPEG at a quality drawn from ``jpeg_quality`` (after a number is drawn on
    it when ``text``, as fastai's ``crappify`` does); target: the image."""
    return torch.cat([_crappify(img[None], options.jpeg_quality, options.text, generator) for img in x]), x


def colorize_pair(
    x: torch.Tensor, options: NoOptions, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input: the BT.601 luma ``(B, 1, H, W)``; target: the RGB image."""
    if x.shape[1] != 3:
        raise InputError(f"colorize needs an RGB image, C = 3; got {tuple(x.shape)}")
    return luminance(x), x


def identity_pair(
    x: torch.Tensor, options: NoOptions, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target are the image itself (style transfer: the style image lives in the loss)."""
    return x, x


def content_style_pair(
    x: torch.Tensor, options: StyleAnyOptions, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input = target: each image with a style crop stacked on its channels, ``(B, 6, H, W)``, content first
    (:func:`lossnet.functional.adain.split_content_style`); AdaIN's loss reads both halves.

    Each style crop is drawn with ``generator`` (:func:`lossnet.data.content_style.style_crop`: a style of
    ``options.style_data``, resized to twice the crop, cropped, mirrored half the time).

    >>> g = torch.Generator().manual_seed(0)
    >>> content_style_pair(torch.rand(2, 3, 16, 16), StyleAnyOptions("brick,ihc"), g)[0].shape
    torch.Size([2, 6, 16, 16])
    """
    if x.shape[1] != 3:
        raise InputError(f"style_any pairs an RGB content with a style, C = 3; got {tuple(x.shape)}")
    g = generator if generator is not None else torch.Generator().manual_seed(int(torch.randint(2**31, ())))
    styles = cached_style_images(options.style_data)
    stacked = torch.stack([torch.cat([img, style_crop(styles, tuple(x.shape[-2:]), g).to(img)]) for img in x])
    return stacked, stacked


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
