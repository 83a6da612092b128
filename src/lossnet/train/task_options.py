"""A run's task options: the one ``task_options`` field of a config, and the old top-level keys it replaced.

Each task's options are the fields of its options dataclass (:attr:`lossnet.tasks.Task.options`:
``scale`` for ``superres``, ``jpeg_quality`` and ``text`` for ``restore``). A config holds them in one
``task_options`` dict; the command line has one flag per field (``--scale``, ``--jpeg-quality``,
``--text``), generated from :data:`OPTION_FIELDS`.

Configs written before that held ``scale``, ``jpeg_quality`` and ``text`` at the top level, for every
task. :func:`fold_options` moves such keys into ``task_options``: a key the task takes is its option;
a key of another task's options is dropped when it holds that option's default (as every old
``config.json`` and checkpoint does), and refused otherwise (``--scale 2`` for ``restore`` means nothing).

>>> fold_options({"task": "superres", "scale": 2, "lr": 0.1})
{'task': 'superres', 'lr': 0.1, 'task_options': {'scale': 2}}
>>> fold_options({"task": "style", "scale": 4, "jpeg_quality": [10, 70], "text": True})
{'task': 'style', 'task_options': {}}
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from lossnet.errors import InputError
from lossnet.tasks import TASKS, get_task


def _option_fields() -> dict[str, tuple[dataclasses.Field, Any, list[str]]]:
    """``{name: (field, type, [tasks that take it])}`` over every task's options dataclass."""
    out: dict[str, tuple[dataclasses.Field, Any, list[str]]] = {}
    for task in TASKS.values():
        hints = typing.get_type_hints(task.options)
        for f in dataclasses.fields(task.options):
            if f.name in out:
                out[f.name][2].append(task.name)
            else:
                out[f.name] = (f, hints[f.name], [task.name])
    return out


#: Every option of every task: ``{name: (dataclass field, its type, [tasks that take it])}``; one CLI flag each.
OPTION_FIELDS = _option_fields()


def fold_options(values: Mapping[str, Any], strict: bool = False) -> dict[str, Any]:
    """``values`` (a config's keys) with the top-level option keys moved into ``task_options``.

    Args:
        values: config keys; ``task`` (default ``'superres'``, the config's) names the task.
        strict: refuse any option key the task does not take, even at its default (what a user
            asks for), rather than drop it (what an old config holds).

    Raises:
        InputError: an option of another task that is not at its default (or any, with ``strict``).
    """
    out = {k: v for k, v in values.items() if k not in OPTION_FIELDS}
    task = get_task(out.get("task", "superres"))
    takes = {f.name for f in dataclasses.fields(task.options)}
    options = dict(out.get("task_options") or {})
    for name in (k for k in values if k in OPTION_FIELDS):
        value = values[name]
        if name in takes:
            options[name] = value
            continue
        f, _, owners = OPTION_FIELDS[name]
        default = f.default
        if strict or _as_tuple(value) != _as_tuple(default):
            flags = ", ".join("--" + n.replace("_", "-") for n in takes) or "none"
            raise InputError(
                f"--{name.replace('_', '-')} is an option of {' and '.join(owners)}, not of task {task.name!r} "
                f"(its options: {flags}); leave it out"
            )
    out["task_options"] = options
    return out


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
