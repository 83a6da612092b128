"""What an entry of the table of term families is: a :class:`Family` and its :class:`Option` s.

The table itself, and everything generated from it, is :mod:`lossnet.terms.registry`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.errors import InputTypeError
from lossnet.terms.base import Term, layer_weights
from lossnet.validation import Range, check_choice, check_weight


@dataclass(frozen=True)
class Option:
    """One option of a family: a keyword of :class:`~lossnet.PerceptualLoss`, a flag, a config field.

    Attributes:
        name: the keyword (``"tv_kind"``); the flag is ``--tv-kind``.
        default: its value when not given.
        help: one line for ``--help``.
        type: ``float``, ``int``, ``str`` or ``bool``.
        choices: the valid values of a ``str`` option (empty: any).
        param: the Term's keyword for it, when it differs from ``name`` (``"kind"`` for ``tv_kind``).
        optional: ``None`` is a valid value (``none`` on the command line).
        cli: whether it is a flag (a file path or a tensor mapping may be Python-only).
    """

    name: str
    default: Any
    help: str
    type: type = float
    choices: tuple[str, ...] = ()
    param: str = ""
    optional: bool = False
    cli: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """The value, checked: its type, its choices; an :class:`~lossnet.errors.InputError` says what is valid."""
        if value is None and (self.optional or self.default is None):
            return None
        if self.choices:
            return check_choice(value, self.choices, self.name)
        if self.type is bool:
            if not isinstance(value, bool):
                raise InputTypeError(f"{self.name} must be True or False; got {value!r}")
            return value
        if self.type in (int, float):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or (self.type is int and value != int(value)):
                kind = "an int" if self.type is int else "a number"
                raise InputTypeError(f"{self.name} must be {kind}; got {value!r}")
            return self.type(value)
        return value


@dataclass
class BuildContext:
    """What a family's builder may read besides its own value: the trunk, the images' range, the options."""

    arch: str
    extractor: FeatureExtractor | None
    input_range: Range
    strict: bool
    options: dict[str, Any]


@dataclass(frozen=True)
class Family:
    """One term family, one entry of the table (see :mod:`lossnet.terms.registry`).

    Attributes:
        name: the family's name and the prefix of its keys.
        term: the :class:`Term` class: ``term(layer, weight, **options)`` for a layered family,
            ``term(weight, **options)`` for a scalar one (``input_range`` is passed when it takes one).
        help: what the family compares, for ``--help`` and error messages.
        layered: per-layer weights (``<name>_layers``) or one weight (``<name>_weight``).
        options: its own options; an option shared by several families is one keyword (``criterion``).
        target: ``"target"``, ``"style"`` or ``"none"`` (see :mod:`lossnet.terms.registry`).
        reads: for a scalar family that reads trunk layers (LPIPS, DISTS), the layers it reads on an arch.
        check: called as ``check(arch, pooling)`` before the trunk is built; raises when the family cannot run.
        build: builds the family's terms when the default rule does not do (``build(value, context)``).
        presets: ``{name: {"arch", "terms", "shares", "source", "notes"}}``, recipes that introduce the family.
        exports: its public functions and modules, exported at the top level (``lossnet.X``).
        paper: where it comes from.
    """

    name: str
    term: Callable[..., Term]
    help: str
    layered: bool = True
    options: tuple[Option, ...] = ()
    target: str = "target"
    reads: Callable[[str], tuple[str, ...]] | None = None
    check: Callable[[str, str], None] | None = None
    build: Callable[[Any, BuildContext], list[Term]] | None = None
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exports: tuple[Any, ...] = ()
    paper: str = ""

    @property
    def keyword(self) -> str:
        """``<name>_layers`` or ``<name>_weight``: its :class:`~lossnet.PerceptualLoss` keyword and config field."""
        return f"{self.name}_layers" if self.layered else f"{self.name}_weight"

    @property
    def flag(self) -> str:
        return "--" + self.keyword.replace("_", "-")

    def value(self, given: Any, arch: str | None) -> Any:
        """The checked value: ``{layer: weight}`` (layers checked against ``arch``) or a weight >= 0."""
        if self.layered:
            return layer_weights(given, self.name, arch)
        return check_weight(0.0 if given is None else given, self.keyword)

    def layers(self, value: Any, arch: str) -> list[str]:
        """The trunk layers the family reads for ``value``."""
        if self.layered:
            return list(value)
        return list(self.reads(arch)) if self.reads is not None and value else []

    def terms(self, value: Any, context: BuildContext) -> list[Term]:
        """The family's terms for ``value`` (none for weight 0 or no layer)."""
        if not value:
            return []
        if self.build is not None:
            return self.build(value, context)
        accepted = inspect.signature(self.term).parameters
        kwargs = {o.param or o.name: context.options[o.name] for o in self.options}
        if "input_range" in accepted:
            kwargs["input_range"] = context.input_range
        if self.layered:
            return [self.term(layer, w, **kwargs) for layer, w in value.items()]
        return [self.term(value, **kwargs)]
