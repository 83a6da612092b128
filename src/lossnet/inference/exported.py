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

A file of a style network takes its style as a second input (:attr:`~lossnet.card.Interface.style_input`),
and the wrapper feeds it, checked, as the PyTorch network takes it:

- ``style_multi`` (``'mix'``): ``net(x, style)`` with an index or a mix, as
  :class:`~lossnet.models.MultiStyleNet` takes it (an index is sent as its one-hot mix); the wrapper
  declares ``num_styles``, so :class:`~lossnet.models.StyleChoice` and ``apply --style`` /
  ``--style-mix`` fix a style on it as on the network;
- ``style_any`` (``'image'``): ``net(content, style, alpha=1.0)``; :class:`WithStyleImage` binds it to
  one style image and alpha (what ``apply --style-image --alpha`` runs).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from lossnet.card import EXPORT_EXTRA, Interface, ModelFile, file_format, read_model_file
from lossnet.checkpoint import ModelInfo
from lossnet.errors import CheckpointError, InputError, MissingExtraError
from lossnet.functional.adain import check_alpha
from lossnet.models.interface import adopt_interface
from lossnet.models.multi_style_net import style_weights
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
        if interface.style_input == "mix":
            self.num_styles = interface.num_styles  # what StyleChoice and apply's --style read
        self.eval()

    def forward(self, x: Tensor, style: int | Tensor | None = None, alpha: float | Tensor = 1.0) -> Tensor:
        """The file's output for ``x`` ``(B, in_channels, H, W)``, and ``style`` (and ``alpha``) where it takes them.

        ``style``: for a ``'mix'`` file an index, indices ``(B,)`` or a mix ``(N,)`` / ``(B or 1, N)``, as
        :class:`~lossnet.models.MultiStyleNet` takes it; for an ``'image'`` file a style image
        ``(B or 1, 3, H', W')`` in [0, 1], H' and W' at least ``min_size``, with ``alpha`` in [0, 1] (a number,
        or a tensor ``(B or 1,)``). A file of one input takes neither.
        """
        return self._run(self._inputs(x, style, alpha))

    def _run(self, inputs: tuple[Tensor, ...]) -> Tensor:
        raise NotImplementedError

    def _inputs(self, x: Tensor, style: int | Tensor | None, alpha: float | Tensor) -> tuple[Tensor, ...]:
        """The graph's inputs, checked (the graph itself checks nothing)."""
        kind, batch = self.interface.style_input, x.shape[0]
        if kind == "mix":
            index, mix = style_weights(style, self.interface.num_styles, batch)
            if index is not None:
                mix = torch.nn.functional.one_hot(index, self.interface.num_styles)
            return x, mix.to(device=x.device, dtype=torch.float32)  # type: ignore[union-attr]
        if kind == "image":
            shape = tuple(style.shape) if isinstance(style, Tensor) else type(style).__name__
            if (
                not isinstance(style, Tensor) or style.ndim != 4 or style.shape[1] != 3
                or style.shape[0] not in (1, batch) or min(style.shape[-2:]) < self.min_size
            ):  # fmt: skip
                raise InputError(
                    f"this style_any file takes a style image (B or 1, 3, H', W') with B = {batch} and H', W' at least "
                    f"{self.min_size}; got {shape}"
                )
            if isinstance(alpha, Tensor):
                if alpha.ndim != 1 or alpha.shape[0] not in (1, batch) or bool(((alpha < 0) | (alpha > 1)).any()):
                    raise InputError(f"alpha must be in [0, 1], a number or a tensor (B or 1,); got {alpha.tolist()}")
                a = alpha.float()
            else:
                a = torch.tensor([check_alpha(alpha)])
            return x, style.to(device=x.device, dtype=torch.float32), a.to(x.device)
        if style is not None:
            raise InputError("this exported network takes one image and no style")
        return (x,)


class OnnxNetwork(ExportedNetwork):
    """An ONNX file run by an onnxruntime session; ``forward`` takes and returns float32 tensors.

    Shape:
        ``(B, in_channels, H, W)`` in ``input_range`` to ``(B, C_out, scale H, scale W)`` in ``output_range``,
        on the input's device (the session copies through host memory).
    """

    def __init__(self, session: object, interface: Interface) -> None:
        super().__init__(interface, "onnxruntime")
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]  # type: ignore[attr-defined]

    def _run(self, inputs: tuple[Tensor, ...]) -> Tensor:
        feed = {n: t.detach().to("cpu", torch.float32).numpy().astype(self.interface.dtype)
                for n, t in zip(self.input_names, inputs, strict=True)}  # fmt: skip
        y = self.session.run(None, feed)[0]  # type: ignore[attr-defined]
        return torch.from_numpy(y).to(device=inputs[0].device, dtype=torch.float32)

    def extra_repr(self) -> str:
        return f"{self.interface.describe()}, providers={self.session.get_providers()}"  # type: ignore[attr-defined]


class TorchScriptNetwork(ExportedNetwork):
    """A traced TorchScript module; its parameters decide the device, as for lossnet's networks."""

    def __init__(self, module: nn.Module, interface: Interface) -> None:
        super().__init__(interface, "torchscript")
        self.module = module.eval()

    def _run(self, inputs: tuple[Tensor, ...]) -> Tensor:
        return self.module(*inputs)


class WithStyleImage(nn.Module):
    """An exported ``style_any`` file bound to one style image and ``alpha``: ``content -> stylised``.

    It declares the file's size rule, channels and ranges, and ``per_image_norm`` (AdaIN normalises by
    the whole content's statistics, so the tiler runs the image whole), so that
    :func:`~lossnet.inference.apply_files` runs it as any one-input network.

    Args:
        net: an :class:`ExportedNetwork` whose interface's ``style_input`` is ``'image'``.
        style: the style image ``(1, 3, H', W')`` in [0, 1].
        alpha: the content-style trade-off in [0, 1] (1: full style).
    """

    def __init__(self, net: ExportedNetwork, style: Tensor, alpha: float = 1.0) -> None:
        super().__init__()
        if net.interface.style_input != "image":
            raise InputError("a style image goes with an exported style_any file; this file takes none")
        self.net, self.alpha = net, check_alpha(alpha)
        net._inputs(torch.zeros(1, net.in_channels, net.min_size, net.min_size), style, self.alpha)  # checked now
        self.style = style
        adopt_interface(self, net)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, self.style.to(x.device), self.alpha)


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
    styles = card.get("styles")
    return ModelInfo(
        name=str(network.get("name") or "exported network"),
        kwargs=dict(network.get("kwargs") or {}),
        task=interface.task if interface is not None else card.get("task"),
        scale=interface.scale if interface is not None else None,
        step=None if step is None else int(step),
        loss_weights=trunk.get("weights"),
        format=found.format,
        styles=tuple(str(s) for s in styles) if isinstance(styles, list) else None,
    )


def is_exported(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is (by its suffix or content) an ONNX or TorchScript file rather than a checkpoint."""
    return file_format(path) != "safetensors"

