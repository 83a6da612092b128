"""The ``lossnet`` command line: one subcommand per task, each a thin shell over a library call.

Each module here registers the subcommands of one concern: :mod:`~lossnet.cli.core`
(``layers``, ``compare``, ``demo``, ``setup-offline``), :mod:`~lossnet.cli.train` (``train``),
:mod:`~lossnet.cli.apply` (``apply``), :mod:`~lossnet.cli.export` (``export``, ``info``), :mod:`~lossnet.cli.evaluate` (``eval``),
:mod:`~lossnet.cli.explore` (``stylize``, ``invert``, ``activations``, ``sweep``, ``report``);
:mod:`~lossnet.cli.common` holds the options they share.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import lossnet
from lossnet.cli import apply, core, evaluate, explore, export, train
from lossnet.cli.common import cli_wording, os_error_line
from lossnet.errors import LossnetError
from lossnet.memory import keep_freed_memory
from lossnet.train.distributed import end_process

#: The modules that register subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (core, train, apply, export, evaluate, explore)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossnet", description="Perceptual losses for image-to-image networks.")
    parser.add_argument("--version", action="version", version=f"lossnet {lossnet.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _flags(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The option strings of one subcommand, e.g. ``{'--out', '--tile', ...}``."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return set(action.choices[command]._option_string_actions)
    return set()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 for a user error).

    A process started by ``torchrun`` that joined a process group does not return: it exits with the status
    (:func:`lossnet.train.distributed.end_process` says why).
    """
    code = _run(argv)
    end_process(code)
    return code


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    keep_freed_memory()  # every command's steps and tiles reuse the memory the last one freed (lossnet.memory)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `lossnet layers | head`
        sys.stderr.close()
        return 0
    except (LossnetError, OSError) as err:
        if isinstance(err, LossnetError) or (isinstance(err, FileNotFoundError) and err.filename is None):
            message = cli_wording(str(err), _flags(parser, args.command))
        elif err.filename is not None:  # a file or folder that cannot be read or written
            message = os_error_line(err)
        else:
            raise
        print("lossnet: error: " + " ".join(message.split()), file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:
        print("lossnet: interrupted", file=sys.stderr)
        return 130


def _configure_logging(verbose: bool) -> None:
    """lossnet's own logs at INFO (DEBUG with ``-v``); every other library's at WARNING, named as such."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("lossnet").setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(_Formatter())


class _Formatter(logging.Formatter):
    """``lossnet: message`` for lossnet's records, ``name: message`` for another library's."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name.split(".")[0]
        return f"{name}: {record.getMessage()}"
