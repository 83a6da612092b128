"""The :class:`Task` record: everything lossnet needs to know about one task (the entries are in :mod:`lossnet.tasks`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from lossnet.data.pairs import NoOptions, PairMaker, identity_pair, options_dict, options_from
from lossnet.data.tasks import apply_pair
from lossnet.errors import InputError
from lossnet.models.registry import MODELS
from lossnet.validation import check_choice


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class LossRequest:
    """What a task's own loss factory (:attr:`Task.training_loss`) is given: the run's values.

    Attributes:
        task, model: the run's task and ``--model``.
        model_kwargs: the network's arguments.
        loss: ``--loss``.
        loss_kwargs: the loss preset's term keywords with the run's overrides.
        loss_arch, loss_weights: ``--arch`` and ``--weights`` (once ``--loss-arch`` and ``--loss-weights``).
        shares: the run asks for shares (``--balance shares``, a ``--*-share`` flag).
    """

    task: str
    model: str
    model_kwargs: Mapping[str, Any]
    loss: str
    loss_kwargs: Mapping[str, Any]
    loss_arch: str | None
    loss_weights: str | None
    shares: bool


#: A task's own training loss: ``(loss, note)`` from a :class:`LossRequest`, where the loss has the trainer's
#: ``terms(prediction, target)`` and the note goes to the run's log (empty when there is nothing to say); it
#: raises :class:`~lossnet.errors.InputError` for a run it cannot train.
TaskLoss = Callable[[LossRequest], tuple[nn.Module, str]]


@dataclass(frozen=True)
class Task:
    """One task: how its pairs are made, what network it trains, how it is scored.

    Attributes:
        name: the key of :data:`lossnet.tasks.TASKS` (``'superres'``, ``'style'``, ...).
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
            paper's recipe fails on the trunk lossnet has offline (``style``, ``superres`` and ``colorize``:
            see the ``lossnet_style``, ``lossnet_superres`` and ``lossnet_colorize`` presets).
        recipe: the task's training recipe, as :class:`~lossnet.train.config.TrainConfig` overrides.
        model_defaults: network arguments the recipe's network gets unless ``model_kwargs`` sets them.
        baseline_name: the method to beat, by name (``{scale}``, ``{quality}`` filled in); ``None``: none.
        baseline_description: what that baseline is, one line.
        baseline_fn: ``(input, scale) -> output`` of the baseline.
        pair_maker: ``(images, options, generator) -> (input, target)`` (:mod:`lossnet.data.pairs`).
        options: the pair maker's options dataclass; its fields are the task's options (``--scale``, ...).
        eval_options: the options ``lossnet eval`` degrades with unless told otherwise (no random draw).
        multi_style: the network holds one style per style image and takes each item's style index
            (its constructor takes ``num_styles``); each training item draws one.
        training_loss: the task builds its own loss (e.g. on its network's own encoder, where a content target
            may exist only there) instead of the loss preset's :class:`~lossnet.losses.PerceptualLoss` on a
            separate loss network: a :data:`TaskLoss`, which the trainer calls with the run's values; ``None``:
            the preset's loss.
        split_input: ``(content, style)`` of a network input that carries its style image beside the content
            (each ``(B, 3, H, W)``), so that the sample sheets show content | output | style; ``None``: the input
            is one image.
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
    pair_maker: PairMaker = identity_pair
    options: type = NoOptions
    eval_options: Mapping[str, Any] = field(default_factory=dict)
    multi_style: bool = False
    training_loss: TaskLoss | None = None
    split_input: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def recipe_loss(self) -> str:
        """The loss preset ``loss='perceptual'`` trains with (:attr:`perceptual_loss`, else :attr:`paper_loss`)."""
        return self.perceptual_loss or self.paper_loss

    @property
    def model(self) -> str:
        """The recipe's network, e.g. ``'SuperResNet'``."""
        return str(self.recipe["model"])

    @property
    def apply_flags(self) -> str:
        """What ``lossnet apply`` needs besides the model, the images and ``--out``: ``--style 0`` for a multi-style
        network (its first style; it refuses to guess), ``--style-image STYLE`` for one that takes its style image
        as an input, else nothing.

        >>> from lossnet.tasks import TASKS
        >>> [TASKS[name].apply_flags for name in ("superres", "style_multi", "style_any")]
        ['', '--style 0', '--style-image STYLE']
        """
        if self.multi_style:
            return "--style 0"
        return "--style-image STYLE" if self.split_input is not None else ""

    def shave(self, scale: int) -> int:
        """Pixels cropped off every border before scoring: ``scale`` for super-resolution, else 0."""
        return scale if self.upscales else 0

    def make_options(self, values: Mapping[str, Any] | Any = None) -> Any:
        """The task's options (an instance of :attr:`options`) from ``{field: value}`` or an instance.

        Raises:
            InputError: a field the task does not take (its fields are listed), or a bad value.

        >>> from lossnet.tasks import TASKS
        >>> TASKS["superres"].make_options({"scale": 2}), TASKS["style"].make_options()
        (SuperResOptions(scale=2), NoOptions())
        """
        if isinstance(values, self.options):
            return values
        return options_from(self.options, values, task=self.name)

    def options_dict(self, values: Mapping[str, Any] | Any = None) -> dict[str, Any]:
        """The checked options as JSON-compatible ``{field: value}``, every field present (defaults filled in)."""
        return options_dict(self.make_options(values))

    def scale(self, options: Any = None) -> int:
        """How many times larger the output is: the options' ``scale`` for an upscaling task, else 1."""
        return int(self.make_options(options).scale) if self.upscales else 1

    def pair(
        self,
        image: torch.Tensor,
        options: Mapping[str, Any] | Any = None,
        *,
        generator: torch.Generator | None = None,
        **values: Any,
    ) -> tuple[torch.Tensor, ...]:
        """``(input, target)`` for ``image`` ``(C, H, W)`` or ``(B, C, H, W)`` in [0, 1], with the task's options
        (an instance, a dict, or keywords such as ``scale=2``); see :mod:`lossnet.data.pairs`."""
        chosen = self.make_options(values if options is None else options)
        return apply_pair(self.pair_maker, image, chosen, generator)

    def baseline(self, inp: torch.Tensor, scale: int = 1) -> torch.Tensor:
        """The baseline's output ``(B, 3, H', W')`` in [0, 1] for a network input ``(B, C, H, W)``.

        Raises:
            InputError: the task has no baseline (``style``).
        """
        if self.baseline_fn is None:
            raise InputError(f"task {self.name!r} has no baseline to compare with (it has no ground truth)")
        return self.baseline_fn(inp, scale)

    def method_name(self, options: Mapping[str, Any] | Any = None) -> str | None:
        """The baseline's name in tables, e.g. ``'bicubic'``, ``'JPEG q30'``; ``None`` when there is none.

        >>> from lossnet.tasks import TASKS
        >>> TASKS["restore"].method_name({"jpeg_quality": 30}), TASKS["restore"].method_name({"jpeg_quality": (10, 70)})
        ('JPEG q30', 'JPEG q10-70')
        """
        return None if self.baseline_name is None else self.baseline_name.format(**self._texts(options))

    def describe_baseline(self, options: Mapping[str, Any] | Any = None) -> str | None:
        """One line saying what the baseline is."""
        text = self.baseline_description
        return None if text is None else text.format(**self._texts(options))

    def _texts(self, options: Any) -> dict[str, str]:
        """The options' values as table text: a ``(low, high)`` range is ``low-high``, or ``low`` when they agree."""
        out = {}
        for key, value in self.options_dict(options).items():
            if isinstance(value, list):
                value = value[0] if len(set(value)) == 1 else "-".join(map(str, value))
            out[key] = str(value)
        return out

    def network_kwargs(self, model: str, options: Mapping[str, Any] | Any = None, styles: int = 1) -> dict[str, Any]:
        """The arguments the task fixes for network ``model``: ``scale`` and ``in_channels`` where it takes them,
        and ``num_styles`` (= ``styles``, the style images) for a multi-style task.

        Raises:
            InputError: the network cannot do the task (it does not upscale for ``superres``,
                upscales for another task, or takes no one-channel input for ``colorize``).

        >>> from lossnet.tasks import TASKS
        >>> TASKS["colorize"].network_kwargs("UNet"), TASKS["superres"].network_kwargs("SuperResNet", {"scale": 2})
        ({'in_channels': 1}, {'scale': 2})
        """
        check_choice(model, list(MODELS), "model")
        takes = inspect.signature(MODELS[model]).parameters
        fits = [name for name in MODELS if _fits(self, name)]
        if "scale" in takes and not self.upscales:
            from lossnet.tasks import TASKS  # the registry, built from this class

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
        if self.multi_style != ("num_styles" in takes):
            raise InputError(
                f"task {self.name!r} needs model {' or '.join(fits)} "
                f"({'one style per style image' if self.multi_style else 'one style'}); got {model!r}"
            )
        fixed: dict[str, Any] = {}
        if self.upscales:
            fixed["scale"] = self.scale(options)
        if "in_channels" in takes:
            fixed["in_channels"] = self.in_channels
        if self.multi_style:
            fixed["num_styles"] = styles
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
    fits = ("scale" in takes) == task.upscales and ("num_styles" in takes) == task.multi_style
    return fits and (task.in_channels == 3 or "in_channels" in takes)
