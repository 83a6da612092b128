"""Running the files ``lossnet export`` writes: ONNX through onnxruntime, and TorchScript.

:func:`load_exported` wraps the file in a module that declares what lossnet's own networks
declare (``scale``, ``in_channels``, ``size_multiple``, ``min_size``, ``input_range``,
``output_range``), read from the file's metadata (:mod:`lossnet.card`). The tiler
(:func:`~lossnet.inference.apply_model`) and :func:`~lossnet.inference.apply_files` then use it
like a network loaded from a ``.safetensors`` checkpoint: the same reading, padding, tiling,
alpha, 16-bit, grey, ICC and error handling.

- **ONNX** runs in onnxruntime (the ``export`` extra), on the CPU, or on CUDA where onnxruntime
  has it and the device asks for it. It computes in the file's own dtype: ``precision`` does not
  apply (autocast has no effect on it).
- **TorchScript** runs in PyTorch: ``torch.jit.load`` builds the traced graph (TorchScript
  operators; no Python code from the file runs). A TorchScript file without
  lossnet's metadata is refused before it is loaded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from lossnet.card import EXPORT_EXTRA, Interface, ModelFile, file_format, read_model_file
from lossnet.checkpoint import ModelInfo
from lossnet.errors import CheckpointError, MissingExtraError
from lossnet.runtime import pick_device


class ExportedNetwork(nn.Module):
    """An exported network behind the interface lossnet's networks declare (see the module docstring).

    Attributes:
        interface: what the file says about its input and output.
        runner: ``'onnxruntime'`` or ``'torchscript'``.
    """

    def __init__(self, interface: Interface, runner: str) -> None:
        super().__init__()
        self.interface, self.runner = interface, runner
        self.scale, self.in_channels = interface.scale, interface.in_channels
        self.per_image_norm = interface.per_image_norm  # run_tiled then runs the whole image (no seams)
        self.size_multiple, self.min_size = interface.size_multiple, interface.min_size
        self.input_range, self.output_range = interface.input_range, interface.output_range
        self.eval()


class OnnxNetwork(ExportedNetwork):
    """An ONNX file run by an onnxruntime session; ``forward`` takes and returns float32 tensors.

    Shape:
        ``(B, in_channels, H, W)`` in ``input_range`` to ``(B, C_out, scale H, scale W)`` in ``output_range``,
        on the input's device (the session copies through host memory).
    """

    def __init__(self, session: object, interface: Interface) -> None:
        super().__init__(interface, "onnxruntime")
        self.session = session
        self.input_name = session.get_inputs()[0].name  # type: ignore[attr-defined]

    def forward(self, x: Tensor) -> Tensor:
        array = x.detach().to("cpu", torch.float32).numpy().astype(self.interface.dtype)
        y = self.session.run(None, {self.input_name: array})[0]  # type: ignore[attr-defined]
        return torch.from_numpy(y).to(device=x.device, dtype=torch.float32)

    def extra_repr(self) -> str:
        return f"{self.interface.describe()}, providers={self.session.get_providers()}"  # type: ignore[attr-defined]


class TorchScriptNetwork(ExportedNetwork):
    """A traced TorchScript module; its parameters decide the device, as for lossnet's networks."""

    def __init__(self, module: nn.Module, interface: Interface) -> None:
        super().__init__(interface, "torchscript")
        self.module = module.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x)


def load_exported(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, ModelInfo]:
    """Load an ONNX or TorchScript file written by ``lossnet export``, ready for the tiler.

    Args:
        path: the ``.onnx`` or TorchScript file.
        device: where a TorchScript network runs, and whether an ONNX session may use CUDA
            (``'cuda...'``, where onnxruntime has its CUDA provider); ``'auto'`` as in :func:`load_model`.

    Returns:
        ``(network, info)``: an :class:`ExportedNetwork` in eval mode, and what the card says.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: a file without lossnet's metadata, or one the runtime cannot read.
        MissingExtraError: an ONNX file, and onnxruntime (or onnx) is not installed.
    """
    path = Path(path)
    target = pick_device(device)
    found = read_model_file(path)
    interface = found.interface
    if interface is None:  # read_model_file gives exported files an interface; a checkpoint has none
        raise CheckpointError(f"{path} is a {found.format} checkpoint, not an exported file; use load_model")
    if found.format == "onnx":
        net: nn.Module = OnnxNetwork(_session(path, target), interface)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 warns that torch.jit is deprecated
                module = torch.jit.load(str(path), map_location=target)
        except RuntimeError as err:
            raise CheckpointError(f"{path} is not a TorchScript file PyTorch can load: {str(err).strip()[:200]}") from None
        net = TorchScriptNetwork(module, interface).requires_grad_(False)
    return net, exported_info(found)


def _session(path: Path, device: torch.device) -> object:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError(f"running {path} needs onnxruntime: {EXPORT_EXTRA}") from None
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as err:  # onnxruntime's own exception types (InvalidGraph, Fail, ...)
        raise CheckpointError(f"onnxruntime cannot load {path}: {str(err).strip()[:200]}") from None


def exported_info(found: ModelFile) -> ModelInfo:
    card, interface = found.card, found.interface
    network, trunk = card.get("network") or {}, card.get("trunk") or {}
    step = card.get("steps")
    return ModelInfo(
        name=str(network.get("name") or "exported network"),
        kwargs=dict(network.get("kwargs") or {}),
        task=interface.task if interface is not None else card.get("task"),
        scale=interface.scale if interface is not None else None,
        step=None if step is None else int(step),
        loss_weights=trunk.get("weights"),
        format=found.format,
    )


def is_exported(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is (by its suffix or content) an ONNX or TorchScript file rather than a checkpoint."""
    return file_format(path) != "safetensors"

