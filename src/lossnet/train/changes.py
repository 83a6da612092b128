"""What a resumed run may change: the fields that define a run, and the changes a resume asks for.

A resume continues the same run, so it may change only how long it trains, its peak learning
rate, its reporting and its hardware (:data:`RESUME_CHANGEABLE`); :func:`resume_changes` names
any other change by its command-line flag, the task's options (``--scale``, ...) included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lossnet.errors import InputError

if TYPE_CHECKING:
    from lossnet.train.config import TrainConfig


def _flat(config: TrainConfig) -> dict[str, Any]:
    """The config as JSON-compatible values, each task option (``scale``, ...) as a key of its own."""
    values = config.to_dict()
    return {**{k: v for k, v in values.items() if k != "task_options"}, **values["task_options"]}


#: The fields a resumed run may change: how long to train (and so where the one-cycle schedule
#: ends), the peak learning rate, how often to report, where to write and on what hardware.
#: Every other field (task, network, loss, data, crops, batch, seed, optimizer, ...) defines
#: the run, and a resume that changes it is refused.
RESUME_CHANGEABLE = (
    *("steps", "stop_after", "lr", "log_every", "val_every", "checkpoint_every", "num_workers", "cache_images"),
    *("device", "precision", "channels_last", "out_dir"),
)


def resume_changes(stored: TrainConfig, config: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """The fields ``config`` changes from the ``stored`` run's, as ``{name: (old, new)}``.

    Raises:
        InputError: a field outside :data:`RESUME_CHANGEABLE` differs (named as its
            ``--flag``), or the precision moves to or from ``fp16`` (the GradScaler state
            does not carry over).

    >>> from lossnet.train.config import task_config
    >>> resume_changes(task_config("style", steps=10), task_config("style", steps=20))
    {'steps': (10, 20)}
    """
    old, new = _flat(stored), _flat(config)
    changes = {k: (old.get(k), new.get(k)) for k in {**old, **new} if old.get(k) != new.get(k)}
    for name, (was, now) in changes.items():
        if name not in RESUME_CHANGEABLE:
            flag = "--" + name.replace("_", "-")
            raise InputError(
                f"{flag} cannot change when resuming: the run was trained with {flag} {cli_value(was)}, "
                f"and {cli_value(now)} was given. Leave {flag} out to continue the run, or start a new run "
                "with another --out-dir"
            )
    if "precision" in changes and "fp16" in changes["precision"]:
        was, now = changes["precision"]
        raise InputError(
            f"--precision cannot change from {was} to {now} when resuming (fp16 keeps a GradScaler state); "
            "fp32 and bf16 can be swapped"
        )
    return changes


def cli_value(value: Any) -> str:
    """A config value as the command line spells it: ``none``, ``true``, ``relu2_2=1,relu3_3=0.5``, ``10,70``.

    >>> cli_value(None), cli_value(False), cli_value({"relu2_2": 1.0}), cli_value([10, 70])
    ('none', 'false', 'relu2_2=1.0', '10,70')
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "''"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
