"""What each task is, in one place: the task registry.

A :class:`Task` says everything the rest of lossnet needs to know about one
image-transformation task, so that training, evaluation, inference and the demo read the
same answer:

==========  =======================  ===============  ==================  =============================
task        pair (input -> target)   recipe network   baseline            scored on
==========  =======================  ===============  ==================  =============================
superres    x``scale`` downscale     SuperResNet      ``bicubic``         luma, ``scale`` px shaved
restore     JPEG (+ a drawn number)  UNet (3 -> 3)    ``JPEG qN`` input   whole image
colorize    BT.601 luma (1 channel)  UNet (1 -> 3)    ``grey`` (to RGB)   whole image
style       the image itself         TransformerNet   none                no ground truth
style_any   content + a style image  AdaINNet         none                no ground truth
==========  =======================  ===============  ==================  =============================

The pairs themselves are made by :func:`lossnet.data.tasks.make_pair` (the data layer, below
this one); the recipes are :class:`~lossnet.train.config.TrainConfig` overrides. A new task
is one :class:`Task` entry in :data:`TASKS` (and its pair in :mod:`lossnet.data.tasks`).

>>> TASKS["superres"].shave(4), TASKS["restore"].shave(4)
(4, 0)
>>> [t.name for t in TASKS.values() if t.has_truth]
['superres', 'colorize', 'restore']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from lossnet.data.degradations import upscale
from lossnet.data.tasks import TASKS as PAIR_TASKS
from lossnet.data.tasks import make_pair
from lossnet.errors import InputError
from lossnet.models.adain import AdaINNet, StyledAdaIN
from lossnet.models.registry import MODELS
from lossnet.models.transformer_net import TransformerNet
from lossnet.validation import check_choice


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class Task:
    """One task: how its pairs are made, what network it trains, how it is scored.

    Attributes:
        name: ``'superres'``, ``'restore'``, ``'colorize'`` or ``'style'``.
        title: what the task does, for table titles (``{scale}`` is filled in).
        in_channels: the network's input channels (1 for the grey input of ``colorize``).
        upscales: the output is ``scale`` times the input's size (the network takes ``scale``).
        has_truth: the target is a ground truth an output can be scored against
            (``style``'s target is the content image, which a stylised output should not match).
        colour_output: the output is colour even from a grey input.
        needs_style_image: the loss holds a style image's Grams.
        y_channel: the headline scores (validation's PSNR/SSIM) are on the BT.601 luma.
        paper_loss: the loss preset of the task's paper (``loss='paper'``).
        perceptual_loss: the loss preset ``loss='perceptual'`` trains with: the paper's, unless the
            paper's recipe fails on the trunk lossnet has offline (``style`` and ``superres``: see the
            ``lossnet_style`` and ``lossnet_superres`` presets).
        recipe: the task's training recipe, as :class:`~lossnet.train.config.TrainConfig` overrides.
        model_defaults: network arguments the recipe's network gets unless ``model_kwargs`` sets them.
        baseline_name: the method to beat, by name (``{scale}``, ``{quality}`` filled in); ``None``: none.
        baseline_description: what that baseline is, one line.
        baseline_fn: ``(input, scale) -> output`` of the baseline.
        pairs_with_styles: each training image comes with a style image from ``style_data``, stacked on its
            channels (:mod:`lossnet.data.content_style`).
        encoder_loss: the loss is taken on the network's own encoder (AdaIN's; :mod:`lossnet.train.adain`).
    """

    name: str
    title: str
    in_channels: int
    upscales: bool
    has_truth: bool
    colour_output: bool
    needs_style_image: bool
    y_channel: bool
    paper_loss: str
    recipe: Mapping[str, Any]
    model_defaults: Mapping[str, Any] = field(default_factory=dict)
    perceptual_loss: str | None = None
    baseline_name: str | None = None
    baseline_description: str | None = None
    baseline_fn: Callable[[torch.Tensor, int], torch.Tensor] | None = None
    pairs_with_styles: bool = False
    encoder_loss: bool = False

    @property
    def recipe_loss(self) -> str:
        """The loss preset ``loss='perceptual'`` trains with (:attr:`perceptual_loss`, else :attr:`paper_loss`)."""
        return self.perceptual_loss or self.paper_loss

    @property
    def model(self) -> str:
        """The recipe's network, e.g. ``'SuperResNet'``."""
        return str(self.recipe["model"])

    def shave(self, scale: int) -> int:
        """Pixels cropped off every border before scoring: ``scale`` for super-resolution, else 0."""
        return scale if self.upscales else 0

    def pair(
        self,
        image: torch.Tensor,
        *,
        scale: int = 4,
        jpeg_quality: int | tuple[int, int] = (10, 70),
        text: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input, target)`` for ``image`` ``(B, C, H, W)`` in [0, 1]; see :func:`lossnet.data.tasks.make_pair`."""
        return make_pair(self.name, image, scale=scale, jpeg_quality=jpeg_quality, text=text, generator=generator)

    def baseline(self, inp: torch.Tensor, scale: int = 1) -> torch.Tensor:
        """The baseline's output ``(B, 3, H', W')`` in [0, 1] for a network input ``(B, C, H, W)``.

        Raises:
            InputError: the task has no baseline (``style``).
        """
        if self.baseline_fn is None:
            raise InputError(f"task {self.name!r} has no baseline to compare with (it has no ground truth)")
        return self.baseline_fn(inp, scale)

    def method_name(self, scale: int = 1, jpeg_quality: int = 0) -> str | None:
        """The baseline's name in tables, e.g. ``'bicubic'``, ``'JPEG q30'``; ``None`` when there is none."""
        return None if self.baseline_name is None else self.baseline_name.format(scale=scale, quality=jpeg_quality)

    def describe_baseline(self, scale: int = 1, jpeg_quality: int = 0) -> str | None:
        """One line saying what the baseline is."""
        text = self.baseline_description
        return None if text is None else text.format(scale=scale, quality=jpeg_quality)

    def network_kwargs(self, model: str, scale: int) -> dict[str, Any]:
        """The arguments the task fixes for network ``model``: ``scale`` and ``in_channels`` where it takes them.

        Raises:
            InputError: the network cannot do the task (it does not upscale for ``superres``,
                upscales for another task, or takes no one-channel input for ``colorize``).

        >>> TASKS["colorize"].network_kwargs("UNet", 4), TASKS["superres"].network_kwargs("SuperResNet", 2)
        ({'in_channels': 1}, {'scale': 2})
        """
        check_choice(model, list(MODELS), "model")
        takes = inspect.signature(MODELS[model]).parameters
        fits = [name for name in MODELS if _fits(self, name)]
        if "scale" in takes and not self.upscales:
            tasks = [t.name for t in TASKS.values() if t.upscales]
            only = " or ".join(map(repr, tasks))
            raise InputError(f"{model} upscales, so it only fits task {only}; got task {self.name!r}")
        if self.upscales and "scale" not in takes:
            raise InputError(
                f"task {self.name!r} needs model {' or '.join(fits)} (the output is larger); got {model!r}"
            )
        if self.in_channels != 3 and "in_channels" not in takes:
            raise InputError(
                f"task {self.name!r} takes {_channels(self.in_channels)}, so it needs model {' or '.join(fits)}; "
                f"got {model!r}"
            )
        fixed: dict[str, Any] = {}
        if self.upscales:
            fixed["scale"] = scale
        if "in_channels" in takes:
            fixed["in_channels"] = self.in_channels
        return fixed

    def check_model(self, model: nn.Module, what: str = "the network") -> None:
        """Refuse a built network that cannot do the task (wrong input channels, or scale).

        Raises:
            InputError: naming the mismatch.
        """
        scale, channels = int(getattr(model, "scale", 1)), int(getattr(model, "in_channels", 3))
        if self.upscales and scale == 1:
            raise InputError(f"a {self.name} network must upscale; {what} has scale 1")
        if not self.upscales and scale != 1:
            raise InputError(f"a {self.name} network keeps the size, but {what} upscales by {scale}")
        if channels != self.in_channels:
            raise InputError(
                f"a {self.name} network takes {_channels(self.in_channels)}; {what} takes {_channels(channels)}"
            )


def _channels(n: int) -> str:
    return "one input channel" if n == 1 else f"{n} input channels"


def _fits(task: Task, model: str) -> bool:
    takes = inspect.signature(MODELS[model]).parameters
    return ("scale" in takes) == task.upscales and (task.in_channels == 3 or "in_channels" in takes)


def guess_task(model: nn.Module) -> str | None:
    """The task a network without a recorded one was most likely trained for, or ``None``.

    An upscaling network is ``superres``, a one-channel input ``colorize``, a
    :class:`~lossnet.models.TransformerNet` ``style``; a 3-channel U-Net could be anything.

    >>> from lossnet.models import UNet
    >>> guess_task(UNet(in_channels=1, depth=2)), guess_task(UNet(depth=2))
    ('colorize', None)
    """
    if int(getattr(model, "scale", 1)) != 1:
        return "superres"
    if int(getattr(model, "in_channels", 3)) == 1:
        return "colorize"
    if isinstance(model, (AdaINNet, StyledAdaIN)):
        return "style_any"
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
            recipe=_frozen(
                {
                    "model": "TransformerNet",
                    "optimizer": "adam",
                    "lr": 1e-3,
                    "batch_size": 4,
                    "crop_size": 256,
                    "steps": 40_000,
                    "schedule": "constant",
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
            recipe=_frozen(
                {
                    "model": "SuperResNet",
                    "optimizer": "adam",
                    "lr": 1e-3,
                    "batch_size": 4,
                    "crop_size": 288,
                    "steps": 200_000,
                    "schedule": "constant",
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
            recipe=_frozen(_FASTAI_RECIPE),
            model_defaults=_frozen(_RESIDUAL),
            baseline_name="JPEG q{quality}",
            baseline_description="the JPEG (quality {quality}) input itself",
            baseline_fn=lambda x, scale: x,
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
            # Huang & Belongie 2017: Adam 1e-4, batch 8, 256 px crops of images resized to 512, 160k iterations.
            recipe=_frozen(
                {
                    "model": "AdaINNet",
                    "optimizer": "adam",
                    "lr": 1e-4,
                    "batch_size": 8,
                    "crop_size": 256,
                    "style_size": 512,
                    "steps": 160_000,
                    "schedule": "constant",
                }
            ),
            model_defaults=_frozen({"arch": "vgg16", "weights": "hed"}),  # the trunk lossnet has offline
            pairs_with_styles=True,
            encoder_loss=True,
        ),
    }
)

if set(TASKS) != set(PAIR_TASKS):  # pragma: no cover - a task added to one list and not the other
    raise ImportError(f"the task registry {tuple(TASKS)} and make_pair's tasks {PAIR_TASKS} differ")

#: The tasks with a ground truth to score against (what ``lossnet eval`` takes).
EVAL_TASKS = tuple(name for name, task in TASKS.items() if task.has_truth)

__all__ = ["EVAL_TASKS", "TASKS", "Task", "get_task", "guess_task"]
