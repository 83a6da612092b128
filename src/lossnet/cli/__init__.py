"""The ``lossnet`` command line: one subcommand per task, each a thin shell over a library call.

Each module here registers the subcommands of one concern: :mod:`~lossnet.cli.core`
(``layers``, ``compare``, ``demo``), :mod:`~lossnet.cli.train` (``train``),
:mod:`~lossnet.cli.apply` (``apply``), :mod:`~lossnet.cli.evaluate` (``eval``),
:mod:`~lossnet.cli.explore` (``stylize``, ``invert``, ``activations``, ``sweep``, ``report``);
:mod:`~lossnet.cli.common` holds the options they share.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import lossnet
from lossnet.cli import apply, core, evaluate, explore, train
from lossnet.errors import LossnetError

#: The modules that register subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (core, train, apply, evaluate, explore)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossnet", description="Perceptual losses for image-to-image networks.")
    parser.add_argument("--version", action="version", version=f"lossnet {lossnet.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 for a user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="lossnet: %(message)s")
    try:
        return int(args.func(args))
    except (LossnetError, FileNotFoundError) as err:
        print(f"lossnet: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `lossnet layers | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("lossnet: interrupted", file=sys.stderr)
        return 130
