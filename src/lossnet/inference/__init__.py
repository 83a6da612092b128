"""Applying trained networks: load them from checkpoints, run them on images of any size, write files.

- :mod:`~lossnet.inference.loading`: :func:`load_model` rebuilds the network a checkpoint
  names and returns it frozen, in eval mode; :func:`read_model_info` says what it was
  trained for (task, scale, step).
- :mod:`~lossnet.inference.tiling`: :func:`apply_model` runs a network on an image tensor of
  any size: padded to the sizes the network declares, whole or tile by tile, the overlaps
  cross-faded.
- :mod:`~lossnet.inference.exported`: :func:`load_exported` runs the ONNX and TorchScript files
  ``lossnet export`` writes, behind the same interface (``load_model`` takes them too).
- :mod:`~lossnet.inference.files`: :func:`apply_files` does it for files and folders, keeping
  transparency, bit depth and grey, with atomic writes and a bad file reported without
  stopping the others.
"""

from lossnet.checkpoint import ModelInfo
from lossnet.inference.exported import ExportedNetwork, load_exported
from lossnet.inference.files import BIT_DEPTHS, FORMATS, ApplySummary, apply_files
from lossnet.inference.loading import load_model, load_model_with_info, read_model_info
from lossnet.inference.tiling import apply_model, size_rule

__all__ = [
    "BIT_DEPTHS",
    "FORMATS",
    "ApplySummary",
    "ExportedNetwork",
    "ModelInfo",
    "apply_files",
    "apply_model",
    "load_exported",
    "load_model",
    "load_model_with_info",
    "read_model_info",
    "size_rule",
]
