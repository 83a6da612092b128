"""Exporting trained networks so that they run outside lossnet: ONNX and TorchScript.

- :func:`export_onnx` (:mod:`~lossnet.export.onnx`): an ``.onnx`` file with dynamic batch, height
  and width, float32 or float16, checked in onnxruntime before it is written;
- :func:`export_torchscript` (:mod:`~lossnet.export.torchscript`): a traced TorchScript file;
- :func:`export_model`: either, from a checkpoint file (what ``lossnet export`` runs).

Both formats carry the network's interface (task, scale, channels, size rule, value ranges, and
what the file takes besides the image) and its model card (:mod:`lossnet.card`); ``lossnet info``
reads them back, and ``lossnet apply`` runs both formats (:mod:`lossnet.inference.exported`). The
style networks that take their style at inference export with it as graph inputs
(:mod:`~lossnet.export.inputs`): a ``style_multi`` network's style mix, a ``style_any`` network's
style image and alpha.
"""

from lossnet.export.files import EXPORT_FORMATS, export_model
from lossnet.export.onnx import DEFAULT_OPSET, OPSETS, export_onnx
from lossnet.export.prepare import ExportReport
from lossnet.export.torchscript import export_torchscript

__all__ = ["DEFAULT_OPSET", "EXPORT_FORMATS", "OPSETS", "ExportReport", "export_model", "export_onnx", "export_torchscript"]
