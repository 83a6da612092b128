"""The ``export`` and ``info`` subcommands: write a trained network as ONNX or TorchScript, and print its card."""

from __future__ import annotations

import argparse


def cmd_export(args: argparse.Namespace) -> int:
    from lossnet.export import export_model

    report = export_model(args.model, args.output, args.format, fp16=args.fp16, opset=args.opset)
    if args.format == "spandrel":
        print(f"wrote {report} (flat-key .safetensors with Real-ESRGAN's Compact keys: upscaler apps detect it)")
    else:
        print(report)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from lossnet.card import card_lines, read_model_file

    print("\n".join(card_lines(read_model_file(args.model))))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` and ``info`` to the subcommands."""
    from lossnet.export import DEFAULT_OPSET, EXPORT_FORMATS, OPSETS

    p = sub.add_parser(
        "export",
        help="write a trained network as an ONNX or TorchScript file (dynamic batch and size, with its model card), "
        "or a Compact network as the file upscaler apps load",
        description="Export a .safetensors model written by `lossnet train` to ONNX (onnxruntime, apps, other "
        "languages) or TorchScript (C++ libtorch). Batch, height and width stay free; the size rule, value ranges, "
        "channel layout and the model card go into the file's metadata. The file is run next to the network at two "
        "sizes before it is written, and refused if they differ. --format spandrel writes a Compact network as the "
        "flat-key .safetensors that upscaler apps (chaiNNer, ComfyUI, InvokeAI, via spandrel) detect. ONNX needs the "
        "export extra: "
        "pip install 'lossnet[export]'.",
    )
    p.add_argument("--model", required=True, metavar="CKPT", help="model.safetensors written by `lossnet train`")
    p.add_argument("--format", choices=list(EXPORT_FORMATS), default="onnx", help="the file's format (default onnx)")
    p.add_argument("--output", "--out", dest="output", required=True, metavar="FILE",
                   help="the file to write: a .onnx name for ONNX, .pt by convention for TorchScript (alias: --out)")
    p.add_argument("--fp16", action="store_true", help="ONNX only: float16 weights, input and output")
    p.add_argument(
        "--opset",
        type=int,
        default=None,
        help=f"ONNX only: the opset, {OPSETS.start}-{OPSETS.stop - 1} (default {DEFAULT_OPSET})",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "info",
        help="print a model's card and sha256 (.safetensors, .onnx or TorchScript)",
        description="Print what a model file says about its network: task, network and size rule, loss recipe "
        "with its resolved weights, trunk and weights id, steps, data, validation scores, lossnet version, the "
        "file's sha256, and for exported files how to run them. Nothing in the file is run.",
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors checkpoint, or a file written by `lossnet export`")
    p.set_defaults(func=cmd_info)
