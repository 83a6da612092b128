"""Readers that turn weight files into torchvision-layout trunk state dicts (VGG, AlexNet, SqueezeNet 1.1).

Formats:

- PyTorch ``.pth``/``.pt``: read with ``torch.load(weights_only=True)``, so a
  malicious pickle cannot run code.
- ``.safetensors``: a plain tensor container, safe by construction.
- Keras ``.h5``: the Keras 2 layout (``*_notop.h5``: groups ``block1_conv1/...`` listed
  in the ``layer_names`` attribute) and the Keras 3 layout (``*.weights.h5``: groups
  ``.../layers/conv2d_N/vars/{0,1}``, HED's included). Kernels are HWIO and are
  transposed to PyTorch's OIHW. h5py only reads arrays: nothing is executed. Keras files
  are read for the VGGs only (their 3x3 convolutions are matched in order).

Every reader returns a dict ``{"features.{i}.weight": tensor, ...}`` that
:func:`load_into` checks key by key and shape by shape against the architecture.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch

from torch import nn

from lossnet.backbones.small_trunks import small_trunk_classifier_shapes
from lossnet.backbones.vgg import classifier_shapes, is_vgg, layer_info
from lossnet.errors import WeightsError

StateDict = dict[str, torch.Tensor]


def read_torch(path: Path) -> StateDict:
    """Read a ``.pth``/``.pt`` state dict without executing any code in it."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise WeightsError(
                f"could not read {path} as a PyTorch file (corrupt or not a checkpoint): {err}"
            ) from None
        raise WeightsError(
            f"refused to load {path}: it is not a plain tensor file and loading it could run code "
            f"(torch.load weights_only=True said: {str(err).splitlines()[0]}). "
            "Convert it to a state dict or .safetensors in a trusted environment."
        ) from None
    except Exception as err:  # torch's unpickler raises many types (IndexError, EOFError, ...) on garbage
        raise WeightsError(f"could not read {path} as a PyTorch file (corrupt or not a checkpoint): {err!r}") from None
    for key in ("state_dict", "model"):  # common wrappers around a state dict
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state dict (a dict of tensors); got {type(obj).__name__}")
    return _with_features_prefix(obj)


def read_safetensors(path: Path) -> StateDict:
    """Read a ``.safetensors`` state dict."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return _with_features_prefix(load_file(str(path)))
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"could not read {path} as safetensors: {err}") from None


def _with_features_prefix(sd: dict[str, torch.Tensor]) -> StateDict:
    # A bare ``features`` Sequential ("0.weight", ...) gets torchvision's prefix.
    if sd and all(re.match(r"\d+\.", k) for k in sd):
        return {f"features.{k}": v for k, v in sd.items()}
    return dict(sd)


def read_h5(path: Path, arch: str) -> StateDict:
    """Read the 3x3 convolutions of a Keras VGG ``.h5`` file (Keras 2 or Keras 3 layout).

    Only the 3x3 kernels are taken, in network order, so heads such as HED's 1x1
    side outputs are ignored. Their number and shapes must match ``arch``.
    """
    import h5py

    if not is_vgg(arch):
        raise WeightsError(
            f"{path}: Keras .h5 files are read for the VGGs only (their 3x3 convolutions, in order), not {arch}; "
            f"for {arch} use a torchvision .pth/.pt or .safetensors file, weights='imagenet', or weights=None"
        )
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" in root.attrs:
                pairs = _keras2_convs(root)
            else:
                pairs = _keras3_convs(root)
    except OSError as err:
        raise WeightsError(f"could not read {path} as HDF5: {err}") from None
    convs = [info for info in layer_info(arch) if info.kind == "conv"]
    if any(info.kind == "bn" for info in layer_info(arch)):
        raise WeightsError(f"{path} is a Keras file without batch norm; use arch={arch.removesuffix('_bn')!r}")
    if len(pairs) != len(convs):
        guess = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}.get(len(pairs))
        hint = f" It looks like {guess}: pass arch={guess!r}." if guess else ""
        raise WeightsError(f"{path} holds {len(pairs)} 3x3 convolutions but {arch} has {len(convs)}.{hint}")
    sd: StateDict = {}
    for info, (kernel, bias) in zip(convs, pairs):
        # Keras kernels are (kh, kw, in, out); PyTorch wants (out, in, kh, kw).
        sd[f"features.{info.index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        sd[f"features.{info.index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return sd


def _decode(names: object) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]  # type: ignore[union-attr]


def _keras2_convs(root: object) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for layer in _decode(root.attrs["layer_names"]):  # type: ignore[attr-defined]
        group = root[layer]  # type: ignore[index]
        weights = [np.asarray(group[name], dtype=np.float32) for name in _decode(group.attrs.get("weight_names", []))]
        if len(weights) == 2 and weights[0].ndim == 4 and weights[0].shape[:2] == (3, 3):
            pairs.append((weights[0], weights[1]))
    return pairs


def _natural_key(path: str) -> list[object]:
    # "conv2d_10" after "conv2d_9": Keras 3 numbers repeated layers, HDF5 sorts them as text.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _keras3_convs(root: object) -> list[tuple[np.ndarray, np.ndarray]]:
    import h5py

    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Group) and name.endswith("vars") and "0" in obj and "1" in obj:
            kernel = obj["0"]
            if kernel.ndim == 4 and kernel.shape[:2] == (3, 3):
                found[name] = (np.asarray(kernel, dtype=np.float32), np.asarray(obj["1"], dtype=np.float32))

    root.visititems(visit)  # type: ignore[attr-defined]
    return [found[name] for name in sorted(found, key=_natural_key)]


def head_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """The keys and shapes of torchvision's classifier head for ``arch``, which a checkpoint may carry.

    >>> head_shapes("vgg16")["classifier.6.weight"], head_shapes("squeezenet1_1")["classifier.1.weight"]
    ((1000, 4096), (1000, 512, 1, 1))
    """
    return classifier_shapes() if is_vgg(arch) else small_trunk_classifier_shapes(arch)


def load_into(model: nn.Module, sd: StateDict, source: str) -> None:
    """Load a torchvision-layout state dict into ``model`` with strict key and shape checks.

    ``model`` is a :class:`~lossnet.backbones.vgg.VGG` or a :class:`~lossnet.backbones.small_trunks.SmallTrunk`
    (its ``arch`` attribute says which). The ``features.*`` keys must match exactly. torchvision's
    classifier keys for that architecture are allowed (and checked), then dropped; anything else is
    an error.
    """
    arch = str(model.arch)
    expected = model.state_dict()
    head = head_shapes(arch)
    features = {k: v for k, v in sd.items() if k.startswith("features.")}
    rest = {k: v for k, v in sd.items() if not k.startswith("features.")}
    # Old torchvision batch-norm files predate num_batches_tracked; torch fills it in.
    required = {k for k in expected if not k.endswith("num_batches_tracked")}
    missing = sorted(required - set(features), key=_natural_key)
    unexpected = sorted((set(features) - set(expected)) | (set(rest) - set(head)), key=_natural_key)
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit {arch}: missing keys {missing[:6]}{' ...' if len(missing) > 6 else ''}, "
            f"unexpected keys {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}. "
            "Is it a checkpoint of another architecture (check arch=) or of another layout?"
        )
    shapes = {**{k: tuple(v.shape) for k, v in expected.items()}, **head}
    for key, value in sd.items():
        if tuple(value.shape) != shapes[key]:
            raise WeightsError(
                f"{source}: {key} has shape {tuple(value.shape)} but {arch} expects {shapes[key]}; check arch="
            )
    model.load_state_dict(features, strict=True)
