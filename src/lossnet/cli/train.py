"""``lossnet train TASK``: every :class:`~lossnet.train.config.TrainConfig` field is a flag.

The flags are generated from the dataclass, so a new field is on the command line the
moment it exists, with its docstring as help and each task's default; the tasks' options
(``--scale``, ``--jpeg-quality``, ``--text``) come from each task's options dataclass
(:data:`lossnet.train.task_options.OPTION_FIELDS`) and fill the config's ``task_options``. A flag given
overrides the task's recipe (or, with ``--resume``, the config stored in the checkpoint,
where only the fields of :data:`~lossnet.train.config.RESUME_CHANGEABLE` may change); a
flag left out keeps it. Boolean flags take ``true/false``, ``yes/no`` or ``1/0`` (``--flip``
alone is ``true``, ``--no-flip`` is ``false``); anything else is an error.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import shlex
import sys
import types
import typing
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from lossnet.cli.common import BoolAction, bool_arg, layer_weights_arg
from lossnet.errors import InputError
from lossnet.tasks import TASKS
from lossnet.train.validation import validation_summary

# Fields set by the positional argument or with a flag of their own (task_options: one flag per option).
_NOT_FLAGS = {"task", "resolved_weights", "task_options"}
#: Fields whose flag is named like every other command's, ``{field: (flag, old spelling kept as an alias)}``.
_FLAG_NAMES = {
    "loss_weights": ("--weights", "--loss-weights"),
    "loss_arch": ("--arch", "--loss-arch"),
    "out_dir": ("--out", "--out-dir"),
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` to the subcommands."""
    from lossnet.train.config import TASK_PRESETS, TrainConfig
    from lossnet.train.task_options import OPTION_FIELDS

    p = sub.add_parser(
        "train",
        help="train a network: " + ", ".join(TASKS),
        description="Train an image-transformation network with a perceptual (or per-pixel) loss. "
        "Starts from the task's recipe; every flag overrides one field of it. "
        "Under torchrun --nproc_per_node=N the same command trains with DistributedDataParallel.",
    )
    p.error = _one_line_error  # type: ignore[method-assign]
    p.add_argument(
        "task",
        nargs="?",
        choices=list(TASKS),
        help="what to train: " + ", ".join(TASK_PRESETS) + " (with --resume CKPT it may be left out: the run's own)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="CKPT",
        help="continue the run of CKPT (a checkpoint.safetensors or its run folder; "
        "default OUT_DIR/checkpoint.safetensors) in CKPT's folder, with its stored config; "
        "--steps, --stop-after, --lr, the --*-every flags, --num-workers, --device and --precision may change",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in an --out-dir that holds another run, removing that run's files "
        "(logs, samples, checkpoint, model; nothing else)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    docs = {name: text for cls in TrainConfig.__mro__[::-1] for name, text in _field_docs(cls).items()}
    docs |= {f.name: f.metadata["help"].replace("%", "%%") for f in fields(TrainConfig) if "help" in f.metadata}
    hints = typing.get_type_hints(TrainConfig)
    docs |= {name: f.metadata.get("help", "").replace("%", "%%") for name, (f, _, _) in OPTION_FIELDS.items()}
    hints |= {name: kind for name, (_, kind, _) in OPTION_FIELDS.items()}
    g = p.add_argument_group("config (defaults: the task's recipe; see --print-config)")
    for name in [f.name for f in fields(TrainConfig)] + list(OPTION_FIELDS):
        if name in _NOT_FLAGS:
            continue
        flag, *aliases = _FLAG_NAMES.get(name, ("--" + name.replace("_", "-"),))
        kind = hints[name]
        alias = f"(alias: {', '.join(aliases)})" if aliases else ""
        help_ = " ".join(filter(None, [docs.get(name, ""), _syntax(kind), f"(default: {_default(name)})", alias]))
        if list[str] in typing.get_args(kind):  # one value, or several with the flag repeated
            g.add_argument(
                flag, *aliases, dest=name, action="append", default=argparse.SUPPRESS, metavar="VALUE",
                help=f"{help_} (repeat the flag for several)",
            )
        elif _unwrap(kind)[0] is bool:
            g.add_argument(flag, action=BoolAction, type=_parser(kind), default=argparse.SUPPRESS, help=help_)
            g.add_argument(
                "--no-" + flag[2:],
                dest=name,
                action="store_const",
                const=False,
                default=argparse.SUPPRESS,
                help=f"the same as {flag} false",
            )
        else:
            g.add_argument(
                flag, *aliases, dest=name, type=_parser(kind), default=argparse.SUPPRESS, metavar=_metavar(kind),
                help=help_,
            )
    p.set_defaults(func=cmd_train)


def add_option_flags(group: argparse._ArgumentGroup, tasks: list[str], defaults: dict[str, str]) -> list[str]:
    """One flag per option of ``tasks``' options dataclasses (``--scale``, ``--jpeg-quality``, ...), each
    defaulting to ``None`` (the task's own); ``defaults`` gives each one's default as help text. Returns the dests."""
    from lossnet.train.task_options import OPTION_FIELDS

    dests = []
    for name, (f, kind, owners) in OPTION_FIELDS.items():
        if not set(owners) & set(tasks):
            continue
        flag = "--" + name.replace("_", "-")
        help_ = f"{f.metadata.get('help', '')} {_syntax(kind)} (default: {defaults.get(name, cli_value(f.default))})"
        group.add_argument(flag, type=_parser(kind), metavar=_metavar(kind), help=help_.replace("%", "%%"))
        dests.append(name)
    return dests


def cli_value(value: Any) -> str:
    """A value as the command line spells it (see :func:`lossnet.train.config.cli_value`)."""
    from lossnet.train.changes import cli_value as spell

    return spell(value)


def _one_line_error(message: str) -> NoReturn:
    """argparse's errors for ``train`` as one line (its usage line lists every flag)."""
    print(f"lossnet: error: {message} (see lossnet train --help)", file=sys.stderr)
    raise SystemExit(2)


def cmd_train(args: argparse.Namespace) -> int:
    from lossnet.train.config import TrainConfig, task_config
    from lossnet.train.loop import train
    from lossnet.train.runs import CHECKPOINT, TrainingInterrupted, checkpoint_path, resume_config

    # Only the flags given are in args (their default is SUPPRESS), so "--tv-weight none" can set None.
    from lossnet.train.task_options import OPTION_FIELDS

    names = [f.name for f in fields(TrainConfig) if f.name not in _NOT_FLAGS] + list(OPTION_FIELDS)
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    resume = None
    if args.task is None and not args.resume:
        tasks = ", ".join(TASKS)
        raise InputError(
            f"give the task to train ({tasks}): e.g. lossnet train superres; or the run to continue: "
            "lossnet train --resume RUN_FOLDER"
        )
    if args.resume is not None:
        default = Path(given.get("out_dir", f"runs/{args.task}")) / CHECKPOINT
        resume = checkpoint_path(args.resume) if args.resume else default
        config = resume_config(resume, **given)
        if args.task is not None and config.task != args.task:
            raise InputError(
                f"{resume} is a {config.task!r} run, not {args.task!r}; resume it with: "
                f"{_resume_command(config.task, resume)}"
            )
    else:
        config = task_config(args.task, **given)
    if args.print_config:  # a run in shares resolves them on its first batch first (resolved_weights)
        from lossnet.train.plan import planned_config

        print(json.dumps(planned_config(config).to_dict(), indent=2))
        return 0
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    try:
        result = train(config, resume=resume, progress=True, overwrite=args.overwrite)
    except TrainingInterrupted as stop:
        if stop.checkpoint is None:
            raise
        if main:
            print(
                f"lossnet: interrupted; the checkpoint of step {stop.step} is {stop.checkpoint}\n"
                f"resume with: {_resume_command(config.task, stop.checkpoint)}",
                file=sys.stderr,
            )
        return 130
    if not main:
        return 0
    if result.val:
        print(f"validation: {validation_summary(config.task, result.val)}", file=sys.stderr)
    if result.skipped_files:
        n = len(result.skipped_files)
        print(f"skipped {n} unreadable training file{'s' if n > 1 else ''} (listed in run.json)", file=sys.stderr)
    if result.model is not None:
        model = shlex.quote(str(result.model))
        flags = " ".join(["--model", model, "IMAGE", "--out", "OUT", TASKS[config.task].apply_flags]).rstrip()
        print(f"wrote {result.model} (apply it with: lossnet apply {flags})")
    else:
        print(
            f"stopped at step {result.step} of {config.steps}; continue with: "
            f"{_resume_command(config.task, result.checkpoint)}"
        )
    return 0


def _resume_command(task: str, checkpoint: Path) -> str:
    return f"lossnet train {task} --resume {shlex.quote(str(checkpoint))}"


def _default(name: str) -> str:
    """The default of a config field for each task, as the command line spells it."""
    from lossnet.train.config import TASK_PRESETS, cli_value, task_config
    from lossnet.train.task_options import OPTION_FIELDS

    if name in OPTION_FIELDS:  # a task's option: the default of the tasks that take it
        values = {task: task_config(task).task_options[name] for task in OPTION_FIELDS[name][2]}
    else:
        values = {task: getattr(task_config(task), name) for task in TASK_PRESETS}
    if name == "out_dir":
        return "runs/TASK"
    groups: dict[str, list[str]] = {}
    for task, value in values.items():
        groups.setdefault("none" if value in (None, {}) else cli_value(value), []).append(task)
    if len(groups) == 1:
        return next(iter(groups))
    return ", ".join(f"{text} for {'/'.join(tasks)}" for text, tasks in groups.items())


def _syntax(kind: Any) -> str:
    """How to write a value of a config field's type, where its name alone does not say."""
    base, optional = _unwrap(kind)
    if base is bool:
        return "BOOL is true/false, yes/no or 1/0" + (" or none." if optional else ".")
    if typing.get_origin(base) is dict and typing.get_args(base)[1] is float:
        return "Syntax: relu2_2=1,relu3_3=0.5 (a bare name weighs 1); none = the preset's; '' = no layers."
    if typing.get_origin(base) is dict:
        return "Syntax: channels=16,upsample=resize (values read as JSON where they parse)."
    return ""


def _unwrap(kind: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; ``X`` -> ``(X, False)``."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return kind, False


def _parser(kind: Any) -> Any:
    """A string-to-value parser for a config field's type (``none`` means None where allowed)."""
    base, optional = _unwrap(kind)
    origin = typing.get_origin(base)
    if origin is tuple:
        inner = _parser(typing.get_args(base)[0])
        convert = lambda text: tuple(inner(t) for t in text.split(",")) * (1 if "," in text else 2)  # noqa: E731
    elif origin is dict and typing.get_args(base)[1] is float:
        convert = lambda text: {} if text == "none" else layer_weights_arg(text)  # noqa: E731
    elif origin is dict:
        convert = _kwargs_arg
    elif base is bool:
        convert = bool_arg
    else:
        convert = base

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        try:
            return convert(text)
        except ValueError:
            accepted = _metavar(kind)
            if base is bool:
                accepted = "true/false, yes/no or 1/0" + (" (or none)" if optional else "")
            raise argparse.ArgumentTypeError(f"expected {accepted}; got {text!r}") from None

    parse.__name__ = getattr(base, "__name__", str(base))
    return parse


def _kwargs_arg(text: str) -> dict[str, Any]:
    """``channels=16,upsample=resize`` -> ``{"channels": 16, "upsample": "resize"}`` (values as JSON when they parse)."""
    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(item)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _metavar(kind: Any) -> str:
    base, _ = _unwrap(kind)
    origin = typing.get_origin(base)
    if origin is tuple:
        return "LOW,HIGH"
    if origin is dict and typing.get_args(base)[1] is float:
        return "LAYER=WEIGHT,..."
    if origin is dict:
        return "NAME=VALUE,..."
    return getattr(base, "__name__", "VALUE").upper()


@cache
def _field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (read from its source; empty if unavailable)."""
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            text = " ".join(after.value.value.split()).replace("``", "").replace("None", "none")
            docs[node.target.id] = text.replace("%", "%%")
    return docs
