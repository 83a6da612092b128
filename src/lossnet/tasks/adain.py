"""``style_any``'s training loss: AdaIN's (:class:`lossnet.losses.adain.AdaINLoss`), on the network's own encoder.

The content term's target is the AdaIN output at the encoder's layer, so the loss must encode with
the very trunk the network decodes from: its ``arch``, ``weights`` and ``layer`` are read from the
network's arguments (:func:`~lossnet.train.config.model_kwargs`), not from ``--arch``/``--weights``.
The terms' weights come from the loss preset (``adain_style``: content 1 at ``relu4_1``, mean/std 10
at ``relu1_1`` .. ``relu4_1``), and ``--feature-layers`` / ``--mean-std-layers`` override them.

:func:`adain_training_loss` is the task's :attr:`~lossnet.tasks.Task.training_loss`: the trainer
(:func:`lossnet.train.loss_network.training_loss`) calls it with the run's values. It lives in the
task layer because it reads both the network's arguments (:mod:`lossnet.models.adain`) and the loss
(:mod:`lossnet.losses.adain`), which sit in layers that do not import each other.
"""

from __future__ import annotations

import inspect

from lossnet.errors import InputError
from lossnet.losses.adain import AdaINLoss
from lossnet.models.adain import AdaINNet
from lossnet.tasks.task import LossRequest
from lossnet.terms.registry import FAMILIES

#: The families AdaIN's loss is made of: the content term on the AdaIN target, and the statistics terms.
ADAIN_FAMILIES = ("feature", "mean_std")


def adain_training_loss(run: LossRequest) -> tuple[AdaINLoss, str]:
    """The run's :class:`AdaINLoss` and a note for the log (empty unless ``--arch``/``--weights`` were set aside).

    Args:
        run: the run's values; the network's ``arch``, ``weights``, ``layer`` and ``eps`` (its ``model_kwargs``,
            or their defaults) are the loss's, ``loss_kwargs`` give the terms (``feature_layers``,
            ``mean_std_layers``), and ``loss_arch`` / ``loss_weights`` are set aside (the note says so).

    Raises:
        InputError: the network is not an ``AdaINNet``; the loss has no mean/std layers, a content layer other
            than the encoder's, or terms of other families; the run asks for shares.

    Example:
        >>> net = {"arch": "vgg11", "weights": None, "layer": "relu2_1"}
        >>> terms = {"feature_layers": {"relu2_1": 1.0}, "mean_std_layers": {"relu1_1": 10.0}}
        >>> loss, note = adain_training_loss(LossRequest(
        ...     task="style_any", model="AdaINNet", model_kwargs=net, loss="perceptual", loss_kwargs=terms,
        ...     loss_arch=None, loss_weights="auto", shares=False))
        >>> [t.key for t in loss.engine], note
        (['feature.relu2_1', 'mean_std.relu1_1'], '')
    """
    task, loss = run.task, run.loss
    if run.model != "AdaINNet":
        raise InputError(
            f"task {task!r} trains an AdaINNet (its loss reads the network's encoder); got --model {run.model}"
        )
    if run.shares:
        raise InputError(f"task {task!r} trains with the loss's weights; drop --balance shares and the --*-share flags")
    kwargs = run.loss_kwargs
    net = inspect.signature(AdaINNet).bind_partial(**run.model_kwargs)
    net.apply_defaults()
    arch, weights, layer, eps = (net.arguments[k] for k in ("arch", "weights", "layer", "eps"))
    content = dict(kwargs.get("feature_layers") or {})
    styles = dict(kwargs.get("mean_std_layers") or {})
    if set(content) - {layer}:
        raise InputError(
            f"{task}'s content term compares with the AdaIN output, which exists only at the encoder's layer "
            f"{layer}; got --feature-layers {','.join(content)}. Give --feature-layers {layer}=WEIGHT"
        )
    if not styles:
        raise InputError(
            f"{task}'s loss needs mean/std style layers; loss {loss!r} has none. Use --loss perceptual "
            "(adain_style) or give --mean-std-layers relu1_1,relu2_1,relu3_1,relu4_1"
        )
    others = sorted(
        name for name, family in FAMILIES.items() if name not in ADAIN_FAMILIES and kwargs.get(family.keyword)
    )
    if others:
        raise InputError(
            f"{task}'s loss has content ({layer}) and mean/std terms only; the loss also asks for "
            f"{', '.join(others)}. Turn them off (e.g. --pixel-weight 0) or use --loss perceptual"
        )
    note = ""
    if run.loss_arch not in (None, arch) or run.loss_weights not in ("auto", weights):
        note = (
            f"{task}'s loss runs on the network's own encoder ({arch}, weights {weights!r}); --arch and --weights "
            "are not used (set the encoder with --model-kwargs arch=...,weights=...)"
        )
    return AdaINLoss(arch, weights, layer, content.get(layer, 0.0), styles, eps), note
