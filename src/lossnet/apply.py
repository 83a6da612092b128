"""Applying a trained network: load it from a checkpoint, run it on images of any size, write files.

- :func:`load_model` rebuilds the network a checkpoint names (``meta["model"]``), loads its
  weights and returns it frozen, in eval mode; :func:`read_model_info` says what it was
  trained for (task, scale, step).
- :func:`apply_model` runs a network on an image tensor of any size: whole when it fits in
  one tile, else tile by tile, with the overlaps cross-faded (see below).
- :func:`apply_files` does it for files and folders: EXIF orientation applied, PNG or JPEG
  out, atomic writes, and a bad file reported without stopping the others.

**Files come out as they went in** (:func:`apply_files`):

- *Transparency* is carried through, as Real-ESRGAN does: the network sees the colour
  channels as stored (also where alpha is 0), and the alpha channel goes around it, upscaled
  separately with bicubic interpolation for super-resolution (Real-ESRGAN's default is
  bilinear) and kept as it is otherwise. PNG output has the alpha channel; JPEG cannot hold
  one, so the output is composited over white (:data:`lossnet.data.io.BACKGROUND`) and a
  log warning says so.
- *Bit depth*: a 16-bit PNG or TIFF is read without 8-bit rounding and, by default
  (``bit_depth='match'``), written as a 16-bit PNG; ``bit_depth=8`` or ``16`` overrides
  (JPEG is always 8-bit).
- *Grey stays grey* where the task maps grey to grey: super-resolution and restoration run
  the grey image as RGB (three equal channels) and write back the BT.601 luma of the output
  as one channel. Colorize and style add colour by nature, so their output is RGB. A network
  given as a module (no checkpoint to name its task) counts as colorize when it takes one
  channel and as style when it is a ``TransformerNet``.

**What the network is given.** The image is RGB in [0, 1]. A network that takes one
channel (``UNet(in_channels=1)``, trained for ``colorize``) gets the BT.601 luminance
(:func:`lossnet.data.tasks.luminance`); a one-channel image given to an RGB network is
repeated to three. Values are mapped to the network's ``input_range`` and its output from
``output_range`` back to [0, 1]. A super-resolution network's output is ``scale`` times larger.

**Sizes.** Networks take only some sizes (``TransformerNet`` multiples of 4 and at least 8,
``UNet`` multiples of ``2**depth``, ``SuperResNet`` at least ``min_size``). The image is
reflect-padded at the bottom and right to the next size the network takes, and the output
cropped back, so any size works, down to 1x1.

**Tiling.** An axis longer than ``tile`` is cut into tiles of at most ``tile`` pixels that
share ``overlap`` pixels with their neighbours. Of those shared pixels, the middle half is
cross-faded with a cosine ramp (the two tiles' weights sum to one) and the outer quarter on
each side is context that is computed and dropped, because a convolution's output near a
tile's cut edge sees padding instead of the neighbouring pixels. Tiles start at multiples
of the network's size multiple, so a network is applied at the same phase as on the whole
image. Tiles are computed one at a time and a row of tiles is written out as soon as the
next row can no longer touch it, so the memory used besides the input and the output is
one row of tiles at output resolution, whatever the image size.

Consequences, measured in ``tests/test_apply.py``:

- a network without per-image statistics (no norm, or batch norm in eval mode) whose
  receptive field reaches at most ``overlap / 4`` input pixels gives the whole-image output
  up to float rounding (measured: below 2e-7); with a larger receptive field the difference is
  confined to the cross-faded bands and shrinks as ``overlap`` grows;
- a network with instance norm (``TransformerNet``'s default) normalises each tile by that
  tile's own statistics, so tiled output differs from whole-image output everywhere by a
  little (the cross-fade hides the seams). Use ``tile=None`` for the exact whole-image
  result when memory allows.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from lossnet.data.io import BACKGROUND, IMAGE_SUFFIXES, read_icc_profile, read_image, save_image
from lossnet.data.tasks import luminance
from lossnet.errors import CheckpointError, InputError, InputTypeError, LossnetError
from lossnet.models import MODELS, SuperResNet, TransformerNet, UNet, build_model
from lossnet.runtime import Runtime, resolve
from lossnet.checkpoint import load_checkpoint
from lossnet.runtime import pick_device
from lossnet.validation import check_choice, check_image

#: Output formats of :func:`apply_files` and the suffix each writes.
FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg"}
#: ``bit_depth`` choices of :func:`apply_files`: the input's depth, or 8 or 16 bits per sample.
BIT_DEPTHS = ("match", 8, 16)
#: Tasks whose output is colour whatever the input (a grey input gives an RGB output).
_COLOUR_TASKS = ("colorize", "style")

log = logging.getLogger("lossnet")

# What makes one file fail without stopping the others: unreadable or unwritable files,
# images too large for Pillow's safety limit, a GPU out of memory on one huge image.
_PER_FILE_ERRORS = (LossnetError, OSError, Image.DecompressionBombError, torch.cuda.OutOfMemoryError)


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class ModelInfo:
    """What a checkpoint says about its network.

    Attributes:
        name: the network class, e.g. ``'SuperResNet'``.
        kwargs: its constructor arguments.
        task: ``'superres'``, ``'style'``, ``'colorize'``, ``'restore'`` or ``None`` if unrecorded.
        scale: how many times larger the output is than the input (1 unless super-resolution).
        step: the training step the weights come from, or ``None``.
        loss_weights: the loss network's weights during training (informational), or ``None``.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    scale: int = 1
    step: int | None = None
    loss_weights: str | None = None

    @property
    def spec(self) -> dict[str, Any]:
        """The spec :func:`lossnet.models.build_model` takes."""
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    def __str__(self) -> str:
        what = self.name + (f" x{self.scale}" if self.scale != 1 else "")
        details = [d for d in (self.task, None if self.step is None else f"step {self.step}") if d]
        return what + (f" ({', '.join(details)})" if details else "")


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read what a checkpoint's network is and was trained for, without building it.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, corrupt, not a lossnet checkpoint, or holds no network.

    Example:
        >>> import tempfile, pathlib
        >>> from lossnet.models import model_spec
        >>> from lossnet.checkpoint import save_checkpoint
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "sr.safetensors"
        >>> meta = {"model": model_spec("SuperResNet", scale=2, channels=4, num_residual=1),
        ...         "task": "superres", "scale": 2, "step": 10}
        >>> _ = save_checkpoint(p, build_model(meta["model"]).state_dict(), meta)
        >>> info = read_model_info(p)
        >>> info.task, info.scale, str(info)
        ('superres', 2, 'SuperResNet x2 (superres, step 10)')
    """
    return _model_info(Path(path), load_checkpoint(path).meta)


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """Load a trained network from a checkpoint written by the trainer, ready for inference.

    The checkpoint names its network (``meta["model"]``, a spec for
    :func:`lossnet.models.build_model`), so nothing is unpickled and no code comes from
    the file. The network is returned in eval mode with ``requires_grad`` off.

    Args:
        path: a ``.safetensors`` checkpoint written by ``lossnet train`` (or
            :func:`~lossnet.checkpoint.save_checkpoint` with a ``"model"`` spec in ``meta``).
        device: ``'cpu'`` (default), ``'cuda'``, ``'cuda:1'``, ... or ``'auto'`` (CUDA when available).

    Returns:
        the network: it maps ``(B, C, H, W)`` images in its ``input_range`` (``[0, 1]`` by
        default) to its output; :func:`apply_model` handles any image size.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated or corrupt, not a lossnet checkpoint, holds no
            network, or its weights do not fit the network it names.

    Example:
        >>> import tempfile, pathlib
        >>> from lossnet.models import model_spec
        >>> from lossnet.checkpoint import save_checkpoint
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "style.safetensors"
        >>> net = build_model(model_spec("TransformerNet", channels=4, num_residual=1))
        >>> _ = save_checkpoint(p, net.state_dict(), {"model": model_spec("TransformerNet", channels=4,
        ...     num_residual=1), "task": "style", "step": 1})
        >>> model = load_model(p)
        >>> model.training, any(q.requires_grad for q in model.parameters())
        (False, False)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> torch.equal(model(x), net.eval()(x))
        True
    """
    return _load(path, device)[0]


def _load(path: str | os.PathLike[str], device: str | torch.device) -> tuple[nn.Module, ModelInfo]:
    target = _device(device)
    path = Path(path)
    checkpoint = load_checkpoint(path)
    info = _model_info(path, checkpoint.meta)
    try:
        model = build_model(info.spec)
    except LossnetError as err:
        raise CheckpointError(f"{path} names a network this lossnet cannot build: {err}") from None
    try:
        model.load_state_dict(checkpoint.model_state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:3]
        raise CheckpointError(
            f"{path}: the weights do not fit the network the checkpoint names ({info.name} {info.kwargs}): "
            f"{' '.join(line.strip() for line in first)}. The file may have been edited or written by another "
            "lossnet version; re-export it from the training run."
        ) from None
    if getattr(model, "scale", 1) != info.scale:
        raise CheckpointError(
            f"{path} says scale {info.scale} but its network upscales by {getattr(model, 'scale', 1)}; "
            "the metadata is inconsistent, re-export the checkpoint from the training run"
        )
    model.eval().requires_grad_(False)
    return model.to(target), info


def _device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    try:
        target = pick_device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
    return target


def _model_info(path: Path, meta: dict[str, Any]) -> ModelInfo:
    spec = meta.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CheckpointError(
            f"{path} is a lossnet checkpoint but holds no network: expected meta['model'] = "
            f"{{'name': ..., 'kwargs': {{...}}}}, got {spec!r} (meta keys: {sorted(meta)}). "
            "Apply a checkpoint written by `lossnet train`."
        )
    name, kwargs = spec["name"], dict(spec.get("kwargs") or {})
    scale = meta.get("scale") or kwargs.get("scale") or _default_scale(name)
    step, weights = meta.get("step"), meta.get("loss_weights")
    return ModelInfo(
        name=name,
        kwargs=kwargs,
        task=meta.get("task"),
        scale=int(scale),
        step=None if step is None else int(step),
        loss_weights=None if weights is None else str(weights),
    )


def _default_scale(name: str) -> int:
    # A spec may leave ``scale`` to the constructor's default.
    parameter = inspect.signature(MODELS[name]).parameters.get("scale") if name in MODELS else None
    return 1 if parameter is None else int(parameter.default)


# ---------------------------------------------------------------------------------------------
# Tiled inference


def apply_model(
    model: nn.Module,
    image: Tensor,
    *,
    tile: int | None = 512,
    overlap: int = 32,
    precision: str | Runtime = "fp32",
    on_tile: Callable[[int, int], None] | None = None,
) -> Tensor:
    """Run a network on images of any size, tile by tile when they are larger than ``tile``.

    See the module docstring for the padding, the tiling and how close tiled output is to
    whole-image output. The network runs on its parameters' device; the image and the
    output stay on the image's device, so a large image on the CPU can go through a
    network on a GPU with only one row of tiles in GPU memory.

    Args:
        model: a network in eval mode (as :func:`load_model` returns it). lossnet's networks
            declare their size rules; another module may set ``scale``, ``in_channels``,
            ``size_multiple`` and ``min_size`` attributes (defaults 1, 3, 1, 1).
        image: RGB images ``(B, 3, H, W)`` in [0, 1] (or ``(B, 1, H, W)`` grayscale / luminance).
        tile: the largest tile side, in input pixels; ``None`` runs the whole image at once.
            It is rounded down to a multiple of the network's size multiple.
        overlap: pixels shared by neighbouring tiles (input pixels), rounded up to a multiple
            of twice the size multiple; at most half the tile.
        precision: ``'fp32'`` (default: exact), ``'auto'`` (bf16 where the device runs it natively,
            see :mod:`lossnet.runtime`; what ``lossnet apply`` uses), ``'bf16'`` or ``'fp16'``
            (autocast; output is float32), or a :class:`~lossnet.runtime.Runtime` already resolved.
        on_tile: called as ``on_tile(done, total)`` after each tile (for a progress bar).

    Returns:
        ``(B, C_out, scale H, scale W)`` float32 in [0, 1], on the image's device.

    Raises:
        InputError, InputTypeError: an image that is not ``(B, C, H, W)`` in [0, 1], a network
            in training mode, or tile sizes the network cannot take.

    Example:
        >>> from lossnet.models import TransformerNet
        >>> net = TransformerNet(channels=4, num_residual=1).eval()
        >>> y = apply_model(net, torch.rand(1, 3, 37, 53), tile=32, overlap=8)
        >>> y.shape, bool(y.min() >= 0 and y.max() <= 1)
        (torch.Size([1, 3, 37, 53]), True)
    """
    check_image(image, "image", input_range=(0.0, 1.0))
    out: list[Tensor] = []

    def write(y0: int, rows: Tensor, shape: tuple[int, ...]) -> None:
        if not out:
            out.append(torch.empty(shape, dtype=torch.float32, device=image.device))
        out[0][..., y0 : y0 + rows.shape[-2], :] = rows

    _run_tiled(model, image, tile, overlap, precision, write, on_tile)
    return out[0]


def size_rule(model: nn.Module) -> tuple[int, int]:
    """``(multiple, min_size)``: the network takes H and W that are multiples of ``multiple`` and ``>= min_size``.

    >>> from lossnet.models import TransformerNet, UNet
    >>> size_rule(TransformerNet(channels=4, num_residual=1)), size_rule(UNet(depth=3, base_channels=4))
    ((4, 8), (8, 8))
    """
    if isinstance(model, TransformerNet):
        return 4, 8
    if isinstance(model, UNet):
        multiple = 2**model.depth
        # Instance norm needs more than one value per channel, also at the 1x1 bottleneck.
        return multiple, 2 * multiple if model.norm == "instance" else multiple
    if isinstance(model, SuperResNet):
        return 1, model.min_size
    return int(getattr(model, "size_multiple", 1)), int(getattr(model, "min_size", 1))


@dataclass(frozen=True)
class _Axis:
    """How one image axis is cut into tiles, in input pixels of the padded image."""

    size: int  # the padded length
    spans: tuple[tuple[int, int], ...]  # each tile's [start, stop)
    cuts: tuple[int, ...]  # where one tile's share ends and the next one's begins (len(spans) - 1)
    fade: float  # half-width of the cross-fade around each cut: overlap / 4


def _check_tiling(tile: int | None, overlap: int, multiple: int, min_size: int) -> tuple[int | None, int]:
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int)):
        raise InputTypeError(f"tile must be an int (pixels) or None for the whole image; got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InputError(f"overlap must be an int >= 0 (pixels); got {overlap!r}")
    step = 2 * multiple
    o = -(-overlap // step) * step
    if tile is None:
        return None, o
    t = tile // multiple * multiple
    smallest = max(-(-min_size // multiple) * multiple, multiple + o, 2 * o)
    if t < smallest:
        raise InputError(
            f"tile {tile} is too small for this network with overlap {overlap}: tiles are rounded down to "
            f"multiples of {multiple} and the overlap up to multiples of {step} ({o}), and a tile must be at "
            f"least {smallest} (twice the overlap, and at least the network's minimum size). "
            f"Use tile >= {smallest}, a smaller overlap, or tile=None for the whole image."
        )
    return t, o


def _plan_axis(length: int, tile: int | None, overlap: int, multiple: int, min_len: int) -> _Axis:
    """Cut ``length`` pixels (padded to the network's sizes) into tiles of at most ``tile``."""
    size = max(-(-length // multiple) * multiple, min_len)
    if tile is None or size <= tile:
        return _Axis(size, ((0, size),), (), overlap / 4)
    # Each tile owns a share of the axis and reaches overlap / 2 beyond it on inner sides.
    # Shares are whole multiples of `multiple`, as equal as possible.
    units, per_tile = (size - overlap) // multiple, (tile - overlap) // multiple
    n = -(-units // per_tile)
    q, r = divmod(units, n)
    shares = [q + 1] * r + [q] * (n - r)
    cuts, pos = [], overlap // 2
    for share in shares[:-1]:
        pos += share * multiple
        cuts.append(pos)
    bounds = [0, *cuts, size]
    spans = []
    for k in range(n):
        start, stop = max(0, bounds[k] - overlap // 2), min(size, bounds[k + 1] + overlap // 2)
        if stop - start < min_len:  # widen (more context only) to the network's minimum size
            stop = min(size, start + min_len)
            start = max(0, stop - min_len)
        spans.append((start, stop))
    return _Axis(size, tuple(spans), tuple(cuts), overlap / 4)


def _ramp(index: Tensor, cut: int, fade: float, scale: int) -> Tensor:
    """0 before the cross-fade around ``cut`` and 1 after it, a cosine ramp between (output pixel indices)."""
    if fade == 0:
        return (index >= cut * scale).float()
    t = ((index + 0.5) / scale - (cut - fade)) / (2 * fade)
    return 0.5 - 0.5 * torch.cos(math.pi * t.clamp(0.0, 1.0))


def _tile_weights(axis: _Axis, k: int, scale: int, device: torch.device) -> Tensor:
    """Tile ``k``'s blending weights along the axis, over its output span; they sum to 1 over the tiles."""
    start, stop = axis.spans[k]
    index = torch.arange(start * scale, stop * scale, device=device, dtype=torch.float32)
    w = torch.ones_like(index)
    if k > 0:
        w *= _ramp(index, axis.cuts[k - 1], axis.fade, scale)
    if k < len(axis.spans) - 1:
        w *= 1.0 - _ramp(index, axis.cuts[k], axis.fade, scale)
    return w


def _final_rows(axis: _Axis, k: int, scale: int) -> int:
    """Output rows before this one get no weight from tiles after ``k``."""
    if k == len(axis.spans) - 1:
        return axis.size * scale
    return math.floor(scale * (axis.cuts[k] - axis.fade))


def _pad_reflect(x: Tensor, bottom: int, right: int) -> Tensor:
    """Reflect-pad the bottom and right by any amount (reflecting again as often as needed; 1 pixel repeats)."""
    while bottom > 0 or right > 0:
        b, r = min(bottom, x.shape[-2] - 1), min(right, x.shape[-1] - 1)
        if b == 0 and r == 0:  # a single row and column: nothing to reflect
            return F.pad(x, (0, right, 0, bottom), mode="replicate")
        x = F.pad(x, (0, r, 0, b), mode="reflect")
        bottom, right = bottom - b, right - r
    return x


def _crop(image: Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[Tensor, tuple[int, int, int, int]]:
    """The pixels of ``image[..., rows, cols]`` that exist, and how to complete them to that tile.

    Returns ``(crop, (top, left, bottom, right))``: ``_pad_reflect(crop, bottom, right)[..., top:, left:]``
    is the tile of the image reflect-padded at the bottom and right. Near those edges the
    crop reaches far enough back for the reflection to see the same pixels as a reflection
    of the whole image, so a tile agrees with the padded whole image.
    """
    (a, b), (c, d) = rows, cols
    h, w = image.shape[-2:]
    lo_r = min(a, max(0, 2 * h - b - 1))
    lo_c = min(c, max(0, 2 * w - d - 1))
    crop = image[..., lo_r : min(b, h), lo_c : min(d, w)]
    return crop, (a - lo_r, c - lo_c, b - lo_r - crop.shape[-2], d - lo_c - crop.shape[-1])


@torch.inference_mode()
def _run_tiled(
    model: nn.Module,
    image: Tensor,
    tile: int | None,
    overlap: int,
    precision: str | Runtime,
    write: Callable[[int, Tensor, tuple[int, ...]], None],
    on_tile: Callable[[int, int], None] | None = None,
) -> None:
    """Run ``model`` over ``image`` tile by tile; hand each finished band of output rows to ``write``.

    ``write(y0, rows, shape)`` gets rows ``y0 .. y0 + len`` of the final output as a
    ``(B, C_out, len, scale W)`` float32 tensor on the network's device (a view it may
    modify), and the output's full shape. ``on_tile(done, total)`` follows each tile.
    """
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be a torch.nn.Module (see load_model); got {type(model).__name__}")
    if model.training:
        raise InputError(
            "the network is in training mode, where batch norm would use each tile's statistics; "
            "call model.eval() first (load_model returns it in eval mode)"
        )
    param = next(model.parameters(), None)
    device = param.device if param is not None else image.device
    context = resolve(precision, device).autocast()
    dtype = param.dtype if param is not None else torch.float32
    scale = int(getattr(model, "scale", 1))
    in_channels = int(getattr(model, "in_channels", 3))
    in_lo, in_hi = getattr(model, "input_range", (0.0, 1.0))
    out_lo, out_hi = getattr(model, "output_range", (0.0, 1.0))
    multiple, min_size = size_rule(model)
    tile, overlap = _check_tiling(tile, overlap, multiple, min_size)
    min_len = -(-min_size // multiple) * multiple

    batch, _, h, w = image.shape
    rows, cols = (_plan_axis(n, tile, overlap, multiple, min_len) for n in (h, w))
    col_weights = [_tile_weights(cols, j, scale, device) for j in range(len(cols.spans))]
    out_h, out_w = h * scale, w * scale

    pending: Tensor | None = None  # rows of the previous band that later tiles still add to
    done = 0  # output rows handed to `write`
    for k, row_span in enumerate(rows.spans):
        top = row_span[0] * scale
        row_weights = _tile_weights(rows, k, scale, device)[:, None]
        band: Tensor | None = None
        for j, col_span in enumerate(cols.spans):
            crop, (dr, dc, pad_b, pad_r) = _crop(image, row_span, col_span)
            x = crop.to(device=device, dtype=dtype, non_blocking=True)
            if in_channels == 1 and x.shape[1] == 3:
                x = luminance(x)
            elif in_channels == 3 and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = _pad_reflect(x, pad_b, pad_r)[..., dr:, dc:]
            if (in_lo, in_hi) != (0.0, 1.0):
                x = in_lo + (in_hi - in_lo) * x
            with context:
                y = model(x)
            y = y.float()
            if (out_lo, out_hi) != (0.0, 1.0):
                y = (y - out_lo) / (out_hi - out_lo)
            expected = (x.shape[-2] * scale, x.shape[-1] * scale)
            if tuple(y.shape[-2:]) != expected:
                raise InputError(
                    f"the network turned a {tuple(x.shape[-2:])} tile into {tuple(y.shape[-2:])}, expected "
                    f"{expected} (scale {scale}); a network of another kind should declare its `scale`"
                )
            # Out of place first: the output may be a view of the input (an identity), or of the image.
            y = y.mul(row_weights).mul_(col_weights[j])
            if band is None:
                band = y.new_zeros(batch, y.shape[1], y.shape[-2], cols.size * scale)
            band[..., col_span[0] * scale : col_span[1] * scale] += y
            if on_tile is not None:
                on_tile(k * len(cols.spans) + j + 1, len(rows.spans) * len(cols.spans))
        if pending is not None:
            band[..., done - top : done - top + pending.shape[-2], :] += pending
        final = _final_rows(rows, k, scale)
        if done < min(final, out_h):
            stop = min(final, out_h)
            write(done, band[..., done - top : stop - top, :out_w], (batch, band.shape[1], out_h, out_w))
        pending, done = band[..., final - top :, :], final


# ---------------------------------------------------------------------------------------------
# Files


@dataclass
class ApplySummary:
    """What :func:`apply_files` did.

    Attributes:
        written: ``(input, output)`` for every image written.
        failed: ``(input, reason)`` for every image that could not be read, processed or written.
        skipped: files found in input folders that are not images by their suffix (never read).
        model: what the checkpoint says about the network (``None`` when a module was given).
    """

    written: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    model: ModelInfo | None = None

    @property
    def ok(self) -> bool:
        """True when no image failed."""
        return not self.failed


def apply_files(
    model: str | os.PathLike[str] | nn.Module,
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    format: str = "png",
    quality: int = 95,
    tile: int | None = 512,
    overlap: int = 32,
    device: str | torch.device = "auto",
    precision: str | Runtime = "fp32",
    progress: Callable[[list[Any]], Iterable[Any]] | None = None,
    on_tile: Callable[[Path, int, int], None] | None = None,
    bit_depth: str | int = "match",
) -> ApplySummary:
    """Apply a network to image files and folders, writing one output image per input.

    Folders are searched recursively (hidden files and folders skipped, and the output
    folder if it lies inside); each output keeps the input's path relative to its folder
    (a file given directly keeps its name), with the suffix of ``format``. Files whose
    suffix is not an image's are listed as skipped; a file given directly is always tried.
    EXIF orientation is applied, so outputs are upright and carry no orientation tag.
    Transparency, grey and 16-bit samples are kept (see the module docstring). A GIF gives
    its first frame. Each output is written atomically. A file that fails (not an image, unreadable,
    too large) is recorded with the reason and the others are still processed.

    Args:
        model: a checkpoint path (see :func:`load_model`) or a network in eval mode.
        inputs: image files and/or folders.
        output_dir: where the outputs go (created if needed). It may not be where an input
            would be overwritten.
        format: ``'png'`` (default, lossless) or ``'jpg'``.
        quality: JPEG quality (1-100).
        tile, overlap, precision: as for :func:`apply_model`.
        device: ``'auto'`` (default: CUDA when available), ``'cpu'``, ``'cuda'``, ...; used when
            ``model`` is a path (a module runs where it is).
        progress: wraps the list of jobs for iteration, e.g. ``tqdm.tqdm`` for a progress bar.
        on_tile: called as ``on_tile(source, done, total)`` after each tile of each image.
        bit_depth: ``'match'`` (default: 16-bit PNG out for 16-bit input, else 8-bit), ``8`` or
            ``16`` (PNG only). JPEG output is always 8-bit.

    Returns:
        an :class:`ApplySummary`.

    Raises:
        FileNotFoundError: an input or the checkpoint does not exist.
        CheckpointError: the checkpoint is truncated, corrupt or holds no network.
        InputError: no images found, or an output would overwrite an input.
    """
    fmt = check_choice(format, list(FORMATS), "format")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"quality must be an int in 1-100 (JPEG); got {quality!r}")
    depth = _check_bit_depth(bit_depth, fmt)
    out_dir = Path(output_dir)
    jobs, skipped = _plan_files(inputs, out_dir, FORMATS[fmt])
    if isinstance(model, nn.Module):
        net, info = model, None
    else:
        net, info = _load(model, device)
    _check_tiling(tile, overlap, *size_rule(net))  # a bad option fails before any file does
    param = next(net.parameters(), None)
    precision = resolve(precision, param.device if param is not None else "cpu")  # once, for every file
    summary = ApplySummary(skipped=skipped, model=info)
    keep_grey = _task(net, info) not in _COLOUR_TASKS
    for source, target, problem in progress(jobs) if progress is not None else jobs:
        if problem is not None:
            summary.failed.append((source, problem))
            continue
        try:
            tiles = None if on_tile is None else (lambda done, total, s=source: on_tile(s, done, total))
            _apply_file(net, source, target, tile, overlap, precision, quality, depth, keep_grey, tiles)
        except _PER_FILE_ERRORS as err:
            if isinstance(err, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()
                reason = f"out of GPU memory ({err}); use a smaller tile"
            else:
                reason = str(err) if isinstance(err, LossnetError) else f"{type(err).__name__}: {err}"
            summary.failed.append((source, reason))
        else:
            summary.written.append((source, target))
    return summary


def _check_bit_depth(bit_depth: object, fmt: str) -> int | None:
    """``None`` for 'match', else 8 or 16; 16 bits need PNG."""
    if bit_depth not in BIT_DEPTHS or isinstance(bit_depth, bool):
        raise InputError(f"bit_depth must be 'match', 8 or 16; got {bit_depth!r}")
    if bit_depth == 16 and fmt != "png":
        raise InputError(f"16-bit output needs format 'png' (JPEG holds 8 bits); got format {fmt!r}")
    return None if bit_depth == "match" else int(bit_depth)


def _task(model: nn.Module, info: ModelInfo | None) -> str | None:
    """The task a network was trained for: from its checkpoint, else guessed from the network."""
    if info is not None and info.task is not None:
        return info.task
    if int(getattr(model, "in_channels", 3)) == 1:
        return "colorize"
    return "style" if isinstance(model, TransformerNet) else None


def _apply_file(
    model: nn.Module,
    source: Path,
    target: Path,
    tile: int | None,
    overlap: int,
    precision: str | Runtime,
    quality: int,
    bit_depth: int | None = None,
    keep_grey: bool = True,
    on_tile: Callable[[int, int], None] | None = None,
) -> None:
    stored = read_image(source)
    jpeg = target.suffix.lower() in (".jpg", ".jpeg")
    depth = 8 if jpeg else bit_depth or stored.bit_depth
    dtype, top = (np.uint16, 65535.0) if depth == 16 else (np.uint8, 255.0)
    grey = stored.grey and keep_grey
    scale = int(getattr(model, "scale", 1))
    h, w = stored.color.shape[-2:]
    colours, has_alpha = (1 if grey else 3), stored.alpha is not None
    # The output: colour channels, then alpha (filled first; JPEG composites over it and drops it).
    pixels = np.empty((h * scale, w * scale, colours + has_alpha), dtype=dtype)
    if stored.alpha is not None:
        for y0, rows in _alpha_bands(stored.alpha, scale):
            pixels[y0 : y0 + rows.shape[0], :, -1] = rows.mul_(top).round_().to(torch.int32).numpy()
    background = torch.tensor(BACKGROUND).view(1, 3, 1, 1)
    if grey:
        background = luminance(background)

    def write(y0: int, rows: Tensor, shape: tuple[int, ...]) -> None:
        y = rows[:1].clamp_(0.0, 1.0)  # the band's rows are final, so in place is safe
        if grey and y.shape[1] == 3:
            y = luminance(y)
        elif not grey and y.shape[1] == 1:
            y = y.expand(-1, 3, -1, -1)
        if jpeg and has_alpha:
            a = torch.from_numpy(pixels[y0 : y0 + y.shape[-2], :, -1].astype(np.float32) / top).to(y.device)
            y = a * y + (1.0 - a) * background.to(y.device)
        # As lossnet.data.io.to_pil rounds.
        q = y[0].mul(top).round_().to(torch.int32).permute(1, 2, 0).cpu().numpy()
        pixels[y0 : y0 + q.shape[0], :, :colours] = q

    image = stored.color
    del stored  # only the output stays in memory for the save
    _run_tiled(model, image, tile, overlap, precision, write, on_tile)
    del image
    if jpeg and has_alpha:
        pixels = pixels[..., :colours]
        log.warning("%s has transparency, which JPEG cannot hold: %s is composited over white", source, target.name)
    # The network maps pixel values in the source's colour space, so the source's profile describes the output.
    save_image(np.ascontiguousarray(pixels), target, quality=quality, icc_profile=read_icc_profile(source))


def _alpha_bands(alpha: Tensor, scale: int, band: int = 64) -> Iterator[tuple[int, Tensor]]:
    """``(first output row, rows)`` of ``alpha`` ``(1, 1, H, W)`` upscaled by ``scale`` (bicubic, clamped to [0, 1]).

    Band by band, each with two input rows of context on either side, so the bands equal the
    whole image upscaled at once while only one band is in memory.
    """
    h = alpha.shape[-2]
    if scale == 1:
        yield 0, alpha[0, 0].clone()
        return
    for a in range(0, h, band):
        b = min(h, a + band)
        lo, hi = max(0, a - 2), min(h, b + 2)
        up = F.interpolate(alpha[..., lo:hi, :], scale_factor=scale, mode="bicubic", align_corners=False)
        yield a * scale, up[0, 0, (a - lo) * scale : (b - lo) * scale].clamp_(0.0, 1.0)


def _plan_files(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], out_dir: Path, suffix: str
) -> tuple[list[tuple[Path, Path, str | None]], list[Path]]:
    """``(source, target, problem or None)`` for each image to process, and the non-image files skipped."""
    entries = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not entries:
        raise InputError("no inputs given: pass image files or folders")
    out_real = Path(os.path.realpath(out_dir))
    found: list[tuple[Path, Path]] = []  # (source, path relative to the output folder)
    skipped: list[Path] = []
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, (str, os.PathLike)):
            raise InputTypeError(f"inputs must be paths; got {type(entry).__name__} ({entry!r})")
        path = Path(entry)
        if not path.exists():
            raise FileNotFoundError(f"no such image file or folder: {path}")
        if not path.is_dir():
            candidates = [(path, Path(path.name))]
        else:
            candidates = []
            for file in _walk(path, exclude=out_real):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    candidates.append((file, file.relative_to(path)))
                else:
                    skipped.append(file)
        for source, relative in candidates:
            if os.path.realpath(source) not in seen:  # a file given twice, or inside a folder also given
                seen.add(os.path.realpath(source))
                found.append((source, relative))
    if not found:
        raise InputError(
            f"no images found in {', '.join(map(str, entries))} (looked for {', '.join(IMAGE_SUFFIXES)}); "
            f"{len(skipped)} other files skipped"
        )
    jobs: list[tuple[Path, Path, str | None]] = []
    taken: dict[Path, Path] = {}
    for source, relative in found:
        target = out_dir / relative.with_suffix(suffix)
        if os.path.realpath(target) in seen:
            raise InputError(
                f"writing {target} would overwrite the input {source}; choose another output folder, or another format"
            )
        problem = None
        if target in taken:
            problem = f"its output {target} is also {taken[target]}'s output; rename one or apply them separately"
        else:
            taken[target] = source
        jobs.append((source, target, problem))
    return jobs, skipped


def _walk(folder: Path, exclude: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted by relative path, leaving out the folder ``exclude``."""
    found: list[Path] = []
    seen: set[str] = set()
    top = Path(os.path.realpath(folder))
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or (Path(real) == exclude and Path(real) != top):
            dirnames[:] = []  # a symlink loop, or the output folder inside an input folder
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)
