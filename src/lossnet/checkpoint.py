"""Checkpoints as one safetensors file: weights, metadata and the full training state.

Everything a resume needs (model weights, optimizer and scheduler state, RNG states,
config, step) goes into a single ``.safetensors`` file:

- tensors are stored as safetensors tensors: the model's under ``model/<key>``, the rest
  under ``state/<n>``;
- everything else (config, step, optimizer hyper-parameters, ...) is JSON in the file's
  metadata, with each tensor replaced by a reference to its key.

So a checkpoint never holds a pickle and loading one never executes code, and the
file is written atomically (temporary file, then rename): a kill at any moment
leaves the previous checkpoint intact. A truncated or foreign file is refused with a
:class:`~lossnet.errors.CheckpointError`.

**The metadata schema** of a trained network's checkpoint is written by :func:`model_meta`
(the trainer) and read by :func:`model_info` (inference, evaluation, explore), and by
nothing else:

- ``model``: the network's spec, ``{"name": <class name>, "kwargs": {...}}``
  (:func:`lossnet.models.build_model` rebuilds it);
- ``task``: ``'superres'``, ``'style'``, ``'colorize'``, ``'restore'`` or absent;
- ``scale``: the upscaling factor of a super-resolution network, else ``None`` or absent;
- ``step``: the training step the weights come from;
- ``config``: the training config (``TrainConfig.to_dict()``);
- ``loss_weights``: the loss network's weight id during training (informational);
- ``card``: the model card, what a person or an app reads about the network (:func:`model_card`
  builds it; ``lossnet export`` copies it into ONNX and TorchScript files, and ``lossnet info``
  prints it from all three). Its keys: ``task``; ``network`` (``name``, ``kwargs``, ``scale``,
  ``in_channels`` and the size rule ``size_multiple`` and ``min_size``); ``loss`` (``recipe``, and
  ``weights``: each term's resolved weight); ``trunk`` (``arch`` and its ``weights`` id); ``steps``;
  ``data`` (the training folder's name, or ``"embedded default"``); ``validation`` (the last
  scores); ``lossnet_version``; and, for a network of several styles only, ``styles`` (the style
  images' names, in the order of the style indices). What the trainer did not record is ``None``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossnet._version import __version__
from lossnet.atomic import atomic_writer
from lossnet.errors import CheckpointError

FORMAT = "lossnet-checkpoint-1"


@dataclass(frozen=True)
class ModelInfo:
    """What a checkpoint says about its network (see the schema in the module docstring).

    Attributes:
        name: the network class, e.g. ``'SuperResNet'``.
        kwargs: its constructor arguments.
        task: ``'superres'``, ``'style'``, ``'colorize'``, ``'restore'`` or ``None`` if unrecorded.
        scale: how many times larger the output is than the input, or ``None`` where neither the
            metadata nor the spec says (the network's constructor default then decides:
            :func:`lossnet.inference.read_model_info` fills it in).
        step: the training step the weights come from, or ``None``.
        loss_weights: the loss network's weights during training (informational), or ``None``.
        format: the file's format: ``'safetensors'`` (a checkpoint), ``'onnx'`` or ``'torchscript'``
            (written by ``lossnet export``; :mod:`lossnet.card` reads what they say).
        styles: a multi-style network's style images, by index, or ``None``.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    scale: int | None = 1
    step: int | None = None
    loss_weights: str | None = None
    format: str = "safetensors"
    styles: tuple[str, ...] | None = None

    @property
    def spec(self) -> dict[str, Any]:
        """The spec :func:`lossnet.models.build_model` takes."""
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    def __str__(self) -> str:
        what = self.name + (f" x{self.scale}" if self.scale not in (None, 1) else "")
        fmt = None if self.format == "safetensors" else self.format
        details = [d for d in (self.task, None if self.step is None else f"step {self.step}", fmt) if d]
        return what + (f" ({', '.join(details)})" if details else "")


def model_meta(
    spec: Mapping[str, Any],
    *,
    task: str | None = None,
    scale: int | None = None,
    step: int | None = None,
    config: Mapping[str, Any] | None = None,
    loss_weights: str | None = None,
    network: Mapping[str, int] | None = None,
    loss: Mapping[str, Any] | None = None,
    validation: Mapping[str, float] | None = None,
    styles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The metadata of a trained network's checkpoint, for :func:`save_checkpoint`, with its model card.

    Args:
        spec: the network, ``{"name": ..., "kwargs": {...}}`` (:func:`lossnet.models.model_spec`).
        task: the task it was trained for.
        scale: the upscaling factor of a super-resolution network; ``None`` otherwise.
        step: the training step.
        config: the training config as a JSON-compatible dict.
        loss_weights: the loss network's weight id.
        network: what the built network declares: ``scale``, ``in_channels``, ``size_multiple``, ``min_size``.
        loss: the loss as run: ``recipe`` (its name), ``weights`` (``{term: resolved weight}``) and
            ``arch`` (the trunk, ``None`` for a pixel-only loss).
        validation: the last validation scores.
        styles: a multi-style network's style images, by index (they go into the card).

    Example:
        >>> meta = model_meta({"name": "SuperResNet", "kwargs": {"scale": 2}}, task="superres", scale=2, step=10)
        >>> info = model_info(meta, "sr.safetensors")
        >>> info.task, info.scale, str(info)
        ('superres', 2, 'SuperResNet x2 (superres, step 10)')
    """
    meta = {
        "model": dict(spec),
        "task": task,
        "scale": scale,
        "step": step,
        "config": None if config is None else dict(config),
        "loss_weights": loss_weights,
    }
    card = _card(meta, network or {}, loss or {}, validation)
    return {**meta, "card": card if styles is None else {**card, "styles": [str(s) for s in styles]}}


def model_card(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The model card of a checkpoint's metadata (see the schema in the module docstring).

    A checkpoint written before cards existed gets the card its metadata allows (the network's
    declared size rule, the resolved loss weights and the validation scores are then ``None``).

    Example:
        >>> meta = model_meta({"name": "UNet", "kwargs": {"depth": 2}}, task="restore", step=5,
        ...                   config={"data": "photos/train", "loss": "perceptual"}, loss_weights="hed",
        ...                   network={"scale": 1, "in_channels": 3, "size_multiple": 4, "min_size": 4},
        ...                   loss={"recipe": "perceptual", "weights": {"pixel": 1.0}, "arch": "vgg16"},
        ...                   validation={"psnr": 30.5})
        >>> card = model_card(meta)
        >>> card["network"]["size_multiple"], card["data"], card["trunk"], card["validation"]
        (4, 'train', {'arch': 'vgg16', 'weights': 'hed'}, {'psnr': 30.5})
        >>> model_card({"model": {"name": "UNet"}, "step": 1, "config": {"data": None}})["data"]
        'embedded default'
    """
    card = meta.get("card")
    return dict(card) if isinstance(card, Mapping) else _card(meta, {}, {}, None)


def _card(meta: Mapping[str, Any], network: Mapping[str, int], loss: Mapping[str, Any], val: Any) -> dict[str, Any]:
    """Build the card from the metadata and what only the trainer knows (the built network, the loss, the scores)."""
    spec, config = meta.get("model") or {}, meta.get("config") or {}
    data = config.get("data") if "data" in config else False
    weights = loss.get("weights")
    return {
        "task": meta.get("task"),
        "network": {
            "name": spec.get("name"),
            "kwargs": dict(spec.get("kwargs") or {}),
            **{k: network.get(k) for k in ("scale", "in_channels", "size_multiple", "min_size")},
            **({} if "scale" in network else {"scale": meta.get("scale")}),
        },
        "loss": {"recipe": loss.get("recipe", config.get("loss")), "weights": None if weights is None else dict(weights)},
        "trunk": {"arch": loss.get("arch"), "weights": meta.get("loss_weights")},
        "steps": meta.get("step"),
        "data": None if data is False else "embedded default" if data is None else Path(str(data)).name,
        "validation": None if val is None else {k: float(v) for k, v in val.items()},
        "lossnet_version": meta.get("lossnet_version", __version__),
    }


def model_info(meta: Mapping[str, Any], path: str | os.PathLike[str]) -> ModelInfo:
    """Read what a checkpoint's metadata says about its network (:func:`model_meta` wrote it).

    Args:
        meta: :attr:`Checkpoint.meta`.
        path: the checkpoint's file, named in messages.

    Raises:
        CheckpointError: the metadata names no network.
    """
    spec = meta.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CheckpointError(
            f"{path} is a lossnet checkpoint but holds no network: expected meta['model'] = "
            f"{{'name': ..., 'kwargs': {{...}}}}, got {spec!r} (meta keys: {sorted(meta)}). "
            "Apply a checkpoint written by `lossnet train`."
        )
    name, kwargs = spec["name"], dict(spec.get("kwargs") or {})
    scale = meta.get("scale") or kwargs.get("scale")  # a spec may leave scale to the constructor's default
    step, weights = meta.get("step"), meta.get("loss_weights")
    styles = (meta.get("card") or {}).get("styles") if isinstance(meta.get("card"), Mapping) else None
    return ModelInfo(
        name=name,
        kwargs=kwargs,
        task=meta.get("task"),
        scale=None if scale is None else int(scale),
        step=None if step is None else int(step),
        loss_weights=None if weights is None else str(weights),
        styles=None if not isinstance(styles, list) else tuple(str(s) for s in styles),
    )


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        model_state: the model's ``state_dict``.
        meta: JSON-compatible metadata (config, step, ...), plus ``format`` and ``lossnet_version``.
        train_state: the nested training state as saved (optimizer, scheduler, RNG, ...), or ``None``.
    """

    model_state: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    train_state: Any = None


def save_checkpoint(
    path: str | os.PathLike[str],
    model_state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any] | None = None,
    train_state: Any = None,
) -> Path:
    """Write a checkpoint atomically.

    Args:
        path: the ``.safetensors`` file to write (replaced in one rename if it exists).
        model_state: the model's ``state_dict()``.
        meta: JSON-compatible metadata: the config, the step, the loss network's weight id, ...
        train_state: any nesting of dicts, lists, tuples, numbers, strings, ``None`` and tensors,
            e.g. ``{"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rng_state()}``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "ckpt.safetensors"
        >>> _ = save_checkpoint(p, {"w": torch.ones(2)}, {"step": 3}, {"lr": 0.1, "m": torch.zeros(1)})
        >>> c = load_checkpoint(p)
        >>> c.meta["step"], c.train_state["lr"], c.model_state["w"].tolist()
        (3, 0.1, [1.0, 1.0])
    """
    from safetensors.torch import save

    tensors = {f"model/{k}": _plain(v) for k, v in model_state.items()}
    state_tree = _encode(train_state, tensors)
    header = {"format": FORMAT, "lossnet_version": __version__, **dict(meta or {})}
    metadata = {"meta": json.dumps(header), "train_state": json.dumps(state_tree)}
    data = save(tensors, metadata=metadata)
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (CPU tensors).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, corrupt, or not a lossnet checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    data = path.read_bytes()
    try:
        tensors = load(data)
        metadata = _metadata(data)
        meta = json.loads(metadata["meta"])
        tree = json.loads(metadata["train_state"])
    except (SafetensorError, KeyError, ValueError, json.JSONDecodeError) as err:
        if (kind := _pickle_kind(data)) is not None:
            raise CheckpointError(
                f"{path} is a PyTorch pickle ({kind}), not a lossnet model: lossnet models are .safetensors "
                "checkpoints written by `lossnet train`, and lossnet never unpickles files (a pickle can run code). "
                "Train with lossnet, or convert a state dict you trust in Python with lossnet.checkpoint."
                "save_checkpoint(path, state_dict, {'model': lossnet.models.model_spec(...)})"
            ) from None
        raise CheckpointError(
            f"{path} is truncated, corrupt or not a lossnet checkpoint ({err}); use an earlier checkpoint or retrain"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {meta.get('format')!r}; this lossnet reads {FORMAT!r}")
    model = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
    return Checkpoint(model, meta, _decode(tree, tensors))


def _pickle_kind(data: bytes) -> str | None:
    """What kind of PyTorch pickle the bytes start with (by magic bytes; nothing is unpickled), or ``None``."""
    if data[:4] == b"PK\x03\x04":
        return "a zip archive, as torch.save writes"
    if len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5:  # the PROTO opcode of pickle protocols 2-5
        return "a legacy pickle, as torch.save wrote before PyTorch 1.6"
    return None


def _metadata(data: bytes) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header.
    n = int.from_bytes(data[:8], "little")
    if len(data) < 8 + n:
        raise ValueError("header runs past the end of the file")
    return json.loads(data[8 : 8 + n]).get("__metadata__", {})


def _plain(t: torch.Tensor) -> torch.Tensor:
    # safetensors wants dense, contiguous CPU tensors that share no memory with each other.
    return t.detach().to("cpu").contiguous().clone()


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors by ``{"__tensor__": key}`` (stored in ``tensors``); keep tuples and non-string keys."""
    if isinstance(obj, torch.Tensor):
        key = f"state/{len(tensors)}"  # unique: the dict grows by one with every tensor
        tensors[key] = _plain(obj)
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors) for k, v in obj.items()}
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": _encode(torch.from_numpy(obj.copy()), tensors)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot store a {type(obj).__name__} in a checkpoint's training state: {obj!r}")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
    if "__ndarray__" in obj:
        return _decode(obj["__ndarray__"], tensors).numpy()
    return {k: _decode(v, tensors) for k, v in obj.items()}


def rng_state(modules: torch.nn.Module | None = None) -> dict[str, Any]:
    """The states of every random generator a training run draws from (torch, CUDA, numpy, Python), and, under
    ``"modules"``, those of the submodules of ``modules`` that keep their own (a ``rng_state()`` method, such as the
    sliced-Wasserstein terms' directions), by submodule name."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if modules is not None:
        state["modules"] = {name: m.rng_state() for name, m in modules.named_modules() if hasattr(m, "rng_state")}
    return state


def set_rng_state(state: Mapping[str, Any], modules: torch.nn.Module | None = None) -> None:
    """Restore generator states captured by :func:`rng_state` (after a checkpoint round trip too); a submodule of
    ``modules`` whose state was not captured (a checkpoint from before lossnet kept them) keeps its own."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(_as_numpy_state(state["numpy"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    kept = state.get("modules", {})
    for name, m in modules.named_modules() if modules is not None else ():
        if name in kept and hasattr(m, "set_rng_state"):
            m.set_rng_state(kept[name])


def _as_numpy_state(s: Any) -> tuple[Any, ...]:
    name, keys, pos, has_gauss, cached = s
    return (name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached))
