"""The ``apply`` subcommand: run a trained network over image files and folders."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lossnet.cli.common import check_output_dir, check_output_file
from lossnet.errors import InputError


def cmd_apply(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lossnet.inference import apply_files
    from lossnet.runtime import resolve

    inputs = [*args.inputs, *(args.input or [])]
    if not inputs:
        raise InputError("apply needs images: give image files and/or folders after the options (or with --input)")
    target = _output_file(args, inputs)  # --out x.png for one image: that file, not a folder named x.png
    if target is None:
        check_output_dir(args.output, "--out")
    fmt = args.format or (FILE_FORMATS[target.suffix.lower()] if target is not None else "png")
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
    out_dir = _scratch_folder(target) if target is not None else Path(args.output)
    try:
        summary = apply_files(
            model,
            inputs,
            out_dir,
            format=fmt,
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
        if target is not None and summary.written:
            os.replace(summary.written[0][1], target)  # the same folder's file system: atomic
            summary.written[0] = (summary.written[0][0], target)
    finally:
        for bar in tile_bar:  # an image that failed mid-way
            bar.close()
        if target is not None:
            shutil.rmtree(out_dir, ignore_errors=True)
    summary.model = summary.model or info
    for path, reason in summary.failed:
        print(f"lossnet: failed: {path}: {reason}", file=sys.stderr)
    extra = [f"{len(summary.failed)} failed"] if summary.failed else []
    if summary.skipped:
        extra.append(f"{len(summary.skipped)} non-image files skipped")
    print(
        f"wrote {len(summary.written)} image{'s' if len(summary.written) != 1 else ''} to {target or args.output} "
        f"with {summary.model}" + (f"; {', '.join(extra)}" if extra else "")
    )
    if summary.model is not None and summary.model.format == "onnx":
        print("onnxruntime: computes in the file's own dtype (--precision applies to .safetensors and TorchScript)")
    else:
        print(runtime.summary)
    return 0 if summary.ok else 1


#: The file suffixes ``--out`` may end in for one image, and the format each writes.
FILE_FORMATS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg"}


def _output_file(args: argparse.Namespace, inputs: list[str]) -> Path | None:
    """The file that ``--out`` names, or ``None`` for a folder: a path ending in one of :data:`FILE_FORMATS`'
    suffixes that is not an existing folder is a file, allowed for one input image only."""
    out = Path(args.output)
    if out.suffix.lower() not in FILE_FORMATS or out.is_dir():
        return None
    if len(inputs) != 1 or Path(inputs[0]).is_dir():
        got = f"the folder {inputs[0]}" if len(inputs) == 1 else f"{len(inputs)} inputs"
        raise InputError(
            f"--out {args.output} names an image file, but apply writes one image per input and got {got}; "
            f"give a folder for them, e.g. --out {out.with_suffix('')}"
        )
    wanted = FILE_FORMATS[out.suffix.lower()]
    if args.format is not None and args.format != wanted:
        raise InputError(f"--format {args.format} does not match --out {args.output}; drop one of them")
    if out.exists() and out.resolve() == Path(inputs[0]).resolve():
        raise InputError(f"--out {args.output} is the input itself; write the output elsewhere")
    return check_output_file(args.output, "--out", tuple(FILE_FORMATS))


def _scratch_folder(target: Path) -> Path:
    """A new hidden folder beside ``target`` (so that moving the output there is atomic), for :func:`apply_files`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


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
        help="output folder (keeps the inputs' relative paths), or, for one input image, the output file "
        "(a name ending in .png, .jpg or .jpeg) (alias: --output)",
    )
    p.add_argument(
        "--format", choices=list(FORMATS), default=None, help="output format (default png, or --out FILE's suffix)"
    )
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
