"""The ``apply`` subcommand: run a trained network over image files and folders."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_apply(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lossnet.apply import apply_files
    from lossnet.runtime import resolve

    def progress(jobs: list[Any]) -> Any:
        return tqdm(jobs, desc="apply", unit="image", disable=None if len(jobs) > 1 else True)

    runtime = resolve(args.precision, args.device)
    summary = apply_files(
        args.model,
        args.input,
        args.output,
        format=args.format,
        quality=args.quality,
        tile=args.tile or None,
        overlap=args.overlap,
        device=args.device,
        precision=runtime,
        progress=progress,
    )
    for path, reason in summary.failed:
        print(f"lossnet: failed: {path}: {reason}", file=sys.stderr)
    extra = [f"{len(summary.failed)} failed"] if summary.failed else []
    if summary.skipped:
        extra.append(f"{len(summary.skipped)} non-image files skipped")
    print(
        f"wrote {len(summary.written)} image{'s' if len(summary.written) != 1 else ''} to {args.output} "
        f"with {summary.model}" + (f"; {', '.join(extra)}" if extra else "")
    )
    print(runtime.summary)
    return 0 if summary.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``apply`` to the subcommands."""
    from lossnet.apply import FORMATS
    from lossnet.runtime import PRECISION_CHOICES, PRECISION_HELP

    p = sub.add_parser(
        "apply",
        help="run a trained network (a lossnet train checkpoint) on images",
        description="Run a trained network on image files or folders (searched recursively). Exit status: "
        "0 if every image was written, 1 if some failed (each is reported), 2 for a usage error "
        "(a missing or unreadable checkpoint, say).",
    )
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint written by `lossnet train`")
    p.add_argument("--input", required=True, nargs="+", metavar="PATH", help="image files and/or folders")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder (keeps the inputs' relative paths)")
    p.add_argument("--format", choices=list(FORMATS), default="png", help="output format (default png)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality, 1-100 (default 95)")
    g = p.add_argument_group("inference")
    g.add_argument("--tile", type=int, default=512, help="largest tile side in input pixels; 0 = whole image (512)")
    g.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles (default 32)")
    g.add_argument("--device", default="auto", help="auto (CUDA when available, default) | cpu | cuda | cuda:N")
    g.add_argument(
        "--precision",
        "--dtype",
        choices=PRECISION_CHOICES,
        default="auto",
        help=PRECISION_HELP,
    )
    p.set_defaults(func=cmd_apply)
