"""Running a network on images of any size: padded to the sizes it takes, tile by tile when large.

**What the network is given.** The image is RGB in [0, 1]. A network that takes one
channel (``UNet(in_channels=1)``, trained for ``colorize``) gets the BT.601 luminance
(:func:`lossnet.data.tasks.luminance`); a one-channel image given to an RGB network is
repeated to three. Values are mapped to the network's ``input_range`` and its output from
``output_range`` back to [0, 1]. A super-resolution network's output is ``scale`` times larger.

**Sizes.** Each network declares the sizes it takes: ``size_multiple`` and ``min_size``
(``TransformerNet`` multiples of 4 and at least 8, ``UNet`` multiples of ``2**depth``,
``SuperResNet`` at least ``min_size``), and the tiler reads them (:func:`size_rule`). The
image is reflect-padded at the bottom and right to the next size the network takes, and the
output cropped back, so any size works, down to 1x1.

**Tiling.** An axis longer than ``tile`` is cut into tiles of at most ``tile`` pixels that
share ``overlap`` pixels with their neighbours. Of those shared pixels, the middle half is
cross-faded with a cosine ramp (the two tiles' weights sum to one) and the outer quarter on
each side is context that is computed and dropped, because a convolution's output near a
tile's cut edge sees padding instead of the neighbouring pixels. Tiles start at multiples
of the network's size multiple, so a network is applied at the same phase as on the whole
image. Tiles are computed one at a time and a row of tiles is written out as soon as the
next row can no longer touch it, so the memory used besides the input and the output is
one row of tiles at output resolution, whatever the image size.

Consequences, measured in ``tests/inference/test_tiling.py``:

- a network without per-image statistics (no norm, or batch norm in eval mode) whose
  receptive field reaches at most ``overlap / 4`` input pixels gives the whole-image output
  up to float rounding (measured: below 2e-7); with a larger receptive field the difference is
  confined to the cross-faded bands and shrinks as ``overlap`` grows;
- a network with instance norm (``TransformerNet``'s default) would normalise each tile by that
  tile's own statistics, and tiles of different content would meet in a hard seam. By default
  (``norm_stats='image'``) every norm layer's statistics are first measured over the whole image,
  tile by tile (:mod:`lossnet.inference.norm_stats`), and every tile uses them: the output is then
  the whole image's up to the same context error as above (measured on a 427x640 photo cut into two
  512 px tiles: the step in mean colour across the border within 4e-5 of the whole image's, against
  0.078 with each tile's own statistics). It costs one partial pass over the tiles per norm layer,
  4.4x to 6.9x the time of ``norm_stats='tile'`` (measured, fp32, 2-core AMD EPYC), which keeps the
  old, seamed behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossnet.data.tasks import luminance
from lossnet.errors import InputError, InputTypeError
from lossnet.inference.norm_stats import NORM_STATS, Tile, frozen_statistics, image_statistics, per_image_norms
from lossnet.runtime import Runtime, resolve
from lossnet.validation import check_choice, check_image


def apply_model(
    model: nn.Module,
    image: Tensor,
    *,
    tile: int | None = 512,
    overlap: int = 32,
    precision: str | Runtime = "fp32",
    on_tile: Callable[[int, int], None] | None = None,
    norm_stats: str = "image",
) -> Tensor:
    """Run a network on images of any size, tile by tile when they are larger than ``tile``.

    See the module docstring for the padding, the tiling and how close tiled output is to
    whole-image output. The network runs on its parameters' device; the image and the
    output stay on the image's device, so a large image on the CPU can go through a
    network on a GPU with only one row of tiles in GPU memory.

    Args:
        model: a network in eval mode (as :func:`~lossnet.inference.load_model` returns it). lossnet's networks
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
        norm_stats: how a tiled network with instance norm normalises: ``'image'`` (default) by the
            whole image's statistics, measured tile by tile first (:mod:`lossnet.inference.norm_stats`),
            so tiles join without seams; ``'tile'`` by each tile's own (one pass, faster, and a visible
            step in colour where tiles meet). No effect without instance norm, or on a single tile.

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
        out[0][..., y0 : y0 + rows.shape[-2], :] = rows.clamp_(0.0, 1.0)  # a network may overshoot (Compact)

    run_tiled(model, image, tile, overlap, precision, write, on_tile, norm_stats)
    return out[0]


def size_rule(model: nn.Module) -> tuple[int, int]:
    """``(multiple, min_size)``: the network takes H and W that are multiples of ``multiple`` and ``>= min_size``.

    Read from the network's ``size_multiple`` and ``min_size`` attributes (1 where it has none).

    >>> from lossnet.models import TransformerNet, UNet
    >>> size_rule(TransformerNet(channels=4, num_residual=1)), size_rule(UNet(depth=3, base_channels=4))
    ((4, 8), (8, 8))
    """
    return int(getattr(model, "size_multiple", 1)), int(getattr(model, "min_size", 1))


@dataclass(frozen=True)
class _Axis:
    """How one image axis is cut into tiles, in input pixels of the padded image."""

    size: int  # the padded length
    spans: tuple[tuple[int, int], ...]  # each tile's [start, stop)
    cuts: tuple[int, ...]  # where one tile's share ends and the next one's begins (len(spans) - 1)
    fade: float  # half-width of the cross-fade around each cut: overlap / 4


def check_tiling(tile: int | None, overlap: int, multiple: int, min_size: int) -> tuple[int | None, int]:
    """``(tile, overlap)`` rounded to the network's sizes (see :func:`apply_model`).

    Raises:
        InputTypeError, InputError: a tile that is not an int or ``None``, a negative overlap,
            or a tile too small for the overlap and the network.
    """
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


def _owned(axis: _Axis, k: int) -> tuple[int, int]:
    """The pixels tile ``k`` owns along the axis (the tiles' shares partition it), from its own start."""
    bounds, start = (0, *axis.cuts, axis.size), axis.spans[k][0]
    return bounds[k] - start, bounds[k + 1] - start


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
def run_tiled(
    model: nn.Module,
    image: Tensor,
    tile: int | None,
    overlap: int,
    precision: str | Runtime,
    write: Callable[[int, Tensor, tuple[int, ...]], None],
    on_tile: Callable[[int, int], None] | None = None,
    norm_stats: str = "image",
) -> None:
    """Run ``model`` over ``image`` tile by tile; hand each finished band of output rows to ``write``.

    ``write(y0, rows, shape)`` gets rows ``y0 .. y0 + len`` of the final output as a
    ``(B, C_out, len, scale W)`` float32 tensor on the network's device (a view it may
    modify), and the output's full shape. ``on_tile(done, total)`` follows each tile, the
    instance-norm measuring passes' tiles included (``norm_stats`` as for :func:`apply_model`).
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
    tile, overlap = check_tiling(tile, overlap, multiple, min_size)
    if getattr(model, "per_image_norm", False) and norm_stats == "image":
        tile = None  # an exported instance-norm network: its norm layers cannot be reached, so no tiles
    min_len = -(-min_size // multiple) * multiple

    batch, _, h, w = image.shape
    rows, cols = (_plan_axis(n, tile, overlap, multiple, min_len) for n in (h, w))
    col_weights = [_tile_weights(cols, j, scale, device) for j in range(len(cols.spans))]
    out_h, out_w = h * scale, w * scale
    n_tiles = len(rows.spans) * len(cols.spans)

    def prepare(row_span: tuple[int, int], col_span: tuple[int, int]) -> Tensor:
        """The network's input for one tile: cropped, converted, reflect-padded and mapped to its range."""
        crop, (dr, dc, pad_b, pad_r) = _crop(image, row_span, col_span)
        x = crop.to(device=device, dtype=dtype, non_blocking=True)
        if in_channels == 1 and x.shape[1] == 3:
            x = luminance(x)
        elif in_channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = _pad_reflect(x, pad_b, pad_r)[..., dr:, dc:]
        return in_lo + (in_hi - in_lo) * x if (in_lo, in_hi) != (0.0, 1.0) else x

    def run(x: Tensor) -> Tensor:
        with context:
            return model(x)

    # Instance norm: measure every layer's statistics over the whole image first, then use them in every tile.
    norms = per_image_norms(model) if check_choice(norm_stats, NORM_STATS, "norm_stats") == "image" else []
    stats: dict[nn.Module, tuple[Tensor, Tensor]] = {}
    done_tiles, total = [0], n_tiles * (1 + len(norms))
    if norms and n_tiles > 1:

        def tiles() -> Iterator[Tile]:
            for k, row_span in enumerate(rows.spans):
                for j, col_span in enumerate(cols.spans):
                    yield prepare(row_span, col_span), _owned(rows, k), _owned(cols, j)

        def progress() -> None:
            done_tiles[0] += 1
            if on_tile is not None:
                on_tile(done_tiles[0], total)

        stats = image_statistics(norms, tiles, run, progress)
    total = done_tiles[0] + n_tiles

    pending: Tensor | None = None  # rows of the previous band that later tiles still add to
    done = 0  # output rows handed to `write`
    with frozen_statistics(stats):
        for k, row_span in enumerate(rows.spans):
            top = row_span[0] * scale
            row_weights = _tile_weights(rows, k, scale, device)[:, None]
            band: Tensor | None = None
            for j, col_span in enumerate(cols.spans):
                x = prepare(row_span, col_span)
                y = run(x).float()
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
                done_tiles[0] += 1
                if on_tile is not None:
                    on_tile(done_tiles[0], total)
            if pending is not None:
                band[..., done - top : done - top + pending.shape[-2], :] += pending
            final = _final_rows(rows, k, scale)
            if done < min(final, out_h):
                stop = min(final, out_h)
                write(done, band[..., done - top : stop - top, :out_w], (batch, band.shape[1], out_h, out_w))
            pending, done = band[..., final - top :, :], final
