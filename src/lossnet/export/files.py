"""``export_model``: a trained network's checkpoint to an ONNX, TorchScript or app file (what ``lossnet export`` runs)."""

from __future__ import annotations

import os
from pathlib import Path

from lossnet.card import export_metadata
from lossnet.errors import InputError
from lossnet.export.onnx import DEFAULT_OPSET, export_onnx
from lossnet.export.prepare import ExportReport, prepare
from lossnet.export.spandrel import export_spandrel
from lossnet.export.torchscript import export_torchscript
from lossnet.validation import check_choice

#: The formats :func:`export_model` writes.
EXPORT_FORMATS = ("onnx", "torchscript", "spandrel")


def export_model(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    format: str = "onnx",
    *,
    fp16: bool = False,
    opset: int | None = None,
) -> ExportReport | Path:
    """Export a ``.safetensors`` checkpoint written by ``lossnet train``; the file carries its model card.

    Args:
        checkpoint: the trained network.
        output: the file to write.
        format: ``'onnx'`` (default), ``'torchscript'``, or ``'spandrel'``: the flat-key ``.safetensors``
            that upscaler apps (chaiNNer, ComfyUI, InvokeAI, through spandrel) detect, for a Compact
            network only (:func:`~lossnet.export.spandrel.export_spandrel`; returns the path written).
        fp16: float16 weights, input and output (ONNX only).
        opset: the ONNX opset (default :data:`~lossnet.export.onnx.DEFAULT_OPSET`; ONNX only).

    Raises:
        InputError: an unknown format, or ``fp16`` / ``opset`` with TorchScript.
        and what :func:`~lossnet.export.export_onnx` and :func:`~lossnet.export.export_torchscript` raise.
    """
    fmt = check_choice(format, EXPORT_FORMATS, "format")
    if fmt == "onnx":
        return export_onnx(checkpoint, output, opset=DEFAULT_OPSET if opset is None else opset, fp16=fp16)
    for name, given in (("fp16", fp16), ("opset", opset is not None)):
        if given:
            raise InputError(f"{name} is for ONNX files; a {fmt} file is float32 and has no opset. Use format 'onnx'")
    if fmt == "spandrel":
        prepared = prepare(checkpoint)
        return export_spandrel(prepared.net, output, metadata=export_metadata(prepared.interface, prepared.card))
    return export_torchscript(checkpoint, output)
