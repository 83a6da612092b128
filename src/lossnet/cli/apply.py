"""The ``apply`` subcommand: run a trained network over image files and folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lossnet.cli.common import check_output_dir
from lossnet.errors import InputError


def cmd_apply(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lossnet.inference import apply_files
    from lossnet.runtime import resolve

    check_output_dir(args.output, "--out")
    inputs = [*args.inputs, *(args.input or [])]
    if not inputs:
        raise InputError("apply needs images: give image files and/or folders after the options (or with --input)")
    many = [False]
    tile_bar: list[Any] = []  # the current image's tile bar, if any

    def progress(jobs: list[Any]) -> Any:
        many[0] = len(jobs) > 1
        return tqdm(jobs, desc="apply", unit="image", disable=None if many[0] else True)

    def on_tile(source: Path, done: int, total: int) -> None:
        if done == 1:  # a new image
            disable = True if total == 1 else None  # None: only on a terminal
            bar = tqdm(total=total, desc=source.name, unit="tile", leave=not many[0], disable=disable)
            tile_bar[:] = [bar]
        tile_bar[0].update(done - tile_bar[0].n)
        if done == total:
            tile_bar.pop().close()

    runtime = resolve(args.precision, args.device)
    model, info, tile = _styled(args)
    try:
        summary = apply_files(
            model,
            inputs,
            args.output,
            format=args.format,
            quality=args.quality,
            tile=tile,
            overlap=args.overlap,
            device=args.device,
            precision=runtime,
            progress=progress,
            on_tile=on_tile,
            bit_depth=args.bit_depth if args.bit_depth == "match" else int(args.bit_depth),
            style=args.style if args.style_mix is None else args.style_mix,
        )
    finally:
        for bar in tile_bar:  # an image that failed mid-way
            bar.close()
    summary.model = summary.model or info
    for path, reason in summary.failed:
        print(f"lossnet: failed: {path}: {reason}", file=sys.stderr)
    extra = [f"{len(summary.failed)} failed"] if summary.failed else []
    if summary.skipped:
        extra.append(f"{len(summary.skipped)} non-image files skipped")
    print(
        f"wrote {len(summary.written)} image{'s' if len(summary.written) != 1 else ''} to {args.output} "
        f"with {summary.model}" + (f"; {', '.join(extra)}" if extra else "")
    )
    if summary.model is not None and summary.model.format == "onnx":
        print("onnxruntime: computes in the file's own dtype (--precision applies to .safetensors and TorchScript)")
    else:
        print(runtime.summary)
    return 0 if summary.ok else 1


def _styled(args: argparse.Namespace) -> tuple[Any, Any, int | None]:
    """``(model, info, tile)``: a style_any network bound to ``--style-image`` (``--alpha``, ``--mask``), else the path."""
    from lossnet.inference.styles import load_styled_model, takes_style_images

    given = [flag for flag, v in (("--alpha", args.alpha), ("--mask", args.mask)) if v is not None]
    if not args.style_image:
        if given:
            raise InputError(f"{' and '.join(given)} go with --style-image (a style_any network's style)")
        if Path(args.model).is_file() and takes_style_images(args.model):
            raise InputError(
                f"{args.model} is a style_any network: it takes its style at inference; give --style-image STYLE "
                "(and --alpha 0..1 for less of it)"
            )
        return args.model, None, args.tile or None
    model, info = load_styled_model(
        args.model,
        args.style_image,
        alpha=1.0 if args.alpha is None else args.alpha,
        mask=args.mask,
        style_size=args.style_size or None,
        device=args.device,
    )
    return model, info, None if args.mask else args.tile or None  # a mask is stretched to the whole image


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``apply`` to the subcommands."""
    from lossnet.inference import FORMATS
    from lossnet.runtime import PRECISION_CHOICES, PRECISION_HELP

    p = sub.add_parser(
        "apply",
        help="run a trained network (a lossnet train checkpoint, or its ONNX or TorchScript export) on images",
        description="Run a trained network on image files or folders (searched recursively). Exit status: "
        "0 if every image was written, 1 if some failed (each is reported), 2 for a usage error "
        "(a missing or unreadable checkpoint, say).",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="checkpoint written by `lossnet train`, or a .onnx or TorchScript file written by `lossnet export`",
    )
    p.add_argument("inputs", nargs="*", metavar="PATH", help="image files and/or folders")
    p.add_argument(
        "--input",
        nargs="+",
        action="extend",
        metavar="PATH",
        help="the same as the positional PATHs (alias, kept for one release)",
    )
    p.add_argument(
        "--out", "--output", dest="output", required=True, metavar="DIR",
        help="output folder (keeps the inputs' relative paths) (alias: --output)",
    )
    p.add_argument("--format", choices=list(FORMATS), default="png", help="output format (default png)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality, 1-100 (default 95)")
    p.add_argument(
        "--bit-depth",
        choices=["match", "8", "16"],
        default="match",
        help="bits per sample of the output: match (default: 16-bit PNG for 16-bit input) | 8 | 16 (PNG only)",
    )
    g = p.add_argument_group("style (a style_multi network: `lossnet info MODEL` lists its styles)")
    pick = g.add_mutually_exclusive_group()
    pick.add_argument("--style", type=int, metavar="K", help="apply style K (0, 1, ...)")
    pick.add_argument(
        "--style-mix", type=_mix, metavar="W,W,...",
        help="blend the styles: one weight per style, summing to 1, e.g. 0.3,0.7",
    )
    s = p.add_argument_group("style_any networks (arbitrary style: the style is given here)")
    s.add_argument(
        "--style-image", action="append", metavar="IMAGE",
        help="the style image; give it twice with --mask for two styles in two regions",
    )
    s.add_argument("--alpha", type=float, help="content-style trade-off: 1 full style (default), 0 the content")
    s.add_argument(
        "--mask", metavar="IMAGE",
        help="grey image of the inputs' aspect ratio: the first style where white, the second (or the content) "
        "where black; the image then runs whole (no tiling)",
    )
    s.add_argument(
        "--style-size", type=int, default=512,
        help="longer side the style images are resized to; 0 = as they are (default 512)",
    )
    g = p.add_argument_group("inference")
    g.add_argument(
        "--tile", type=int, default=512, help="largest tile side in input pixels; 0 = whole image (default 512)"
    )
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


def _mix(text: str) -> list[float]:
    """``0.3,0.7`` -> ``[0.3, 0.7]`` (checked against the network's styles when it is loaded)."""
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected weights such as 0.3,0.7; got {text!r}") from None
