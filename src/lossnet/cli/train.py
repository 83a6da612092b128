"""``lossnet train TASK``: every :class:`~lossnet.train.config.TrainConfig` field is a flag.

The flags are generated from the dataclass, so a new field is on the command line the
moment it exists, with its docstring as help. A flag given overrides the task's recipe
(or, with ``--resume``, the config stored in the checkpoint); a flag left out keeps it.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import types
import typing
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from lossnet.cli.common import layer_weights_arg
from lossnet.data.tasks import TASKS
from lossnet.errors import InputError

# Fields set by the positional argument or with a flag of their own.
_NOT_FLAGS = {"task"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` to the subcommands."""
    from lossnet.train.config import TASK_PRESETS, TrainConfig

    p = sub.add_parser(
        "train",
        help="train a network: superres, style, colorize or restore",
        description="Train an image-transformation network with a perceptual (or per-pixel) loss. "
        "Starts from the task's recipe; every flag overrides one field of it. "
        "Under torchrun --nproc_per_node=N the same command trains with DistributedDataParallel.",
    )
    p.add_argument("task", choices=TASKS, help="what to train: " + ", ".join(f"{t}" for t in TASK_PRESETS))
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="CKPT",
        help="continue a run from CKPT (default OUT_DIR/checkpoint.safetensors) with its stored config",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    docs = _field_docs(TrainConfig)
    hints = typing.get_type_hints(TrainConfig)
    g = p.add_argument_group("config (defaults: the task's recipe; see --print-config)")
    for f in fields(TrainConfig):
        if f.name in _NOT_FLAGS:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        help_ = docs.get(f.name, "")
        if kind is bool:
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_)
        else:
            g.add_argument(flag, type=_parser(kind), default=argparse.SUPPRESS, metavar=_metavar(kind), help=help_)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from lossnet.train.config import TrainConfig, task_config
    from lossnet.train.loop import CHECKPOINT, resume_config, train

    # Only the flags given are in args (their default is SUPPRESS), so "--tv-weight none" can set None.
    given = {
        f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name not in _NOT_FLAGS and hasattr(args, f.name)
    }
    resume = None
    if args.resume is not None:
        resume = Path(args.resume) if args.resume else Path(given.get("out_dir", f"runs/{args.task}")) / CHECKPOINT
        config = resume_config(resume, **given)
        if config.task != args.task:
            raise InputError(f"{resume} is a {config.task!r} run, not {args.task!r}")
    else:
        config = task_config(args.task, **given)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    result = train(config, resume=resume, progress=True)
    if result.val:
        if "psnr" in result.val:
            print(f"validation: PSNR {result.val['psnr']:.2f} dB, SSIM {result.val['ssim']:.4f}", file=sys.stderr)
        else:  # style: the weighted loss terms on the validation images
            print("validation: " + ", ".join(f"{k} {v:.4g}" for k, v in result.val.items()), file=sys.stderr)
    if result.skipped_files:
        print(f"skipped {result.skipped_files} unreadable training files", file=sys.stderr)
    if result.model is not None:
        print(f"wrote {result.model} (apply it with: lossnet apply --model {result.model} --input IMAGE)")
    else:
        print(f"stopped at step {result.step}; continue with: lossnet train {config.task} --resume {result.checkpoint}")
    return 0


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
    else:
        convert = base

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_metavar(kind)}; got {text!r}") from None

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
            text = " ".join(after.value.value.split()).replace("``", "")
            docs[node.target.id] = text.replace("%", "%%")
    return docs
