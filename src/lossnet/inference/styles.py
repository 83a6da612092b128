"""Applying an arbitrary-style network (``style_any``): the network bound to its style images.

An :class:`~lossnet.models.AdaINNet` takes the style at inference, so before it can run on files it
is bound to one style image (or two, with a mask for the paper's spatial control) and the
content-style trade-off ``alpha``: :func:`load_styled_model` returns that
:class:`~lossnet.models.StyledAdaIN`, a one-input network that :func:`~lossnet.inference.apply_files`
and :func:`~lossnet.inference.apply_model` run like any other. Without a mask, large images are
tiled and every tile normalised by the whole image's statistics at the encoder layer; a mask is
stretched to each image, so with one the image runs whole (``tile=None``).

An exported ``style_any`` file (``lossnet export``: its style image and alpha are graph inputs) is bound
the same way, to one style image and ``alpha`` (:class:`~lossnet.inference.exported.WithStyleImage`),
and runs whole: the mask needs the ``.safetensors`` model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from lossnet.card import read_model_file
from lossnet.checkpoint import ModelInfo, load_checkpoint, model_info
from lossnet.data.io import load_image
from lossnet.data.tasks import luminance
from lossnet.errors import CheckpointError, InputError
from lossnet.inference.exported import ExportedNetwork, WithStyleImage, is_exported
from lossnet.inference.loading import load_model_with_info
from lossnet.models.adain import AdaINNet, StyledAdaIN
from lossnet.models.registry import MODELS
from lossnet.runtime import pick_device

#: The longer side style images are resized to before their statistics are taken (the paper's 512).
STYLE_SIZE = 512


def takes_style_images(path: str | os.PathLike[str]) -> bool:
    """Whether a file holds a network that takes its style image at inference (an :class:`AdaINNet`, of
    ``style_any``, or its export), from its metadata.
    """
    if is_exported(path):
        interface = read_model_file(path).interface
        return interface is not None and interface.style_input == "image"
    network = MODELS.get(model_info(load_checkpoint(path).meta, path).name)
    return isinstance(network, type) and issubclass(network, AdaINNet)


def load_styled_model(
    path: str | os.PathLike[str],
    style_images: Sequence[str | os.PathLike[str]],
    *,
    alpha: float = 1.0,
    mask: str | os.PathLike[str] | None = None,
    style_size: int | None = STYLE_SIZE,
    device: str = "cpu",
) -> tuple[nn.Module, ModelInfo]:
    """A ``style_any`` network bound to its style images, ready for :func:`~lossnet.inference.apply_files`.

    Args:
        path: a checkpoint written by ``lossnet train style_any``, or its ONNX or TorchScript export (one
            style image, no mask; bound by :class:`~lossnet.inference.exported.WithStyleImage`).
        style_images: one image file, or two with ``mask`` (the first where the mask is white).
        alpha: the content-style trade-off in [0, 1] (1: full style, 0: the content reconstructed).
        mask: a grey image file (its BT.601 luma is used), of the contents' aspect ratio; with one style,
            its black part keeps the content.
        style_size: the longer side the style images are resized to (``None``: as they are).
        device: where the network runs.

    Returns:
        ``(network, info)``: the bound network in eval mode (a :class:`~lossnet.models.StyledAdaIN`, or for an
        exported file a :class:`~lossnet.inference.exported.WithStyleImage`), and what the file says.

    Raises:
        InputError: the file is not a ``style_any`` network, a style image or the mask is unreadable,
            the styles and the mask do not go together (see :class:`~lossnet.models.StyledAdaIN`), or an
            exported file is given a mask or two styles.
        CheckpointError: as :func:`~lossnet.inference.load_model` (the encoder's trunk weights missing, say), or
            the trunk loaded here is not the one the checkpoint says its decoder was trained on.
    """
    target = pick_device(device)
    net, info = load_model_with_info(path, target)
    exported = isinstance(net, ExportedNetwork) and net.interface.style_input == "image"
    if not isinstance(net, AdaINNet) and not exported:
        raise InputError(
            f"style images and --alpha apply to a network that takes its style at inference (style_any); "
            f"{Path(path).name} holds {info}"
        )
    if exported and (mask is not None or len(style_images) != 1):
        raise InputError(
            f"{Path(path).name} is an exported style_any file: it takes one style image and no mask (got "
            f"{len(style_images)} and {'a' if mask is not None else 'no'} mask); the spatial control needs the "
            ".safetensors model it was exported from"
        )
    check_trunk(net, info, path)
    styles = [_read(p, "style image", style_size).to(target) for p in style_images]
    if exported:
        return WithStyleImage(net, styles[0], alpha), info
    grey = None if mask is None else luminance(_read(mask, "mask", None)).to(target)
    styled = StyledAdaIN(net, styles, alpha=alpha, mask=grey)
    return styled, info


def check_trunk(net: nn.Module, info: ModelInfo, path: str | os.PathLike[str]) -> None:
    """Refuse an :class:`AdaINNet` whose trunk loaded here is not the one its checkpoint's decoder was trained on.

    Raises:
        CheckpointError: the card's trunk weight id differs from the one loaded.
    """
    if isinstance(net, AdaINNet) and info.loss_weights is not None and info.loss_weights != net.weights_id:
        raise CheckpointError(
            f"{path}: its decoder was trained on the trunk {info.loss_weights}, but {net.arch} with weights "
            f"{net.weights!r} loads {net.weights_id} here; install the weights it was trained on"
        )


def _read(path: str | os.PathLike[str], what: str, size: int | None) -> object:
    try:
        return load_image(path, size=size)
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except InputError as err:
        raise InputError(f"{what} {path}: {err}") from None
