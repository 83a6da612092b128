"""Input checks at the public boundary: one place that decides what is valid.

Each check raises an :mod:`lossnet.errors` exception whose message says what was
expected, what came in and how to fix it. Nothing here uses ``assert``.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Sequence

import torch

from lossnet.errors import InputError, InputTypeError

Range = tuple[float, float]

#: The input ranges lossnet accepts for images.
INPUT_RANGES: tuple[Range, ...] = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return a ``" Did you mean ...?"`` hint for ``name`` (empty if nothing is close).

    Candidates are ranked by similarity, ties broken by the longer common prefix, so
    ``relu2_3`` suggests ``relu2_2`` before ``relu5_3``.

    >>> suggest("relu2_3", ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"])
    " Did you mean 'relu2_2', 'relu3_3', 'relu4_3'?"
    """

    def rank(choice: str) -> tuple[float, int]:
        ratio = difflib.SequenceMatcher(None, name, choice).ratio()
        prefix = len(os.path.commonprefix([name, choice]))
        return -ratio, -prefix

    close = sorted((c for c in choices if difflib.SequenceMatcher(None, name, c).ratio() >= 0.5), key=rank)[:3]
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise with the valid ones listed.

    >>> check_choice("mse", ["l1", "mse"], "criterion")
    'mse'
    """
    if not isinstance(value, str):
        raise InputTypeError(f"{what} must be a string, one of {list(choices)}; got {type(value).__name__}")
    if value not in choices:
        raise InputError(f"unknown {what} {value!r}; expected one of {list(choices)}.{suggest(value, choices)}")
    return value


def check_input_range(input_range: Sequence[float] | None, what: str = "input_range") -> Range:
    """Validate an image range such as ``(0, 1)`` and return it as a float pair.

    >>> check_input_range((0, 255))
    (0.0, 255.0)
    """
    try:
        lo, hi = (float(v) for v in input_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a pair such as (0, 1); got {input_range!r}") from None
    if (lo, hi) not in INPUT_RANGES:
        raise InputError(f"{what} must be one of {list(INPUT_RANGES)}; got {(lo, hi)}")
    return lo, hi


def check_image(x: object, name: str = "input", input_range: Range | None = None) -> torch.Tensor:
    """Check that ``x`` is a float image batch ``(B, C, H, W)`` with C in {1, 3}.

    When ``input_range`` is given, the values must also be finite and lie near that
    range: a value further outside than the range's own width (255 for a ``(0, 1)``
    image, say) almost always means the wrong range was passed, so it raises
    instead of producing a silently wrong loss. Small overshoots, as a network's raw
    output has, are accepted.

    Under ``torch.compile`` (``torch.compiler.is_compiling()``) the value checks are skipped and
    only type, rank, dtype, channels and emptiness are checked: reading the minimum and maximum
    back as Python numbers is data-dependent, and would split the compiled graph on every call.
    Run the model eagerly once (or call ``check_image`` on a batch) to have the values checked.

    Args:
        x: the tensor to check.
        name: how the error message names it.
        input_range: the ``(lo, hi)`` range the values should be in, or ``None`` to skip
            (skipped under ``torch.compile`` too).

    Returns:
        ``x`` unchanged.
    """
    _check_float_batch(x, name, "C")
    channels = x.shape[1]
    if channels not in (1, 3):
        if x.shape[-1] in (1, 3):
            hint = " It looks channels-last: use x.permute(0, 3, 1, 2)."
        elif channels == 4:
            hint = " Drop the alpha channel with x[:, :3]."
        else:
            hint = ""
        raise InputError(f"{name} must have shape (B, C, H, W) with C in {{1, 3}}; got {tuple(x.shape)}.{hint}")
    if x.numel() == 0:
        raise InputError(f"{name} is empty: shape {tuple(x.shape)}")
    if input_range is not None and not _compiling():
        _check_values(x, name, input_range)
    return x


def _compiling() -> bool:
    """``torch.compiler.is_compiling()`` (torch 2.3 and newer; older torch: ``False``, so it checks)."""
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling is not None and is_compiling())


def _check_float_batch(x: object, name: str, channels: str) -> None:
    """Type, rank and dtype checks shared by every image-batch check."""
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor of shape (B, {channels}, H, W); got {type(x).__name__}")
    if x.ndim != 4:
        hint = " Add the batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise InputError(f"{name} must have shape (B, {channels}, H, W); got {tuple(x.shape)} ({x.ndim}-D).{hint}")
    if not x.is_floating_point():
        raise InputTypeError(
            f"{name} must be a floating-point tensor; got {x.dtype}. "
            "Convert it with x.float() (and divide by 255 for 8-bit images with input_range=(0, 1))."
        )


def _check_values(x: torch.Tensor, name: str, input_range: Range) -> None:
    # One pass gives both checks: min/max propagate NaN and +-inf.
    lo_seen, hi_seen = (float(v) for v in torch.aminmax(x.detach()))
    if not (math.isfinite(lo_seen) and math.isfinite(hi_seen)):
        raise InputError(f"{name} contains NaN or infinite values; expected finite values in {input_range}")
    lo, hi = input_range
    span = hi - lo
    if lo_seen < lo - span or hi_seen > hi + span:
        guess = next((r for r in INPUT_RANGES if r[0] - 1e-3 <= lo_seen and hi_seen <= r[1] + 1e-3), None)
        hint = f" Pass input_range={guess}." if guess and guess != input_range else ""
        raise InputError(
            f"{name} has values in [{lo_seen:.4g}, {hi_seen:.4g}], far outside input_range={input_range}.{hint}"
        )


def check_same_shape(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Raise unless prediction and target have the same shape (a target of batch 1 broadcasts)."""
    if pred.shape[1:] != target.shape[1:] or target.shape[0] not in (1, pred.shape[0]):
        raise InputError(
            f"prediction and target must have the same shape (B, C, H, W) (or a target with B=1); "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}. Resize or crop them to match."
        )


def check_weight(value: object, what: str) -> float:
    """Return a loss weight as a float, raising on negative or non-finite values."""
    try:
        w = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputTypeError(f"{what} must be a number; got {value!r}") from None
    if not (w >= 0.0 and w != float("inf")):
        raise InputError(f"{what} must be a finite number >= 0; got {w}")
    return w


def check_tensor(x: object, name: str, ndim: int | tuple[int, ...]) -> torch.Tensor:
    """Raise unless ``x`` is a floating-point tensor with ``ndim`` dimensions (an int or a tuple of them)."""
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.ndim not in allowed:
        raise InputError(f"{name} must have {' or '.join(map(str, allowed))} dimensions; got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputTypeError(f"{name} must be a floating-point tensor; got {x.dtype}. Convert it with .float().")
    return x


def check_positive_int(value: object, what: str) -> int:
    """Return ``value`` if it is an ``int >= 1`` (not a bool), else raise.

    >>> check_positive_int(5, "num_residual")
    5
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{what} must be an int >= 1; got {value!r} ({type(value).__name__})")
    if value < 1:
        raise InputError(f"{what} must be an int >= 1; got {value}")
    return value


def check_model_input(x: object, model: str, channels: int, multiple: int = 1, min_size: int = 1) -> torch.Tensor:
    """Raise unless ``x`` is a float ``(B, channels, H, W)`` batch whose H, W fit the network.

    Args:
        x: the network's input.
        model: the network's name, for the message.
        channels: the number of channels the network takes.
        multiple: H and W must be multiples of this (the total downsampling factor).
        min_size: the smallest H and W the network accepts (reflection padding needs
            the padding to be smaller than the image).

    Returns:
        ``x`` unchanged. Only type, shape and size are checked, never the values, so the
        check costs no device synchronisation inside a training loop.

    Example:
        >>> check_model_input(torch.rand(1, 3, 30, 32), "Net", 3, multiple=4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lossnet.errors.InputError: Net input height and width must be multiples of 4; got (1, 3, 30, 32). Crop...
    """
    _check_float_batch(x, f"{model} input", str(channels))
    shape = tuple(x.shape)
    if x.shape[1] != channels:
        hint = " It looks channels-last: use x.permute(0, 3, 1, 2)." if x.shape[-1] == channels else ""
        raise InputError(f"{model} input must have {channels} channels, (B, {channels}, H, W); got {shape}.{hint}")
    h, w = shape[-2:]
    if h % multiple or w % multiple:
        ch, cw = h - h % multiple, w - w % multiple
        ph, pw = -h % multiple, -w % multiple
        raise InputError(
            f"{model} input height and width must be multiples of {multiple}; got {shape}. "
            f"Crop it to ({ch}, {cw}) with x[..., :{ch}, :{cw}], or pad it to ({h + ph}, {w + pw}) with "
            f"torch.nn.functional.pad(x, (0, {pw}, 0, {ph}), mode='reflect')."
        )
    if h < min_size or w < min_size:
        raise InputError(
            f"{model} input must be at least {min_size}x{min_size} pixels; got {shape}. Use a larger image."
        )
    return x
