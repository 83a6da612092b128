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
every torch build. Install them without their dependencies::

    pip install --no-deps lpips==0.1.4 DISTS_pytorch==0.1

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

import importlib.metadata
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from lossnet.errors import WeightsError, WeightsUnavailableError
from lossnet.functional.dists import DISTS_CHANNELS
from lossnet.validation import check_choice

#: Channels of the layers each LPIPS trunk is calibrated on, in order (``lin0``, ``lin1``, ...).
LPIPS_CHANNELS: dict[str, tuple[int, ...]] = {
    "vgg": (64, 128, 256, 512, 512),
    "alex": (64, 192, 384, 256, 256),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}
#: Released versions of the LPIPS heads (v0.1 is the one the lpips project recommends).
LPIPS_VERSIONS = ("0.0", "0.1")

_LPIPS_PACKAGE = ("lpips", "0.1.4")
_DISTS_PACKAGE = ("DISTS_pytorch", "0.1")


def lpips_heads_path(net: str = "vgg", version: str = "0.1") -> Path:
    """The installed ``lpips`` wheel's calibration file for ``net``, found without importing ``lpips``.

    Raises:
        WeightsUnavailableError: the ``lpips`` distribution is not installed, or lacks the file.
    """
    check_choice(net, tuple(LPIPS_CHANNELS), "net")
    check_choice(version, LPIPS_VERSIONS, "version")
    return _package_file(*_LPIPS_PACKAGE, f"lpips/weights/v{version}/{net}.pth", f"the LPIPS-{net} heads")


def dists_weights_path() -> Path:
    """The installed ``DISTS_pytorch`` wheel's alpha/beta file, found without importing the package.

    Raises:
        WeightsUnavailableError: ``DISTS_pytorch`` is not installed, or lacks the file.
    """
    return _package_file(*_DISTS_PACKAGE, "DISTS_pytorch/weights.pt", "the DISTS alpha/beta weights")


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


def _package_file(distribution: str, version: str, relative: str, what: str) -> Path:
    how = f"install it without its dependencies: pip install --no-deps {distribution}=={version}, or pass the file's path"
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsUnavailableError(f"{what} ship in the {distribution} package, which is not installed; {how}") from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{what}: {distribution} {dist.version} is installed but has no {relative} (looked in {path}); {how}"
        )
    return path


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
