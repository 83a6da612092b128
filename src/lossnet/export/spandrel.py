"""The file upscaler apps load: a Compact network's weights as flat-key ``.safetensors``.

chaiNNer, ComfyUI and InvokeAI load super-resolution networks through spandrel, which recognises
an architecture by its state-dict keys and reads its sizes from the shapes. A lossnet checkpoint
keeps the network's keys under ``model/`` beside the optimiser's state, so no app recognises it;
:func:`export_spandrel` writes the bare weights with the published names (``body.0.weight``, ...),
which spandrel detects as Real-ESRGAN Compact (by ``body.0.weight`` and the PReLU's ``body.1.weight``).

Only :class:`~lossnet.models.Compact` with PReLU qualifies: no app detects lossnet's own networks
(``TransformerNet``, ``SuperResNet``, ``UNet``), nor a Compact with ReLU or LeakyReLU (they have no
``body.1.weight``); those are refused in one line that points to ONNX.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from lossnet.atomic import atomic_writer
from lossnet.errors import InputError, InputTypeError
from lossnet.models.compact import Compact, compact_hyperparameters


def export_spandrel(model: nn.Module, path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None) -> Path:
    """Write a Compact network's weights as a flat-key ``.safetensors`` that upscaler apps load.

    The keys and shapes are the published SRVGGNetCompact's (``body.<n>.weight``/``.bias``, no
    prefix), float32, contiguous; the file's string metadata gets ``architecture``, ``scale``,
    ``num_feat``, ``num_conv`` and whatever ``metadata`` adds (a model card, say). Apps ignore the
    metadata: they read the scale and sizes from the shapes, as
    :func:`~lossnet.models.compact_hyperparameters` does. Written atomically.

    Args:
        model: a :class:`~lossnet.models.Compact` with ``act_type='prelu'`` (as
            :func:`~lossnet.inference.load_model` returns it from a ``lossnet train superres --model Compact`` run).
        path: the ``.safetensors`` file to write (its folder is created).
        metadata: extra string metadata to store.

    Returns:
        the path written.

    Raises:
        InputError: a network that no app detects (anything but a PReLU Compact), or a path that does
            not end in ``.safetensors``.
        InputTypeError: ``model`` is not a torch module, or metadata that is not strings.

    Example:
        >>> import tempfile, pathlib
        >>> from safetensors.torch import load_file
        >>> from lossnet.models import Compact, compact_hyperparameters
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "x2.safetensors"
        >>> p = export_spandrel(Compact(scale=2, num_feat=8, num_conv=2), target)
        >>> weights = load_file(p)
        >>> sorted(weights)[:3], compact_hyperparameters(weights)["scale"]
        (['body.0.bias', 'body.0.weight', 'body.1.weight'], 2)
    """
    from safetensors.torch import save

    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be a torch.nn.Module (see lossnet.load_model); got {type(model).__name__}")
    if not isinstance(model, Compact) or model.act_type != "prelu":
        what = type(model).__name__ if not isinstance(model, Compact) else f"Compact with act_type={model.act_type!r}"
        raise InputError(
            f"no upscaler app detects {what} by its keys (spandrel knows Compact with PReLU only): "
            "export it with --format onnx (lossnet.export_onnx) instead"
        )
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(
            f"the spandrel format is a .safetensors file; got {path.name!r}: name it {path.stem}.safetensors"
        )
    extra = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise InputTypeError("metadata must map strings to strings (safetensors metadata is text)")
    weights = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    sizes = compact_hyperparameters(weights)  # what an app will read back; refuses anything else
    meta = {
        **extra,
        "architecture": "Compact (Real-ESRGAN SRVGGNetCompact)",
        **{k: str(sizes[k]) for k in ("scale", "num_feat", "num_conv")},
    }
    data = save(weights, metadata=meta)
    with atomic_writer(path) as f:
        f.write(data)
    return path
