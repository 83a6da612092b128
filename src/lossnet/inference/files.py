"""Applying a network to image files and folders: :func:`apply_files`.

EXIF orientation applied, PNG or JPEG out, atomic writes, and a bad file reported without
stopping the others. **Files come out as they went in**:

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

The network itself runs through :func:`lossnet.inference.tiling.run_tiled`, the engine of
:func:`~lossnet.inference.apply_model`.
"""

from __future__ import annotations

import logging
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

from lossnet.checkpoint import ModelInfo
from lossnet.data.io import BACKGROUND, IMAGE_SUFFIXES, read_icc_profile, read_image, save_image
from lossnet.data.tasks import luminance
from lossnet.data.walk import walk_files
from lossnet.errors import InputError, InputTypeError, LossnetError
from lossnet.inference.loading import load_model_with_info
from lossnet.inference.tiling import check_tiling, run_tiled, size_rule
from lossnet.memory import release_freed_memory
from lossnet.models.multi_style_net import StyleChoice
from lossnet.runtime import PRECISION_CHOICES, Runtime, pick_device, resolve
from lossnet.tasks import TASKS, guess_task
from lossnet.validation import check_choice

#: Output formats of :func:`apply_files` and the suffix each writes.
FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg"}
#: ``bit_depth`` choices of :func:`apply_files`: the input's depth, or 8 or 16 bits per sample.
BIT_DEPTHS = ("match", 8, 16)

log = logging.getLogger("lossnet")

# What makes one file fail without stopping the others: unreadable or unwritable files,
# images too large for Pillow's safety limit, a GPU out of memory on one huge image.
_PER_FILE_ERRORS = (LossnetError, OSError, Image.DecompressionBombError, torch.cuda.OutOfMemoryError)


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
    style: int | Sequence[float] | None = None,
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
        model: a checkpoint path (see :func:`~lossnet.inference.load_model`) or a network in eval mode.
        inputs: image files and/or folders.
        output_dir: where the outputs go (created if needed). It may not be where an input
            would be overwritten.
        format: ``'png'`` (default, lossless) or ``'jpg'``.
        quality: JPEG quality (1-100).
        tile, overlap, precision: as for :func:`~lossnet.inference.apply_model`; they are checked,
            with the device and the format options, before any file is read.
        device: ``'auto'`` (default: CUDA when available), ``'cpu'``, ``'cuda'``, ...; used when
            ``model`` is a path (a module runs where it is).
        progress: wraps the list of jobs for iteration, e.g. ``tqdm.tqdm`` for a progress bar.
        on_tile: called as ``on_tile(source, done, total)`` after each tile of each image.
        bit_depth: ``'match'`` (default: 16-bit PNG out for 16-bit input, else 8-bit), ``8`` or
            ``16`` (PNG only). JPEG output is always 8-bit.
        style: a multi-style network's style: an index, or a mix (one weight per style, summing to 1);
            required for such a network, refused for any other (see :func:`choose_style`).

    Returns:
        an :class:`ApplySummary`.

    Raises:
        FileNotFoundError: an input or the checkpoint does not exist.
        CheckpointError: the checkpoint is truncated, corrupt or holds no network.
        InputError, InputTypeError: a bad option (format, quality, bit depth, tile, overlap,
            precision, device), no images found, or an output would overwrite an input.
    """
    fmt = check_choice(format, list(FORMATS), "format")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"quality must be an int in 1-100 (JPEG); got {quality!r}")
    depth = _check_bit_depth(bit_depth, fmt)
    if not isinstance(precision, Runtime):
        check_choice(precision, PRECISION_CHOICES, "precision")  # resolved below, on the network's device
    if not isinstance(model, nn.Module):
        device = pick_device(device)
    out_dir = Path(output_dir)
    jobs, skipped = _plan_files(inputs, out_dir, FORMATS[fmt])
    if isinstance(model, nn.Module):
        net, info = model, None
    else:
        net, info = load_model_with_info(model, device)
    net = choose_style(net, style, info.styles if info is not None else None)
    check_tiling(tile, overlap, *size_rule(net))  # a bad option fails before any image is read
    param = next(net.parameters(), None)
    precision = resolve(precision, param.device if param is not None else "cpu")  # once, for every file
    summary = ApplySummary(skipped=skipped, model=info)
    keep_grey = _keeps_grey(net, info)
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
        release_freed_memory()  # the next image's sizes differ: what this one kept would add to its peak
    return summary


def choose_style(model: nn.Module, style: int | Sequence[float] | None, names: Sequence[str] | None) -> nn.Module:
    """``model`` with its style fixed (:class:`~lossnet.models.StyleChoice`) when it holds several; else ``model``.

    Raises:
        InputError: a network of several styles and no style (the message lists them, by ``names``), a style
            for a network of one, or a style out of range.
    """
    count = getattr(model, "num_styles", None)
    if count is None:
        if style is not None:
            raise InputError("--style / --style-mix pick among a multi-style network's styles; this network has one")
        return model
    if style is None and count == 1:
        return model
    if style is None:
        listed = ", ".join(f"{k} {n}" for k, n in enumerate(names)) if names else f"0 to {count - 1}"
        raise InputError(
            f"this network holds {count} styles ({listed}); pick one with --style K or blend them with "
            f"--style-mix {','.join(['0.5'] * 2 + ['0'] * (count - 2))}"
        )
    return StyleChoice(model, style)


def _check_bit_depth(bit_depth: object, fmt: str) -> int | None:
    """``None`` for 'match', else 8 or 16; 16 bits need PNG."""
    if bit_depth not in BIT_DEPTHS or isinstance(bit_depth, bool):
        raise InputError(f"bit_depth must be 'match', 8 or 16; got {bit_depth!r}")
    if bit_depth == 16 and fmt != "png":
        raise InputError(f"16-bit output needs format 'png' (JPEG holds 8 bits); got format {fmt!r}")
    return None if bit_depth == "match" else int(bit_depth)


def _keeps_grey(model: nn.Module, info: ModelInfo | None) -> bool:
    """Whether a grey input gives a grey output: not for the tasks that add colour (the registry's ``colour_output``).

    The task is the checkpoint's, else :func:`lossnet.tasks.guess_task`'s (a one-channel network
    is colorize, a ``TransformerNet`` style).
    """
    task = TASKS.get((info.task if info is not None else None) or guess_task(model) or "")
    return task is None or not task.colour_output


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
    run_tiled(model, image, tile, overlap, precision, write, on_tile)
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
            for file in walk_files(path, exclude=out_dir):
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


