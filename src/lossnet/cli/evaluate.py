"""The ``eval`` subcommand: score trained networks and their baseline on ground-truth images."""

from __future__ import annotations

import argparse
from typing import Any

from lossnet.cli.common import add_weights_option, check_output_dir, layer_weights_arg


def cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lossnet.evaluation import evaluate, method_names, write_tables

    check_output_dir(args.out, "--out")  # before minutes of inference
    paths = [args.model, *(args.compare or [])]
    models = dict(zip(method_names(paths), paths, strict=True))

    def progress(images: list[Any]) -> Any:
        return tqdm(images, desc="eval", unit="image", disable=None if len(images) > 1 else True)

    from lossnet.runtime import resolve

    runtime = resolve(args.precision, args.device)
    result = evaluate(
        models,
        args.data,
        task=args.task,
        task_options={name: getattr(args, name) for name in args.task_option_flags if getattr(args, name) is not None},
        size=args.size,
        feature_arch=args.feature_arch,
        feature_layers=args.feature_layers or None,  # '' gives {}: no feature column
        feature_weights=args.weights,
        lpips=args.lpips,
        lpips_calibration=args.lpips_calibration,
        tile=args.tile or None,
        precision=runtime,
        device=args.device,
        progress=progress,
    )
    csv_path, md_path = write_tables(result, args.out)
    print(result.to_markdown(), end="")
    print(f"\nwrote {csv_path} and {md_path}\n{runtime.summary}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the subcommands."""
    from lossnet.cli.train import add_option_flags, cli_value
    from lossnet.evaluation import EVAL_TASKS
    from lossnet.runtime import PRECISION_CHOICES, PRECISION_HELP
    from lossnet.tasks import TASKS

    p = sub.add_parser(
        "eval",
        help="score trained networks against ground truth (PSNR, SSIM, feature distance, LPIPS)",
        description="Degrade ground-truth images as the networks' task does (downscale by the scale, JPEG, grey), run "
        "each network, and score it and the task's baseline (bicubic, the JPEG input, the grey input) "
        "against the originals: PSNR and SSIM on the Y channel and on RGB (super-resolution: the scale is "
        "shaved off every border), a VGG feature distance, and LPIPS-VGG where its ImageNet VGG16 and "
        "calibration can be had (else n/a, with the reason). Prints a Markdown table and writes "
        "eval.csv and eval.md into --out.",
    )
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint written by `lossnet train`")
    p.add_argument(
        "--compare",
        nargs="+",
        action="extend",
        metavar="CKPT",
        help="more checkpoints of the same task and scale, side by side (e.g. pixel- vs perceptual-loss training)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder of ground-truth images (recursive) or one image; default: the validation images (astronaut, chelsea)",
    )
    p.add_argument("--out", default="outputs/eval", metavar="DIR", help="where eval.csv and eval.md go (default outputs/eval)")
    g = p.add_argument_group("inputs")
    g.add_argument("--task", choices=EVAL_TASKS, help="the task, when the checkpoint does not record it")
    g.add_argument("--size", type=int, help="resize each image's longer side to SIZE first (default: keep)")
    defaults = {"scale": "the network's, which it must be"}
    defaults |= {k: cli_value(v) for t in EVAL_TASKS for k, v in TASKS[t].eval_options.items()}
    p.set_defaults(task_option_flags=add_option_flags(g, list(EVAL_TASKS), defaults))
    g = p.add_argument_group("metrics")
    g.add_argument("--feature-arch", default="vgg16", help="VGG of the feature distance (default vgg16)")
    g.add_argument(
        "--feature-layers",
        type=layer_weights_arg,
        default={"relu2_2": 1.0},
        help="feature distance layers, e.g. relu2_2=1,relu3_3=0.5; '' leaves the column out (default relu2_2=1)",
    )
    add_weights_option(g, "--feature-weights", what="the feature distance's VGG: ")
    g.add_argument(
        "--lpips-calibration",
        metavar="PATH",
        help="the lpips project's weights/v0.1/vgg.pth (default: the file in the installed lpips wheel); "
        "LPIPS also needs torchvision's ImageNet VGG16",
    )
    g.add_argument("--no-lpips", dest="lpips", action="store_false", help="leave the LPIPS column out")
    g = p.add_argument_group("inference")
    g.add_argument(
        "--tile", type=int, default=512, help="largest tile side in input pixels; 0 = whole image (default 512)"
    )
    g.add_argument("--device", default="auto", help="auto (CUDA when available, default) | cpu | cuda | cuda:N")
    g.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    p.set_defaults(func=cmd_eval)
