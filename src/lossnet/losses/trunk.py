"""A recipe on another trunk: which of its layers that trunk lacks, and the one set of flags that makes it run.

A preset names its loss network's layers (``contextual_superres`` reads VGG19's ``relu3_4``). On a trunk
that lacks them (HED's VGG16, the one that can be had offline) the recipe cannot run as written. Rather
than fail on one missing piece at a time, :func:`run_flags` gives every change at once: the trunk, each
layered family's layers moved to the closest layer the trunk has (the same kind in the same block:
``relu3_4`` -> ``relu3_3``), and ``--allow-uncalibrated`` where LPIPS or DISTS would then not be the
published metric. Every layered family of :data:`lossnet.terms.registry.FAMILIES` is covered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lossnet.backbones.vgg import layer_names
from lossnet.errors import InputError
from lossnet.terms.registry import FAMILIES, family_of, term_layers

_NAME = re.compile(r"^([a-z]+)(\d+)(?:_(\d+))?$")


def closest_layer(name: str, arch: str) -> str | None:
    """The layer of ``arch`` that stands for ``name`` of another trunk: itself, else the last of its kind in its block.

    >>> closest_layer("relu3_4", "vgg16"), closest_layer("conv5_4", "vgg16"), closest_layer("relu2_2", "vgg16")
    ('relu3_3', 'conv5_3', 'relu2_2')
    """
    names = layer_names(arch)
    if name in names:
        return name
    m = _NAME.match(name)
    if m is None:
        return None
    same = [n for n in names if (k := _NAME.match(n)) and k[1] == m[1] and k[2] == m[2]]
    return same[-1] if same else None


def on_trunk(kwargs: Mapping[str, Any], arch: str) -> dict[str, Any]:
    """The layered family keywords of ``kwargs`` with every layer moved to ``arch`` (:func:`closest_layer`)."""
    out: dict[str, Any] = {}
    for family in FAMILIES.values():
        value = kwargs.get(family.keyword)
        if family.layered and value:
            layers = family.value(value, None)
            moved: dict[str, float] = {}
            for name, weight in layers.items():
                target = closest_layer(name, arch)
                if target is not None:
                    moved[target] = moved.get(target, 0.0) + weight
            out[family.keyword] = moved
    return out


def missing_layers(kwargs: Mapping[str, Any], arch: str) -> list[str]:
    """The layers the terms of ``kwargs`` read that ``arch`` does not have."""
    have = set(layer_names(arch))
    return [name for name in term_layers(arch, kwargs) if name not in have]


def run_flags(kwargs: Mapping[str, Any], arch: str, uncalibrated: bool = False) -> str:
    """The flags that run the terms of ``kwargs`` on ``arch``, as one command-line fragment.

    Args:
        kwargs: :class:`~lossnet.PerceptualLoss` keywords (a preset's, say).
        arch: the trunk to run on.
        uncalibrated: add ``--allow-uncalibrated true`` when LPIPS or DISTS is among the terms (their
            numbers are the published metrics only on torchvision's ImageNet trunk).

    >>> run_flags({"contextual_layers": {"relu3_4": 0.1}, "pixel_weight": 1.0}, "vgg16")
    '--arch vgg16 --contextual-layers relu3_3=0.1'
    """
    flags = [f"--arch {arch}"]
    for keyword, layers in on_trunk(kwargs, arch).items():
        if layers != FAMILIES[family_of(keyword).name].value(kwargs[keyword], None):  # type: ignore[union-attr]
            flags.append(f"--{keyword.replace('_', '-')} " + ",".join(f"{k}={v:g}" for k, v in layers.items()))
    if uncalibrated and any(kwargs.get(f"{name}_weight") for name in ("lpips", "dists")):
        flags.append("--allow-uncalibrated true")
    return " ".join(flags)


def check_trunk_layers(kwargs: Mapping[str, Any], arch: str, recipe: str, uncalibrated: bool = False) -> None:
    """Raise one :class:`InputError` naming every flag that runs ``recipe`` on ``arch`` when it lacks some layers."""
    missing = missing_layers(kwargs, arch)
    if missing:
        raise InputError(
            f"{recipe} reads layers that {arch} does not have ({', '.join(missing)}). To run it on {arch}: "
            f"{run_flags(kwargs, arch, uncalibrated)}"
        )
