"""``style_any``'s loss: AdaIN's (:class:`lossnet.losses.adain.AdaINLoss`), on the network's own encoder.

The content term's target is the AdaIN output at the encoder's layer, so the loss must encode with
the very trunk the network decodes from: its ``arch``, ``weights`` and ``layer`` are read from the
network's arguments (:func:`~lossnet.train.config.model_kwargs`), not from ``--arch``/``--weights``.
The terms' weights come from the loss preset (``adain_style``: content 1 at ``relu4_1``, mean/std 10
at ``relu1_1`` .. ``relu4_1``), and ``--feature-layers`` / ``--mean-std-layers`` override them.
"""

from __future__ import annotations

import inspect

from lossnet.errors import InputError
from lossnet.losses.adain import AdaINLoss
from lossnet.models.adain import AdaINNet
from lossnet.terms.registry import FAMILIES
from lossnet.train.balance import run_shares
from lossnet.train.config import TrainConfig, loss_kwargs, model_kwargs

#: The families AdaIN's loss is made of: the content term on the AdaIN target, and the statistics terms.
ADAIN_FAMILIES = ("feature", "mean_std")


def adain_training_loss(config: TrainConfig) -> tuple[AdaINLoss, str]:
    """The run's :class:`AdaINLoss` and a note for the log (empty unless ``--arch``/``--weights`` were set aside).

    Raises:
        InputError: the network is not an ``AdaINNet``; the loss has no mean/std layers, a content layer other
            than the encoder's, or terms of other families; the run asks for shares.
    """
    if config.model != "AdaINNet":
        raise InputError(
            f"task {config.task!r} trains an AdaINNet (its loss reads the network's encoder); got --model {config.model}"
        )
    if run_shares(config) is not None:
        raise InputError(
            f"task {config.task!r} trains with the loss's weights; drop --balance shares and the --*-share flags"
        )
    kwargs = loss_kwargs(config)
    net = inspect.signature(AdaINNet).bind_partial(**model_kwargs(config))
    net.apply_defaults()
    arch, weights, layer, eps = (net.arguments[k] for k in ("arch", "weights", "layer", "eps"))
    content = dict(kwargs.get("feature_layers") or {})
    styles = dict(kwargs.get("mean_std_layers") or {})
    if set(content) - {layer}:
        raise InputError(
            f"{config.task}'s content term compares with the AdaIN output, which exists only at the encoder's layer "
            f"{layer}; got --feature-layers {','.join(content)}. Give --feature-layers {layer}=WEIGHT"
        )
    if not styles:
        raise InputError(
            f"{config.task}'s loss needs mean/std style layers; loss {config.loss!r} has none. Use --loss perceptual "
            "(adain_style) or give --mean-std-layers relu1_1,relu2_1,relu3_1,relu4_1"
        )
    others = sorted(
        name for name, family in FAMILIES.items() if name not in ADAIN_FAMILIES and kwargs.get(family.keyword)
    )
    if others:
        raise InputError(
            f"{config.task}'s loss has content ({layer}) and mean/std terms only; the loss also asks for "
            f"{', '.join(others)}. Turn them off (e.g. --pixel-weight 0) or use --loss perceptual"
        )
    note = ""
    if config.loss_arch not in (None, arch) or config.loss_weights not in ("auto", weights):
        note = (
            f"{config.task}'s loss runs on the network's own encoder ({arch}, weights {weights!r}); --arch and --weights "
            "are not used (set the encoder with --model-kwargs arch=...,weights=...)"
        )
    return AdaINLoss(arch, weights, layer, content.get(layer, 0.0), styles, eps), note
