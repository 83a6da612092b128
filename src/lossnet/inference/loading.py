"""Loading a trained network from a checkpoint, ready for inference.

:func:`load_model` rebuilds the network a checkpoint names (``meta["model"]``), loads its
weights and returns it frozen, in eval mode; :func:`read_model_info` says what it was
trained for (task, scale, step) without loading the weights. Both read the metadata through
the one schema of :mod:`lossnet.checkpoint` (:func:`~lossnet.checkpoint.model_info`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from lossnet.card import read_model_file
from lossnet.checkpoint import ModelInfo, load_checkpoint, model_info
from lossnet.errors import CheckpointError, LossnetError
from lossnet.inference.exported import exported_info, is_exported, load_exported
from lossnet.models import build_model
from lossnet.runtime import pick_device


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read what a checkpoint's network is and was trained for, without loading its weights.

    Where the checkpoint leaves the scale to the network's constructor default, the network
    is built on the ``meta`` device (no memory, no weights) to read it.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, corrupt, not a lossnet checkpoint, or holds no network.

    Example:
        >>> import tempfile, pathlib
        >>> from lossnet.models import model_spec
        >>> from lossnet.checkpoint import model_meta, save_checkpoint
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "sr.safetensors"
        >>> meta = model_meta(model_spec("SuperResNet", scale=2, channels=4, num_residual=1),
        ...                   task="superres", scale=2, step=10)
        >>> _ = save_checkpoint(p, build_model(meta["model"]).state_dict(), meta)
        >>> info = read_model_info(p)
        >>> info.task, info.scale, str(info)
        ('superres', 2, 'SuperResNet x2 (superres, step 10)')
    """
    if is_exported(path):
        return exported_info(read_model_file(path))
    path = Path(path)
    info = model_info(load_checkpoint(path).meta, path)
    if info.scale is not None:
        return info
    with torch.device("meta"):
        model = _build(info, path)
    return dataclasses.replace(info, scale=int(getattr(model, "scale", 1)))


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """Load a trained network from a checkpoint written by the trainer, ready for inference.

    The checkpoint names its network (``meta["model"]``, a spec for
    :func:`lossnet.models.build_model`), so nothing is unpickled and no code comes from
    the file. The network is returned in eval mode with ``requires_grad`` off.

    Args:
        path: a ``.safetensors`` checkpoint written by ``lossnet train`` (or
            :func:`~lossnet.checkpoint.save_checkpoint` with a ``"model"`` spec in ``meta``), or an
            ONNX or TorchScript file written by ``lossnet export`` (:mod:`lossnet.inference.exported`).
        device: ``'cpu'`` (default), ``'cuda'``, ``'cuda:1'``, ... or ``'auto'`` (CUDA when available).

    Returns:
        the network: it maps ``(B, C, H, W)`` images in its ``input_range`` (``[0, 1]`` by
        default) to its output; :func:`~lossnet.inference.apply_model` handles any image size.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated or corrupt, not a lossnet checkpoint, holds no
            network, or its weights do not fit the network it names.
        InputError: an unknown device, or CUDA asked for where there is none.

    Example:
        >>> import tempfile, pathlib
        >>> from lossnet.models import model_spec
        >>> from lossnet.checkpoint import model_meta, save_checkpoint
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "style.safetensors"
        >>> net = build_model(model_spec("TransformerNet", channels=4, num_residual=1))
        >>> _ = save_checkpoint(p, net.state_dict(), model_meta(model_spec("TransformerNet", channels=4,
        ...     num_residual=1), task="style", step=1))
        >>> model = load_model(p)
        >>> model.training, any(q.requires_grad for q in model.parameters())
        (False, False)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> torch.equal(model(x), net.eval()(x))
        True
    """
    return load_model_with_info(path, device)[0]


def load_model_with_info(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelInfo]:
    """:func:`load_model` and :func:`read_model_info` from one read of the file.

    Returns:
        ``(network, info)``; ``info.scale`` is the network's.

    Raises:
        as :func:`load_model`; also CheckpointError when the metadata's scale is not the network's.
    """
    if is_exported(path):
        return load_exported(path, device)
    target = pick_device(device)
    path = Path(path)
    checkpoint = load_checkpoint(path)
    info = model_info(checkpoint.meta, path)
    model = _build(info, path)
    try:
        model.load_state_dict(checkpoint.model_state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:3]
        raise CheckpointError(
            f"{path}: the weights do not fit the network the checkpoint names ({info.name} {info.kwargs}): "
            f"{' '.join(line.strip() for line in first)}. The file may have been edited or written by another "
            "lossnet version; re-export it from the training run."
        ) from None
    scale = int(getattr(model, "scale", 1))
    if info.scale is None:
        info = dataclasses.replace(info, scale=scale)
    elif scale != info.scale:
        raise CheckpointError(
            f"{path} says scale {info.scale} but its network upscales by {scale}; "
            "the metadata is inconsistent, re-export the checkpoint from the training run"
        )
    model.eval().requires_grad_(False)
    return model.to(target), info


def _build(info: ModelInfo, path: Path) -> nn.Module:
    try:
        return build_model(info.spec)
    except LossnetError as err:
        raise CheckpointError(f"{path} names a network this lossnet cannot build: {err}") from None
