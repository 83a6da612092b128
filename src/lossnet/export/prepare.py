"""What every export does around writing the file: the network to trace, its interface and card, and the check.

:func:`prepare` turns a checkpoint path or a module into a frozen copy in eval mode (the
caller's module is left alone), in the form its graph computes (:mod:`lossnet.export.inputs`:
one image, or an image and a style mix, or a content and a style image and alpha), with the
:class:`~lossnet.card.Interface` its file will declare and the card it will carry.
:func:`export_sizes` picks the size to trace at and the size to check at, from the network's
size rule. :func:`check_export` runs the exported file and the network side by side at both
sizes (batch 1 and 2; a style image at two more sizes of its own) and refuses a file whose
output differs: a trace can freeze a shape that Python computed, and such a file would be
wrong at every other size without a word.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lossnet.card import Interface, file_format
from lossnet.checkpoint import load_checkpoint, model_card, model_meta
from lossnet.errors import CheckpointError, ExportError, InputTypeError
from lossnet.export.inputs import example_inputs, export_form
from lossnet.inference.loading import load_model_with_info
from lossnet.inference.norm_stats import per_image_norms
from lossnet.inference.styles import check_trunk
from lossnet.tasks import guess_task


@dataclass
class Prepared:
    """A network ready to trace: ``net`` (a float32 copy in eval mode, in its graph's form), its interface and card.

    ``net`` takes the inputs ``interface.input_names`` names, in that order (:mod:`lossnet.export.inputs`).
    """

    net: nn.Module
    interface: Interface
    card: dict[str, Any]
    name: str


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how it was checked.

    Attributes:
        path: the file written.
        format: ``'onnx'`` or ``'torchscript'``.
        interface: what the file declares (input and output, size rule, dtype).
        opset: the ONNX opset (``None`` for TorchScript).
        checks: ``((B, C, H, W), max abs difference)`` against the PyTorch network, for each check (the shape
            is the image's; a style image was checked at its own sizes beside it).
    """

    path: Path
    format: str
    interface: Interface
    opset: int | None
    checks: tuple[tuple[tuple[int, ...], float], ...]

    def __str__(self) -> str:
        kind = f"ONNX opset {self.opset}" if self.format == "onnx" else "TorchScript"
        checked = ", ".join(f"{'x'.join(map(str, shape))} ({diff:.1e})" for shape, diff in self.checks)
        return (
            f"wrote {self.path} ({kind}, {self.interface.dtype}): {self.interface.describe()}; "
            f"checked against PyTorch at {checked} (max abs difference)"
        )


def prepare(model: nn.Module | str | os.PathLike[str], card: Mapping[str, Any] | None = None) -> Prepared:
    """The network to export, from a ``.safetensors`` checkpoint or a module, with its interface and card.

    Args:
        model: a checkpoint written by ``lossnet train``, or a network (lossnet's, or any module that
            declares ``scale``, ``in_channels``, ``size_multiple``, ``min_size``, ``input_range`` and
            ``output_range`` where they differ from 1, 3, 1, 1, (0, 1), (0, 1)). A
            :class:`~lossnet.models.MultiStyleNet` of several styles and an :class:`~lossnet.models.AdaINNet`
            take their style as a second input (:mod:`lossnet.export.inputs`).
        card: the card to write (a checkpoint's own card by default; for a module, one that names it).

    Raises:
        InputTypeError: neither a path nor a module.
        CheckpointError: the path is not a ``.safetensors`` checkpoint, or an AdaINNet's trunk loaded here is not
            the one its decoder was trained on (the file would carry it).
        ExportError: the network declares a size rule or range that is not whole numbers and a pair, or takes
            more than one image and is not an AdaINNet (``inputs``).
    """
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.is_file() and file_format(path) != "safetensors":
            raise CheckpointError(
                f"{path} is already an exported {file_format(path)} file; export from the .safetensors model"
            )
        net, info = load_model_with_info(path, "cpu")
        check_trunk(net, info, path)
        stored = model_card(load_checkpoint(path).meta)
        name = info.name
    elif isinstance(model, nn.Module):
        net, stored, name = copy.deepcopy(model), None, type(model).__name__
    else:
        raise InputTypeError(f"model must be a torch.nn.Module or a .safetensors path; got {type(model).__name__}")
    net = net.float().eval().requires_grad_(False)
    form, style_input, num_styles = export_form(net, name)
    declared = _declared(net, name)
    interface = Interface(
        in_channels=declared["in_channels"],
        out_channels=0,  # from one run, below
        scale=declared["scale"],
        size_multiple=declared["size_multiple"],
        min_size=declared["min_size"],
        input_range=declared["input_range"],
        output_range=declared["output_range"],
        task=(card or stored or {}).get("task") or guess_task(net),
        per_image_norm=bool(per_image_norms(net)),
        style_input=style_input,
        num_styles=num_styles,
    )
    interface = dataclasses.replace(interface, out_channels=_out_channels(form, interface, name))
    if card is None:
        network = {k: declared[k] for k in ("scale", "in_channels", "size_multiple", "min_size")}
        card = stored or model_card(model_meta({"name": name, "kwargs": {}}, task=interface.task, network=network))
        card = {**card, "network": {**network, **{k: v for k, v in (card.get("network") or {}).items() if v is not None}}}
    return Prepared(form, interface, dict(card), name)


def _declared(net: nn.Module, name: str) -> dict[str, Any]:
    """The size rule and ranges the network declares; a rule an exported file cannot state is an ExportError."""
    out: dict[str, Any] = {}
    for attr, default in (("scale", 1), ("in_channels", 3), ("size_multiple", 1), ("min_size", 1)):
        value = getattr(net, attr, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExportError(
                f"{name} declares {attr}={value!r}: an exported file states the size rule as whole numbers >= 1 "
                f"(scale, in_channels, size_multiple, min_size), and ONNX has no other way to say it; declare an int"
            )
        out[attr] = value
    for attr in ("input_range", "output_range"):
        value = getattr(net, attr, (0.0, 1.0))
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ExportError(f"{name} declares {attr}={value!r}; expected two numbers (lo, hi)") from None
        out[attr] = (lo, hi)
    return out


def _out_channels(net: nn.Module, interface: Interface, name: str) -> int:
    """The output's channels, from one run at the trace size; an output that is not one image batch is refused."""
    h, w = export_sizes(interface.size_multiple, interface.min_size)[0]
    inputs = example_inputs(interface, 1, (h, w), 0)
    x = inputs[0]
    with torch.no_grad():
        y = net(*inputs)
    s = interface.scale
    if not isinstance(y, Tensor) or y.ndim != 4 or tuple(y.shape[-2:]) != (s * h, s * w):
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ExportError(
            f"{name} turns a {tuple(x.shape)} input into {got}; an exported network returns one (B, C, {s}H, {s}W) "
            f"tensor (scale {s}, as it declares)"
        )
    return int(y.shape[1])


def export_sizes(multiple: int, min_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(trace size, check size)``: two non-square sizes the network takes that differ in both height and width.

    >>> export_sizes(4, 8), export_sizes(1, 5), export_sizes(16, 32)
    (((40, 44), (48, 64)), ((40, 41), (42, 46)), ((48, 64), (80, 144)))
    """
    h = max(40, min_size)
    h = -(-h // multiple) * multiple
    return (h, h + multiple), (h + 2 * multiple, h + 6 * multiple)


def trace_inputs(interface: Interface) -> tuple[Tensor, ...]:
    """The inputs to trace with: batch 1 at the trace size (float32; :func:`~lossnet.export.inputs.example_inputs`)."""
    return example_inputs(interface, 1, export_sizes(interface.size_multiple, interface.min_size)[0], 0)


def check_export(
    prepared: Prepared, run: Callable[..., Tensor], tolerance: float, what: str
) -> tuple[tuple[tuple[int, ...], float], ...]:
    """Run the exported file (``run``) and the network at the trace size (batch 1) and the check size (batch 2).

    ``run`` takes the inputs ``prepared.interface.input_names`` names, as float32 tensors, in that order.

    Returns:
        ``((shape, max abs difference), ...)``.

    Raises:
        ExportError: an output of another shape, a failure to run, or a difference above
            ``tolerance`` times the output range's width.
    """
    i = prepared.interface
    lo, hi = i.output_range
    limit = tolerance * (hi - lo)
    results = []
    for check, (batch, size) in enumerate(zip((1, 2), export_sizes(i.size_multiple, i.min_size))):
        inputs = example_inputs(i, batch, size, check)
        x = inputs[0]
        with torch.no_grad():
            expected = prepared.net(*inputs)
        try:
            got = run(*inputs)
        except Exception as err:  # the runtime's own error types: say which size failed and why
            lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
            reason = next((line for line in reversed(lines) if "Error: " in line), lines[0])  # TorchScript: the last
            raise ExportError(
                f"the exported {what} fails on a {tuple(x.shape)} input ({reason}): a shape was frozen at the traced "
                "size, or an operator is exported differently; not written"
            ) from None
        if got.shape != expected.shape:
            raise ExportError(
                f"the exported {what} turns a {tuple(x.shape)} input into {tuple(got.shape)}, the network into "
                f"{tuple(expected.shape)}: a shape was frozen at the traced size, so the file is not written"
            )
        diff = float((got.float() - expected).abs().max())
        if not diff <= limit:
            raise ExportError(
                f"the exported {what} differs from the network by {diff:.3g} (limit {limit:.3g}) on a {tuple(x.shape)} "
                "input: a value was frozen at the traced size or an operator is exported differently; not written"
            )
        results.append((tuple(x.shape), diff))
    return tuple(results)


def trace_quietly(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` (a trace or an export) without autograd and without the tracer's expected warnings.

    The trace warns where a Python value came from a tensor (the networks' size checks), the
    exporters warn that they are deprecated, and the ONNX exporter prints its graph when it fails; :func:`check_export` is what tells a good trace from a bad one.
    """
    # torch prints the graph to stdout when the exporter fails; the error says what matters, in one line.
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # a Slice left unfolded: harmless
        # Instance norm always normalises by the image's own statistics, in eval mode too, as it should.
        warnings.filterwarnings("ignore", ".*'instance_norm' is set to train=True", UserWarning)
        return fn()


def with_dtype(interface: Interface, dtype: str) -> Interface:
    """The interface with another tensor type."""
    return dataclasses.replace(interface, dtype=dtype)
