"""Which loss network a training run uses: the preset's, or an offline stand-in that says so.

A recipe names its loss network (``fastai_feature_loss`` wants ImageNet ``vgg16_bn``), and
``--weights`` (once ``--loss-weights``) names its weights. Offline, only HED's VGG16 can be had, so
:func:`resolve_loss_network` decides once, before anything is loaded:

- ``--arch`` given: that network, no questions asked;
- ``--weights hed``, or ``auto`` with no ImageNet file for the preset's network: the
  same layers on HED's VGG16 when VGG16 has them (a departure from the recipe, returned as a
  note for the run's log and ``run.json``: no batch norm, edge-tuned features);
- otherwise the preset's network; layers VGG16 lacks give a one-line error naming the flags.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from lossnet.backbones.vgg import layer_names
from lossnet.backbones.weights import IMAGENET_URLS, LoadedWeights, hub_cache_dir, load_weights
from lossnet.errors import InputError, WeightsUnavailableError
from lossnet.terms.registry import term_layers
from lossnet.losses.perceptual import PerceptualLoss
from lossnet.losses.trunk import run_flags
from lossnet.losses.shares import with_shared_families
from lossnet.tasks import TASKS, LossRequest
from lossnet.train.balance import run_shares
from lossnet.train.config import TrainConfig, loss_kwargs, model_kwargs

logger = logging.getLogger("lossnet")

#: The one network HED's weights fill.
HED_ARCH = "vgg16"


@dataclass(frozen=True)
class LossNetwork:
    """The loss network a run uses.

    Attributes:
        arch: the VGG variant, e.g. ``"vgg16"``.
        weights: the ``weights`` argument to load it with (``"auto"``, ``"hed"``, a path...).
        note: why it differs from the recipe's, for the log; empty when it does not.
    """

    arch: str
    weights: str | None
    note: str = ""


def _imagenet_cached(arch: str) -> bool:
    return (hub_cache_dir() / IMAGENET_URLS[arch].rsplit("/", 1)[1]).is_file()


def resolve_loss_network(
    preset_arch: str,
    weights: str | None,
    layers: list[str],
    loss_arch: str | None = None,
    imagenet_available: bool | None = None,
    terms: Mapping[str, Any] | None = None,
) -> LossNetwork:
    """Decide the loss network for a recipe that wants ``preset_arch``.

    Args:
        preset_arch: the recipe's network.
        weights: the run's ``loss_weights`` (``"auto"``, ``"imagenet"``, ``"hed"``, a file or ``None``).
        layers: every layer the loss reads (feature and style).
        loss_arch: an explicit ``--arch``, which wins.
        imagenet_available: whether ImageNet weights for ``preset_arch`` can be had (cached or
            downloaded); ``None`` looks in the torch.hub cache only.
        terms: the loss's term keywords; when given, a refusal names the flags that move them to VGG16.

    >>> resolve_loss_network("vgg16_bn", "hed", ["relu3_3", "relu5_3"]).arch
    'vgg16'
    >>> resolve_loss_network("vgg16", "hed", ["relu2_2"]).note
    ''
    """
    if loss_arch is not None:
        return LossNetwork(loss_arch, weights)
    if imagenet_available is None:
        imagenet_available = _imagenet_cached(preset_arch)
    use_hed = preset_arch != HED_ARCH and (weights == "hed" or (weights == "auto" and not imagenet_available))
    if not use_hed:
        return LossNetwork(preset_arch, weights)
    missing = [name for name in layers if name not in layer_names(HED_ARCH)]
    if missing:
        raise InputError(
            f"this loss reads {preset_arch} layers that VGG16 does not have ({', '.join(missing)}), and "
            f"--weights {weights} can only fill a VGG16 here (HED; no ImageNet {preset_arch} file is cached). "
            f"Put {IMAGENET_URLS[preset_arch].rsplit('/', 1)[1]} in {hub_cache_dir()}, pass a {preset_arch} file "
            "with --weights PATH, or choose a VGG16 loss (--loss perceptual for superres/style)"
            + (f", or run its terms on HED's VGG16 with {run_flags(terms, HED_ARCH, True)}" if terms else "")
        )
    why = "as asked (--weights hed)" if weights == "hed" else f"no ImageNet {preset_arch} file is cached"
    note = (
        f"loss network: the recipe's {preset_arch} layers ({', '.join(layers)}) on HED's VGG16 instead, {why}; "
        f"a departure from the recipe (no batch norm, edge-tuned features). Use --arch {preset_arch} "
        "--weights PATH for the original"
    )
    return LossNetwork(HED_ARCH, "hed", note)


def _imagenet_weights(arch: str) -> LoadedWeights | None:
    """ImageNet weights for ``arch`` when they are cached or can be downloaded now (this may download), else ``None``."""
    try:
        return load_weights(arch, "imagenet")
    except WeightsUnavailableError:
        return None


def training_loss(config: TrainConfig) -> tuple[nn.Module, str]:
    """The run's :class:`PerceptualLoss` and the note on its loss network (empty when it is the recipe's).

    A task that builds its own loss (:attr:`lossnet.tasks.Task.training_loss`, e.g. on its network's own encoder)
    gets that loss instead, built from the run's values, and its note.
    """
    own = TASKS[config.task].training_loss
    if own is not None:
        request = LossRequest(
            task=config.task,
            model=config.model,
            model_kwargs=model_kwargs(config),
            loss=config.loss,
            loss_kwargs=loss_kwargs(config),
            loss_arch=config.loss_arch,
            loss_weights=config.loss_weights,
            shares=run_shares(config) is not None,
        )
        return own(request)
    kwargs = loss_kwargs(config)
    shares = run_shares(config)
    if shares is not None:  # every family with a share is built; the shares set the weights on the first batch
        kwargs = with_shared_families(kwargs, shares)
    if kwargs.get("lpips_weight") or kwargs.get("dists_weight"):
        kwargs["strict"] = not config.allow_uncalibrated
    layers = term_layers(kwargs.get("arch", ""), kwargs)
    if not layers:  # pixel/TV only: no loss network at all
        return PerceptualLoss(weights=None, **kwargs), ""
    arch = kwargs.pop("arch")
    imagenet = available = None
    if config.loss_weights == "auto" and config.loss_arch is None and arch != HED_ARCH:
        imagenet = _imagenet_weights(arch)
        available = imagenet is not None
    chosen = resolve_loss_network(
        arch, config.loss_weights, layers, config.loss_arch, imagenet_available=available, terms=kwargs
    )
    if imagenet is not None and chosen.arch == arch:  # already read: hand it over rather than read the file again
        logger.warning("weights='auto': loaded %s", imagenet.description)
        return PerceptualLoss(arch=arch, weights=imagenet, **kwargs), chosen.note
    return PerceptualLoss(arch=chosen.arch, weights=chosen.weights, **kwargs), chosen.note
