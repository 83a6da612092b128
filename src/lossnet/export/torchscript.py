"""Export a network to TorchScript (a traced graph) with its interface and card in an extra file.

The network is traced with ``torch.jit.trace`` (``torch.jit.script`` cannot compile lossnet's
networks: their input checks build error messages in Python). The trace records sizes as
operations on the input's shape, so batch, height and width stay free; the size checks of the
networks' ``forward`` run once, at trace time, and the size rule goes into the extra file
instead. As for ONNX (:mod:`lossnet.export.onnx`), the saved file is loaded back and run next
to the network at two sizes before anything is written.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lossnet.atomic import atomic_writer
from lossnet.card import EXTRA_FILE, export_metadata
from lossnet.errors import ExportError
from lossnet.export.onnx import _first_line
from lossnet.export.prepare import ExportReport, check_export, prepare, trace_inputs, trace_quietly

#: How far the TorchScript file may differ from PyTorch in the export check, as a fraction of the output range.
CHECK_TOLERANCE = 1e-5


def export_torchscript(
    model: nn.Module | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    card: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Export a network to a TorchScript file that runs at any batch, height and width its size rule allows.

    The module takes ``(B, in_channels, H, W)`` float32 in the network's input range and returns
    ``(B, out_channels, scale H, scale W)`` in its output range; a style network takes its style as more
    inputs, as the ONNX file does (:func:`~lossnet.export.export_onnx`). Its extra file
    ``lossnet.json`` holds the interface and the model card (:func:`lossnet.card.export_metadata`);
    ``torch.jit.load(path, _extra_files={"lossnet.json": ""})`` reads it. The file is checked
    against the network before it is written, atomically.

    Args:
        model: a ``.safetensors`` checkpoint written by ``lossnet train``, or a network (the module
            itself is not changed).
        path: the file to write (``.pt`` by convention).
        card: the model card to write (default: the checkpoint's).

    Returns:
        an :class:`~lossnet.export.prepare.ExportReport`.

    Raises:
        ExportError: the network cannot be traced, or the file does not compute what it computes.

    Example:
        >>> import tempfile, pathlib
        >>> from lossnet.models import SuperResNet
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "sr.pt"
        >>> _ = export_torchscript(SuperResNet(scale=2, channels=4, num_residual=1), p)
        >>> extra = {"lossnet.json": ""}
        >>> net = torch.jit.load(p, _extra_files=extra)
        >>> net(torch.rand(2, 3, 10, 14)).shape, json.loads(extra["lossnet.json"])["lossnet.scale"]
        (torch.Size([2, 3, 20, 28]), '2')
    """
    prepared = prepare(model, card)
    interface = prepared.interface
    inputs = trace_inputs(interface)
    buffer = io.BytesIO()
    extra = {EXTRA_FILE: json.dumps(export_metadata(interface, prepared.card), indent=1)}
    try:
        traced = trace_quietly(lambda: torch.jit.trace(prepared.net, inputs, check_trace=False))
        trace_quietly(lambda: torch.jit.save(traced, buffer, _extra_files=extra))
    except Exception as err:  # the tracer's many error types: one line saying which and why
        raise ExportError(f"{prepared.name} cannot be exported to TorchScript: {_first_line(err)}") from None
    data = buffer.getvalue()
    loaded = trace_quietly(lambda: torch.jit.load(io.BytesIO(data)))
    checks = check_export(prepared, lambda *t: trace_quietly(lambda: loaded(*t)), CHECK_TOLERANCE, "TorchScript file")
    with atomic_writer(Path(path)) as f:
        f.write(data)
    return ExportReport(Path(path), "torchscript", interface, None, checks)
