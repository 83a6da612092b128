"""Export a network to ONNX with dynamic batch, height and width, its interface and card in ``metadata_props``.

**Which exporter.** torch 2.13's ``torch.onnx.export`` defaults to the ``torch.export``-based
exporter (``dynamo=True``). lossnet uses the TorchScript-based one (``dynamo=False``) with
``dynamic_axes``, for these reasons, measured on lossnet's three networks:

- both gave correct outputs at sizes other than the traced one, dynamic batch included (tried
  on a TransformerNet, a x2 SuperResNet and a one-channel U-Net at 64x64, 68x92 and 128x200,
  batch 1 and 2: within 1e-6 of PyTorch in onnxruntime for both), so correctness does not decide;
- the ``torch.export`` path needs every dynamic dimension declared as a ``Dim`` with its bounds
  (the networks' minimum sizes), restating each network's size rule for the exporter; the trace
  needs none: batch, height and width are named free axes, and the size rule goes into the metadata;
- the ``torch.export`` path took 8x longer (10.5 s against 1.3 s for a depth-4 U-Net on 2 CPU
  cores), prints progress to stdout and logs a warning per missing torchvision operator (a library
  must not print), and raised a ``FutureWarning`` from inside torch (an error under lossnet's tests).

The TorchScript-based exporter is deprecated in torch >= 2.9 and will go one day. Until then
every file is checked: :func:`export_onnx` runs the ONNX file in onnxruntime next to the
network at two sizes it was not traced at (batch 2 at the second one) and writes nothing
when they differ, so a trace that froze a shape can never give a silently wrong file.

The opset is :data:`DEFAULT_OPSET` (17) unless another in :data:`OPSETS` is asked for: every
operator these networks use (reflection and edge padding, nearest and cubic ``Resize``,
``DepthToSpace``, ``InstanceNormalization``) exists from opset 11, and the TorchScript
exporter goes up to 20.
"""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lossnet.atomic import atomic_writer
from lossnet.card import EXPORT_EXTRA, export_metadata
from lossnet.errors import ExportError, InputError, MissingExtraError
from lossnet.export.inputs import dynamic_axes
from lossnet.export.prepare import ExportReport, check_export, prepare, trace_inputs, trace_quietly, with_dtype

#: The opsets :func:`export_onnx` writes (the TorchScript-based exporter's range from opset 11).
OPSETS = range(11, 21)
#: The default opset: supported by onnxruntime >= 1.11 and the common accelerators' ONNX parsers.
DEFAULT_OPSET = 17
#: The input (of a one-input network; see :attr:`lossnet.card.Interface.input_names`) and output names in the graph.
INPUT_NAME, OUTPUT_NAME = "image", "output"
#: How far the ONNX file may differ from PyTorch in the export check, as a fraction of the output range.
CHECK_TOLERANCE = {"float32": 1e-3, "float16": 5e-2}


def require_onnx() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, or a :class:`~lossnet.errors.MissingExtraError` naming the extra to install."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise MissingExtraError(f"ONNX needs the onnx and onnxruntime packages ({err.name} is missing): {EXPORT_EXTRA}") from None
    return onnx, onnxruntime


def export_onnx(
    model: nn.Module | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    card: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Export a network to an ONNX file that runs at any batch, height and width its size rule allows.

    The graph takes ``image`` ``(B, in_channels, H, W)`` in the network's input range and gives
    ``output`` ``(B, out_channels, scale H, scale W)`` in its output range, the network's own
    tensors: the values are not remapped to [0, 1]. A style network takes its style as more inputs
    (:mod:`lossnet.export.inputs`): a ``style_multi`` network ``style``, a float mix ``(B or 1, N)``
    (a one-hot row picks one style); a ``style_any`` network ``content`` (instead of ``image``),
    ``style`` ``(B or 1, 3, H', W')`` of any size and ``alpha`` ``(B or 1,)``, all in the file's dtype.
    Its ``metadata_props`` hold the interface
    (task, scale, channels and their layout, the size rule, the ranges, dtype, opset) and the model
    card under ``lossnet.*`` keys (:func:`lossnet.card.export_metadata`). The file is checked in
    onnxruntime against the network before it is written (see the module docstring), atomically.

    Args:
        model: a ``.safetensors`` checkpoint written by ``lossnet train``, or a network (see
            :func:`lossnet.export.prepare.prepare`; the module itself is not changed).
        path: the ``.onnx`` file to write.
        opset: the ONNX opset, in :data:`OPSETS`.
        fp16: store the weights and compute in float16; input and output are then float16 too.
        card: the model card to write (default: the checkpoint's).

    Returns:
        an :class:`~lossnet.export.prepare.ExportReport`.

    Raises:
        MissingExtraError: onnx or onnxruntime is not installed.
        InputError: an opset outside :data:`OPSETS`, or a path not ending in ``.onnx``.
        ExportError: the network cannot be traced or exported, or the file does not compute what it computes.

    Example:
        >>> import pytest; onnxruntime = pytest.importorskip("onnxruntime")  # the export extra
        >>> import tempfile, pathlib
        >>> from lossnet.models import TransformerNet
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "style.onnx"
        >>> report = export_onnx(TransformerNet(channels=4, num_residual=1), p)
        >>> session = onnxruntime.InferenceSession(p, providers=["CPUExecutionProvider"])
        >>> y = session.run(None, {"image": torch.rand(2, 3, 36, 52).numpy()})[0]
        >>> y.shape, report.opset, session.get_modelmeta().custom_metadata_map["lossnet.size_multiple"]
        ((2, 3, 36, 52), 17, '4')
    """
    onnx, ort = require_onnx()
    if isinstance(opset, bool) or opset not in OPSETS:
        raise InputError(f"opset must be an int in {OPSETS.start}-{OPSETS.stop - 1}; got {opset!r}. Use {DEFAULT_OPSET}")
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise InputError(f"an ONNX file's name ends in .onnx (lossnet apply and info recognise it so); got {path}")
    prepared = prepare(model, card)
    dtype = "float16" if fp16 else "float32"
    interface = with_dtype(prepared.interface, dtype)
    net = copy.deepcopy(prepared.net).half() if fp16 else prepared.net
    inputs = tuple(t.to(torch.float16 if fp16 else torch.float32) for t in trace_inputs(interface))
    buffer = io.BytesIO()
    axes = {**dynamic_axes(interface), OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"}}
    try:
        trace_quietly(
            lambda: torch.onnx.export(
                net, inputs, buffer, dynamo=False, opset_version=opset, input_names=list(interface.input_names),
                output_names=[OUTPUT_NAME], dynamic_axes=axes, do_constant_folding=True,
            )
        )
    except Exception as err:  # the tracer's and the exporter's many error types: one line saying which and why
        raise ExportError(f"{prepared.name} cannot be exported to ONNX: {_first_line(err)}") from None
    graph = onnx.load_from_string(buffer.getvalue())
    graph.doc_string = f"lossnet {prepared.name}: {interface.describe()}"
    for key, value in export_metadata(interface, prepared.card, opset).items():
        graph.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(graph)
    data = graph.SerializeToString()
    session = _session(ort, data)
    checks = check_export(prepared, lambda *t: _run(session, t, fp16), CHECK_TOLERANCE[dtype], "ONNX file")
    with atomic_writer(path) as f:
        f.write(data)
    return ExportReport(path, "onnx", interface, opset, checks)


def _session(ort: Any, data: bytes) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime's warnings would reach the user's terminal
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _run(session: Any, inputs: tuple[Tensor, ...], fp16: bool) -> Tensor:
    names, dtype = [i.name for i in session.get_inputs()], "float16" if fp16 else "float32"
    feed = {n: t.detach().cpu().numpy().astype(dtype) for n, t in zip(names, inputs, strict=True)}
    return torch.from_numpy(session.run(None, feed)[0])


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"
