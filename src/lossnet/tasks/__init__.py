"""What each task is, in one place: the task registry.

A :class:`Task` says everything the rest of lossnet needs to know about one
image-transformation task, so that training, evaluation, inference and the demo read the
same answer:

===========  =======================  ===============  ==================  =============================
task         pair (input -> target)   recipe network   baseline            scored on
===========  =======================  ===============  ==================  =============================
superres     x``scale`` downscale     SuperResNet      ``bicubic``         luma, ``scale`` px shaved
restore      JPEG (+ a drawn number)  UNet (3 -> 3)    ``JPEG qN`` input   whole image
colorize     BT.601 luma (1 channel)  UNet (1 -> 3)    ``grey`` (to RGB)   whole image
style        the image itself         TransformerNet   none                no ground truth
style_multi  the image, and a style   MultiStyleNet    none                no ground truth
style_any    content + a style crop   AdaINNet         none                no ground truth
===========  =======================  ===============  ==================  =============================

(``style_multi``: each item draws one of the style images; the network holds them all. ``style_any``:
each item is its content and a style crop stacked on the channels; the network takes the style as an
input and its loss is taken on the network's own encoder.)

Each entry names its pair maker and that maker's options dataclass (:mod:`lossnet.data.pairs`, the
data layer, below this one): the options' fields are the task's command-line flags and the one
``task_options`` field of :class:`~lossnet.train.config.TrainConfig`; the recipes are ``TrainConfig``
overrides. A new task is one :class:`Task` entry in :data:`TASKS` (plus its pair maker, unless it
reuses one, and its network, unless it reuses one); nothing else names a task.

>>> TASKS["superres"].shave(4), TASKS["restore"].shave(4)
(4, 0)
>>> [t.name for t in TASKS.values() if t.has_truth]
['superres', 'colorize', 'restore']
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from torch import nn

from lossnet.data.degradations import upscale
from lossnet.data.pairs import (
    RestoreOptions,
    StyleAnyOptions,
    SuperResOptions,
    colorize_pair,
    content_style_pair,
    identity_pair,
    restore_pair,
    superres_pair,
)
from lossnet.functional.adain import split_content_style
from lossnet.models.adain import AdaINNet, StyledAdaIN
from lossnet.models.transformer_net import TransformerNet
from lossnet.tasks.adain import adain_training_loss
from lossnet.tasks.task import LossRequest, Task, TaskLoss, _frozen
from lossnet.validation import check_choice


def guess_task(model: nn.Module) -> str | None:
    """The task a network without a recorded one was most likely trained for, or ``None``.

    An upscaling network is ``superres``, a one-channel input ``colorize``, a network of several styles
    ``style_multi``, an AdaIN network ``style_any``, a :class:`~lossnet.models.TransformerNet` ``style``; a
    3-channel U-Net could be anything.

    >>> from lossnet.models import UNet
    >>> guess_task(UNet(in_channels=1, depth=2)), guess_task(UNet(depth=2))
    ('colorize', None)
    """
    if int(getattr(model, "scale", 1)) != 1:
        return "superres"
    if int(getattr(model, "in_channels", 3)) == 1:
        return "colorize"
    if isinstance(model, (AdaINNet, StyledAdaIN)):
        return next(t.name for t in TASKS.values() if t.model == AdaINNet.__name__)
    if hasattr(model, "num_styles"):
        return next(t.name for t in TASKS.values() if t.multi_style)
    return "style" if isinstance(model, TransformerNet) else None


def get_task(name: str | Task) -> Task:
    """The :class:`Task` of a name (an unknown one is an error that lists the tasks)."""
    if isinstance(name, Task):
        return name
    return TASKS[check_choice(name, list(TASKS), "task")]


#: fastai lesson 7's U-Net recipe (colorize and restore).
_FASTAI_RECIPE: dict[str, Any] = {
    "model": "UNet",
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-3,
    "batch_size": 8,
    "crop_size": 128,
    "steps": 10_000,
    "schedule": "onecycle",
}
#: The U-Net tasks start from their baseline (the degraded or grey input) by predicting a residual over it.
_RESIDUAL = {"residual": True}

#: Every task, by name, in the order the recipes are documented (``lossnet train --help``).
TASKS: Mapping[str, Task] = MappingProxyType(
    {
        "style": Task(
            name="style",
            title="style transfer",
            in_channels=3,
            upscales=False,
            has_truth=False,
            colour_output=True,
            needs_style_image=True,
            y_channel=False,
            paper_loss="johnson2016_style",
            perceptual_loss="lossnet_style",
            pair_maker=identity_pair,
            recipe=_frozen(
                {
                    "model": "TransformerNet",
                    "optimizer": "adam",
                    # 5e-4, not Johnson's 1e-3: on HED's VGG16 (100 steps at 64 px, the learning check's run) 1e-3
                    # lost a held-out content for some seeds (layout correlation 0.38 and -0.02, seeds 6 and 11,
                    # bf16), while 5e-4 kept it for seeds 0-6 and 11 in bf16 and 0-5 in fp32 (worst 0.61 and
                    # 0.71) and took the style terms further (end / the content's own 0.15-0.27, was 0.49-0.56).
                    "lr": 5e-4,
                    "batch_size": 4,
                    "crop_size": 256,
                    "steps": 40_000,
                    "schedule": "constant",
                    # the content in the style's palette (issue 20: the demo's network kept chelsea's colours,
                    # colour ratio 1.03 against ihc; recoloured, 0.25, with the layout kept)
                    "recolour_target": True,
                }
            ),
        ),
        "superres": Task(
            name="superres",
            title="x{scale} super-resolution",
            in_channels=3,
            upscales=True,
            has_truth=True,
            colour_output=False,
            needs_style_image=False,
            y_channel=True,
            paper_loss="johnson2016_superres",
            perceptual_loss="lossnet_superres",
            pair_maker=superres_pair,
            options=SuperResOptions,
            # lr 3e-4, not Johnson's 1e-3: on HED's VGG16, 200 steps at 64 px (seeds 0-2, bf16) at 1e-3 left the
            # perceptual network stuck at bicubic for one seed (relu2_2 distance 72.6, bicubic's 72.8), and at 3e-3
            # for both seeds tried; at 3e-4 none of six runs (bf16 and fp32) was, and the per-pixel network gained
            # as much over bicubic (README).
            recipe=_frozen(
                {
                    "model": "SuperResNet",
                    "optimizer": "adam",
                    "lr": 3e-4,
                    "batch_size": 4,
                    "crop_size": 288,
                    "steps": 200_000,
                    "schedule": "constant",
                    # SuperResNet's convolutions run faster channels-last on a CPU too: a step at 64 px took 0.58x
                    # as long in fp32 (as AVX2) and 0.81x in bf16, at 288 px 0.85x and 0.81x (2-core AMD EPYC; the
                    # U-Net was within 0-9%, and TransformerNet 17% slower in bf16, its instance norms copying)
                    "channels_last": True,
                }
            ),
            baseline_name="bicubic",
            baseline_description="bicubic upsampling of the x{scale} antialiased-bicubic downscale, clamped to [0, 1]",
            baseline_fn=lambda x, scale: upscale(x.clone(), scale),
        ),
        "colorize": Task(
            name="colorize",
            title="colourisation",
            in_channels=1,
            upscales=False,
            has_truth=True,
            colour_output=True,
            needs_style_image=False,
            y_channel=False,
            paper_loss="fastai_feature_loss",
            perceptual_loss="lossnet_colorize",
            pair_maker=colorize_pair,
            recipe=_frozen(_FASTAI_RECIPE),
            model_defaults=_frozen(_RESIDUAL),
            baseline_name="grey",
            baseline_description="the BT.601 luma input, repeated to RGB",
            baseline_fn=lambda x, scale: x.expand(-1, 3, -1, -1),
        ),
        "restore": Task(
            name="restore",
            title="restoration",
            in_channels=3,
            upscales=False,
            has_truth=True,
            colour_output=False,
            needs_style_image=False,
            y_channel=False,
            paper_loss="fastai_feature_loss",
            pair_maker=restore_pair,
            options=RestoreOptions,
            eval_options=_frozen({"jpeg_quality": 30, "text": False}),
            recipe=_frozen(_FASTAI_RECIPE),
            model_defaults=_frozen(_RESIDUAL),
            baseline_name="JPEG q{jpeg_quality}",
            baseline_description="the JPEG (quality {jpeg_quality}) input itself",
            baseline_fn=lambda x, scale: x,
        ),
        "style_multi": Task(
            name="style_multi",
            title="multi-style transfer",
            in_channels=3,
            upscales=False,
            has_truth=False,
            colour_output=True,
            needs_style_image=True,
            multi_style=True,
            y_channel=False,
            paper_loss="johnson2016_style",  # Dumoulin et al. 2017 train with Johnson's Gram loss on VGG
            perceptual_loss="lossnet_style",
            pair_maker=identity_pair,
            recipe=_frozen(
                {
                    "model": "MultiStyleNet",
                    "style_image": ["brick", "ihc"],
                    "optimizer": "adam",
                    # The shared weights at style's 5e-4, each style's own norm parameters at 10x that: at one rate
                    # for all, Adam moves those by about lr a step, so in a short run the styles stayed near their
                    # shared start: their outputs were RMS 0.02-0.08 apart after 100 steps at 64 px (one rate, 5e-4 or
                    # 1e-3), 0.19-0.23 at 10x (seeds 0-5, fp32 and bf16), with the layouts kept (worst 0.68).
                    "lr": 5e-4,
                    "style_lr_scale": 10.0,
                    "batch_size": 4,
                    "crop_size": 256,
                    "steps": 40_000,
                    "schedule": "constant",
                    # each item's content in its own style's palette: the two styles' outputs 5-10x further
                    # apart (RMS 0.05-0.08 against 0.007-0.03, 100 steps at 64 px, bf16)
                    "recolour_target": True,
                }
            ),
        ),
        "style_any": Task(
            name="style_any",
            title="arbitrary style transfer",
            in_channels=3,
            upscales=False,
            has_truth=False,
            colour_output=True,
            needs_style_image=False,
            y_channel=False,
            paper_loss="adain_style",
            pair_maker=content_style_pair,
            options=StyleAnyOptions,
            # Huang & Belongie 2017: Adam 1e-4, batch 8, 256 px crops (of images resized to 512: the pair
            # maker's style crops keep that ratio), 160k iterations.
            recipe=_frozen(
                {
                    "model": "AdaINNet",
                    "optimizer": "adam",
                    "lr": 1e-4,
                    "batch_size": 8,
                    "crop_size": 256,
                    "steps": 160_000,
                    "schedule": "constant",
                }
            ),
            model_defaults=_frozen({"arch": "vgg16", "weights": "hed"}),  # the trunk lossnet has offline
            training_loss=adain_training_loss,  # AdaIN's loss, on the network's own encoder
            split_input=split_content_style,  # the sheets show the content and its style crop apart
        ),
    }
)

#: The tasks with a ground truth to score against (what ``lossnet eval`` takes).
EVAL_TASKS = tuple(name for name, task in TASKS.items() if task.has_truth)

__all__ = ["EVAL_TASKS", "TASKS", "LossRequest", "Task", "TaskLoss", "get_task", "guess_task"]
