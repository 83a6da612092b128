"""Training configuration: one typed dataclass, and the papers' recipes as task presets.

:class:`TrainConfig` holds every knob of a run. :func:`task_config` starts from the
recipe for a task and applies overrides; the command line generates one ``--flag``
per field (:mod:`lossnet.cli.train`), so every field can be set there too.

Recipes (:data:`TASK_PRESETS`, read from the task registry :mod:`lossnet.tasks`):

=========  ===============  =========================  =================================================
task       network          loss (``--loss perceptual``)  optimisation, after
=========  ===============  =========================  =================================================
style      TransformerNet   ``lossnet_style``           Adam 5e-4 (Johnson: 1e-3), batch 4, 256 px, 40k steps
                                                        (Johnson: 2 epochs of COCO's 80k images)
superres   SuperResNet x4   ``lossnet_superres``        Adam 3e-4 (Johnson: 1e-3), batch 4, 288 px crops, 200k steps
colorize   UNet (1 -> 3)    ``lossnet_colorize``        AdamW one-cycle, max lr 1e-3, wd 1e-3 (fastai lesson 7)
restore    UNet (3 -> 3)    ``fastai_feature_loss``     AdamW one-cycle, max lr 1e-3, wd 1e-3 (fastai "crappify")
=========  ===============  =========================  =================================================

``loss`` picks the loss for any task: ``'pixel'`` (per-pixel MSE only, the baseline
that perceptual losses beat), ``'perceptual'`` (the task's recipe above), ``'paper'`` (the task's
paper's preset: ``johnson2016_style``, ``johnson2016_superres`` and ``fastai_feature_loss``; the same as
``'perceptual'`` for restore),
``'fastai'`` (``fastai_feature_loss``), or any :data:`lossnet.losses.PRESETS` name.

Style departs from its paper: Johnson's Grams on HED's VGG16 lose the content's sign, so ``lossnet_style``
uses a sliced-Wasserstein term and a pixel term; super-resolution adds a pixel term to Johnson's relu2_2
(``lossnet_superres``): alone, relu2_2 on HED let the output drift darker, 5 dB below bicubic. Colourisation
rebalances fastai's three families (``lossnet_colorize``): with fastai's weights the Grams are all of the
gradient on HED's features, which hardly see colour, and a short run's output stayed grey.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from lossnet.backbones.vgg import ARCHS
from lossnet.errors import InputError, InputTypeError
from lossnet.losses.presets import PRESETS
from lossnet.models.registry import MODELS
from lossnet.runtime import PRECISION_CHOICES
from lossnet.tasks import TASKS, get_task
from lossnet.terms.registry import FAMILIES, OPTIONS, family_of, style_families, term_keywords
from lossnet.train.changes import RESUME_CHANGEABLE, cli_value, resume_changes
from lossnet.train.styles import style_sources
from lossnet.train.task_options import fold_options
from lossnet.validation import check_choice, check_weight, suggest

#: ``--loss`` names besides the presets: per-pixel only, the task's paper recipe, fastai's.
LOSS_KINDS = ("pixel", "perceptual", "paper", "fastai")
#: The preset behind ``loss='perceptual'`` for each task (from the task registry).
PERCEPTUAL_PRESET = {name: task.recipe_loss for name, task in TASKS.items()}
#: The preset of each task's paper (``loss='paper'``).
PAPER_PRESET = {name: task.paper_loss for name, task in TASKS.items()}
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "onecycle")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class _RunFields:
    """Everything a training run needs; JSON-compatible, stored in every checkpoint.

    Fields left at ``None`` take the value of the loss preset (layers, pixel and TV
    weights). All sizes are in pixels. Besides the fields below, each keyword of the table of
    term families (:func:`lossnet.terms.registry.term_keywords`) is a field, ``None`` by default.
    """

    task: str = "superres"
    # -- data
    data: str | None = None
    """Folder of training images (searched recursively); ``None`` = the embedded default images."""
    val_data: str | None = None
    """Folder of validation images; ``None`` = the default validation split (astronaut, chelsea)."""
    image_size: int | None = None
    """Resize each image's longer side to this before cropping (``None`` keeps the file's size)."""
    crop_size: int = 256
    """Side of the random square training crops (the target's size)."""
    flip: bool = True
    """Random horizontal flips."""
    cache_images: bool | None = None
    """Keep decoded images in memory; ``None`` = only for the embedded default images (small)."""
    val_size: int = 256
    """Side of the centre-ish validation crops (fixed across the run)."""
    val_images: int = 2
    """How many validation images to score and show in the sample sheet."""
    task_options: dict[str, Any] = field(default_factory=dict)
    """The task's options (``superres``: ``scale``; ``restore``: ``jpeg_quality``, ``text``), one flag each;
    the task's defaults fill in the rest. Read one as ``config.jpeg_quality``, all as ``config.options``."""
    style_image: str | list[str] = "brick"
    """The style: a default image name (see ``lossnet.data.DEFAULT_IMAGES``) or an image file; ``style_multi``:
    several (the flag repeated) or a folder of them."""
    style_size: int = 256
    """``style``: longer side of the style image when its Grams are computed."""
    recolour_target: bool = False
    """Style tasks: the content terms compare the output with its content recoloured to the style image's
    per-channel RGB mean and std, not with the content itself, so that the network keeps the content's layout in
    the style's palette (:class:`lossnet.train.styles.StylePalette`). The ``style`` and ``style_multi`` recipes
    turn it on."""
    # -- network
    model: str = "SuperResNet"
    """``TransformerNet``, ``SuperResNet``, ``UNet`` or ``Compact`` (Real-ESRGAN's, for ``superres``)."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments of the network (``scale`` and ``in_channels`` follow the task)."""
    # -- loss
    loss: str = "perceptual"
    """``pixel``, ``perceptual`` (the task's recipe), ``paper`` (its paper's preset), ``fastai`` or a loss preset name."""
    loss_weights: str | None = "auto"
    """Weights of the loss network: ``imagenet``, ``hed``, ``auto`` (ImageNet if it can be had, else HED), a file, or ``None``.

    With ``hed`` or ``auto`` offline, a recipe on another network (fastai's vgg16_bn) runs its layers on HED's
    VGG16 and the log says so (see :mod:`lossnet.train.loss_network`)."""
    loss_arch: str | None = None
    """Override the recipe's loss network (``vgg16``, ``vgg16_bn``, ``vgg19``, ...); ``None`` keeps the recipe's."""
    # The loss's term fields (feature_layers, style_layers, pixel_weight, tv_weight, contextual_layers, criterion, ...)
    # are generated from the table of term families below the class (:func:`_term_fields`); each overrides the preset.
    balance: str | None = None
    """``weights`` (the term weights as given), ``shares`` (each family's ``--*-share``, or the recipe's shares,
    resolved to weights on the first batch; see lossnet.terms.shares); none = shares when a share is given."""
    resolved_weights: dict[str, Any] | None = None
    """Set by the run, not a flag: the weights its shares resolved to on the first batch (kept on resume)."""
    allow_uncalibrated: bool = False
    """Allow LPIPS or DISTS terms (``--loss lpips_vgg``, ``dists``) on a trunk other than the ImageNet one they
    were published on (HED's VGG16 offline, say); they are then logged as ``lpips_like`` / ``dists_like``."""
    # -- optimisation
    optimizer: str = "adam"
    """``adam`` or ``adamw`` (decoupled weight decay)."""
    lr: float = 1e-3
    """Learning rate (the peak of the one-cycle schedule)."""
    weight_decay: float = 0.0
    """The optimizer's weight decay."""
    style_lr_scale: float = 1.0
    """A multi-style network's per-style parameters (its conditional norms' scales and shifts) learn at this
    multiple of ``lr``. Adam moves a parameter by about ``lr`` a step, so at the shared rate they barely leave their
    common start in a short run, and the styles' outputs stay close (the ``style_multi`` recipe: 10)."""
    schedule: str = "constant"
    """``constant`` or ``onecycle`` (warm-up over the first 25% of the steps, then cosine decay)."""
    batch_size: int = 4
    """Images per step, per process under torchrun."""
    steps: int = 200_000
    """Optimiser steps of the whole run (the one-cycle schedule ends here)."""
    seed: int = 0
    """Seeds the initial weights, the crops and flips and the degradations."""
    # -- machinery
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    precision: str = "auto"
    """``auto`` (bf16 where the CPU or GPU runs it natively, fp16 + GradScaler on older GPUs, else fp32),
    ``fp32``, ``bf16`` (autocast, CPU or CUDA) or ``fp16`` (autocast + GradScaler, CUDA only)."""
    channels_last: bool = False
    """Keep the network's weights and activations in channels-last memory layout: faster convolutions on recent GPUs,
    and on CPUs for some networks (the ``superres`` recipe turns it on; see the task registry)."""
    num_workers: int = 0
    """DataLoader worker processes that decode and crop images (0 = in the training process)."""
    # -- reporting
    out_dir: str = "runs/superres"
    """The run folder: config, logs, samples, checkpoint and final model."""
    log_every: int = 10
    """Write a CSV row (and refresh the progress bar) every this many steps."""
    val_every: int = 500
    """Validate (PSNR/SSIM) and write a sample sheet every this many steps, and at the end."""
    checkpoint_every: int = 1000
    """Write ``checkpoint.safetensors`` every this many steps, and at the end."""
    stop_after: int | None = None
    """Stop (with a checkpoint) after this step although the schedule plans for ``steps``; resume later
    (a resume goes on to ``steps`` unless it is given again)."""

    def __post_init__(self) -> None:
        check_choice(self.task, list(TASKS), "task")
        check_choice(self.model, list(MODELS), "model")
        check_choice(self.loss, list(LOSS_KINDS) + list(PRESETS), "loss")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.schedule, SCHEDULES, "schedule")
        check_choice(self.precision, PRECISION_CHOICES, "precision")
        check_choice(self.device, DEVICES, "device")
        if self.loss_arch is not None:
            check_choice(self.loss_arch, list(ARCHS), "loss_arch")
        for name in ("crop_size", "val_size", "val_images", "style_size", "batch_size", "steps", "log_every",
                     "val_every", "checkpoint_every"):  # fmt: skip
            _positive_int(getattr(self, name), name)
        for name in ("image_size", "stop_after"):
            if getattr(self, name) is not None:
                _positive_int(getattr(self, name), name)
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise InputError(f"num_workers must be an int >= 0; got {self.num_workers!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"{name} must be a finite number >= 0; got {value!r}")
        scale = self.style_lr_scale
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise InputError(f"style_lr_scale must be a finite number > 0 (1: the shared lr); got {scale!r}")
        if isinstance(self.style_image, (list, tuple)) and len(self.style_image) == 1:
            self.style_image = self.style_image[0]  # one style image is a name, as it always was
        names = [self.style_image] if isinstance(self.style_image, str) else self.style_image
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) and n for n in names):
            raise InputTypeError(f"style_image must be a name or file, or a list of them; got {self.style_image!r}")
        self.style_image = self.style_image if isinstance(self.style_image, str) else list(self.style_image)
        if not isinstance(self.recolour_target, bool):
            raise InputTypeError(f"recolour_target must be true or false; got {self.recolour_target!r}")
        if self.recolour_target and not TASKS[self.task].needs_style_image:
            raise InputError(
                f"recolour_target recolours the content target to the style image's colours; task {self.task!r} "
                "has no style image. Drop --recolour-target"
            )
        if not isinstance(self.task_options, dict):
            raise InputTypeError(f"task_options must be a dict; got {type(self.task_options).__name__}")
        self.task_options = TASKS[self.task].options_dict(self.task_options)
        scale = self.scale
        if self.crop_size % scale:
            raise InputError(
                f"crop_size must be a multiple of scale for {self.task}; got crop_size={self.crop_size}, "
                f"scale={scale}. Try crop_size={self.crop_size - self.crop_size % scale or scale}."
            )
        if not isinstance(self.model_kwargs, dict):
            raise InputTypeError(f"model_kwargs must be a dict; got {type(self.model_kwargs).__name__}")
        for name in term_keywords():
            value, family = getattr(self, name, None), family_of(name)
            if value is not None:
                family.value(value, None) if family else OPTIONS[name].check(value)
        _ = self.balance is None or check_choice(self.balance, ("weights", "shares"), "balance")
        shares = {n: v for n in FAMILIES if (v := getattr(self, f"{n}_share", None)) is not None}
        if shares and self.balance == "weights":
            raise InputError(f"--{next(iter(shares))}-share asks for shares, --balance weights for weights; drop one")
        for name, value in {**shares, **(self.resolved_weights or {})}.items():
            family_of(name).value(value, None) if family_of(name) else check_weight(value, f"{name}_share")

    @property
    def options(self) -> Any:
        """The task's options, an instance of its options dataclass (:attr:`lossnet.tasks.Task.options`)."""
        return TASKS[self.task].make_options(self.task_options)

    @property
    def scale(self) -> int:
        """How many times larger the network's output is than its input: ``superres``'s ``scale``, else 1."""
        return TASKS[self.task].scale(self.task_options)

    def __getattr__(self, name: str) -> Any:
        """A task option by name (``config.scale``, ``config.jpeg_quality``), where the task has it."""
        options = self.__dict__.get("task_options")
        if options is not None and name in options:
            return getattr(self.options, name)
        raise AttributeError(f"{type(self).__name__} (task {self.__dict__.get('task')!r}) has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-compatible values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:  # type: ignore[misc]
        """Rebuild a config from :meth:`to_dict`; unknown keys are an error (with suggestions).

        The top-level ``scale``, ``jpeg_quality`` and ``text`` of older configs become ``task_options``
        (:func:`lossnet.train.task_options.fold_options`).
        """
        values = fold_options(values)
        names = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in names]
        if unknown:
            raise InputError(
                f"unknown config field {unknown[0]!r}; expected one of {names}.{suggest(unknown[0], names)}"
            )
        return cls(**values)  # type: ignore[return-value]

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with ``overrides`` applied (and checked); unknown names are an error."""
        return TrainConfig.from_dict({**self.to_dict(), **overrides})


def _term_fields() -> list[tuple[str, Any, Any]]:
    """One optional field per term keyword of the table of families (``None``: the preset's), its help as metadata."""
    out: list[tuple[str, Any, Any]] = []
    for name in term_keywords():
        family = family_of(name)
        if family is not None:
            kind: Any = dict[str, float] | None if family.layered else float | None
            what = "layer name -> weight" if family.layered else "the weight"
            help_ = f"{family.help[0].upper()}{family.help[1:]} ({what}); none = the preset's."
        elif OPTIONS[name].cli:
            option = OPTIONS[name]
            kind = option.type | None
            help_ = f"{option.help[0].upper()}{option.help[1:]}; none = the preset's, else {option.default}."
        else:
            continue
        out.append((name, kind, field(default=None, metadata={"help": help_})))
    for family in FAMILIES.values():
        help_ = f"Share of the {family.help.split(' (')[0]} with --balance shares; none = the recipe's."
        out.append((f"{family.name}_share", float | None, field(default=None, metadata={"help": help_})))
    return out


#: The run's config: the fields above, and one per term keyword of the table of families.
TrainConfig = dataclasses.make_dataclass("TrainConfig", _term_fields(), bases=(_RunFields,))
TrainConfig.__module__, TrainConfig.__doc__ = __name__, _RunFields.__doc__


#: Each task's recipe, as overrides of the :class:`TrainConfig` defaults (from the task registry).
TASK_PRESETS: dict[str, dict[str, Any]] = {name: dict(task.recipe) for name, task in TASKS.items()}


def task_config(task: str, **overrides: Any) -> TrainConfig:
    """The recipe for ``task`` (:data:`TASK_PRESETS`) with ``overrides`` applied.

    ``out_dir`` defaults to ``runs/<task>``.

    >>> c = task_config("style", steps=10)
    >>> c.model, c.lr, c.batch_size, c.steps, c.out_dir
    ('TransformerNet', 0.0005, 4, 10, 'runs/style')
    """
    recipe = get_task(task).recipe
    return TrainConfig(**fold_options({"task": task, "out_dir": f"runs/{task}", **recipe, **overrides}, strict=True))


#: Network arguments each task's recipe adds unless ``model_kwargs`` sets them (from the task registry):
#: the U-Net tasks start from their baseline (the degraded or grey input) by predicting a residual over it.
TASK_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    name: dict(task.model_defaults) for name, task in TASKS.items() if task.model_defaults
}


def model_kwargs(config: TrainConfig) -> dict[str, Any]:
    """The network's constructor arguments: the task fixes ``scale`` / ``in_channels`` and adds its defaults
    (:attr:`lossnet.tasks.Task.model_defaults`, for the recipe's network only); the config's ``model_kwargs``
    add the rest.

    >>> model_kwargs(task_config("colorize"))
    {'residual': True, 'in_channels': 1}
    """
    task = TASKS[config.task]
    styles = len(style_sources(config.style_image)) if task.multi_style else 1
    fixed = task.network_kwargs(config.model, config.task_options, styles)
    clash = {k for k in fixed if k in config.model_kwargs and config.model_kwargs[k] != fixed[k]}
    if clash:
        k = sorted(clash)[0]
        raise InputError(
            f"model_kwargs sets {k}={config.model_kwargs[k]!r} but the task needs {fixed[k]!r}; "
            f"leave {k} out of model_kwargs (use --scale for superres)"
        )
    defaults = dict(task.model_defaults) if config.model == task.model else {}
    return {**defaults, **fixed, **config.model_kwargs}


def loss_preset(config: TrainConfig) -> str | None:
    """The loss preset a config trains with (``None`` for ``loss='pixel'``).

    >>> loss_preset(task_config("superres")), loss_preset(task_config("style", loss="paper"))
    ('lossnet_superres', 'johnson2016_style')
    """
    if config.loss == "pixel":
        return None
    task = TASKS[config.task]
    named = {"perceptual": task.recipe_loss, "paper": task.paper_loss, "fastai": "fastai_feature_loss"}
    return named.get(config.loss, config.loss)


def loss_kwargs(config: TrainConfig) -> dict[str, Any]:
    """The :class:`~lossnet.losses.PerceptualLoss` arguments for a config (weights excluded).

    >>> loss_kwargs(task_config("superres", loss="pixel"))
    {'feature_layers': {}, 'style_layers': {}, 'pixel_weight': 1.0, 'tv_weight': 0.0, 'criterion': 'mse'}
    """
    if config.loss == "pixel":
        kwargs: dict[str, Any] = {
            "feature_layers": {},
            "style_layers": {},
            "pixel_weight": 1.0,
            "tv_weight": 0.0,
            "criterion": "mse",
        }
    else:
        kwargs = PRESETS[loss_preset(config)].kwargs()  # type: ignore[index]
    for key in term_keywords():
        if getattr(config, key, None) is not None:
            kwargs[key] = getattr(config, key)
    kwargs |= config.resolved_weights or {}
    style = [FAMILIES[name] for name in style_families()]
    if TASKS[config.task].needs_style_image and not any(kwargs.get(f.keyword) for f in style):
        others = ", ".join(f.flag for f in style[1:])
        raise InputError(
            f"task {config.task!r} needs style layers, and loss {config.loss!r} has none; use --loss perceptual "
            f"or give --style-layers relu1_2=5,relu2_2=5,relu3_3=5,relu4_3=5 (or {others})"
        )
    return kwargs


def _positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive int; got {value!r}")
