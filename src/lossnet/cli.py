"""The ``lossnet`` command line: one subcommand per task, each a thin shell over a library call."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

import lossnet
from lossnet.errors import LossnetError


def _layer_weights(text: str) -> dict[str, float]:
    """Parse ``relu2_2=1,relu3_3=0.5`` (a bare name means weight 1)."""
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, weight = item.partition("=")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight {item!r}: expected NAME or NAME=NUMBER") from None
    return out


def _weights(text: str) -> str | None:
    return None if text == "none" else text


def _add_loss_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss network and terms")
    g.add_argument("--preset", help=f"a published recipe: {', '.join(lossnet.PRESETS)}")
    g.add_argument("--arch", help="loss network (default vgg16, or the preset's): " + ", ".join(lossnet.ARCHS))
    g.add_argument(
        "--weights",
        type=_weights,
        default="imagenet",
        help="imagenet | hed | auto | none | PATH (.pth, .safetensors, .h5); default imagenet",
    )
    g.add_argument("--preprocessing", choices=["torch", "caffe"], help="override the guess for a weight file")
    g.add_argument("--feature-layers", type=_layer_weights, help="e.g. relu2_2=1,relu3_3=0.5")
    g.add_argument("--style-layers", type=_layer_weights, help="e.g. relu1_2=5,relu2_2=5")
    g.add_argument("--pixel-weight", type=float)
    g.add_argument("--tv-weight", type=float)
    g.add_argument("--criterion", choices=list(lossnet.losses.CRITERIA))


def _build_loss(args: argparse.Namespace) -> lossnet.PerceptualLoss:
    kwargs = lossnet.losses.get_preset(args.preset).kwargs() if args.preset else {"feature_layers": {"relu2_2": 1.0}}
    for key in ("arch", "feature_layers", "style_layers", "pixel_weight", "tv_weight", "criterion"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    return lossnet.PerceptualLoss(weights=args.weights, preprocessing=args.preprocessing, **kwargs)


def _print_terms(terms: dict[str, float]) -> None:
    width = max(len(k) for k in terms)
    for name, value in terms.items():
        if name == "total":
            print("-" * (width + 14))
        print(f"{name:<{width}}  {value:12.6g}")


def cmd_layers(args: argparse.Namespace) -> int:
    from lossnet.backbones.vgg import layer_info

    infos = layer_info(args.arch)
    print(f"{'name':<9} {'index':>5} {'channels':>8} {'stride':>6}  (min input = stride)")
    for info in infos:
        print(f"{info.name:<9} {info.index:>5} {info.channels:>8} {info.downsampling:>6}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lossnet.data.io import load_image, resize_longer_side

    pred, target = load_image(args.pred), load_image(args.target)
    if args.size:
        pred, target = resize_longer_side(pred, args.size), resize_longer_side(target, args.size)
    if pred.shape != target.shape:
        raise lossnet.InputError(
            f"the images differ in size: {tuple(pred.shape[-2:])} and {tuple(target.shape[-2:])}; "
            "resize them to match (or pass --size to resize both)"
        )
    loss = _build_loss(args)
    print(
        f"weights: {loss.extractor.weights_description if loss.extractor else 'none (pixel/TV only)'}", file=sys.stderr
    )
    with torch.no_grad():
        terms = {k: float(v) for k, v in loss.terms(pred, target).items()}
    _print_terms(terms)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lossnet.demo import DemoConfig, run_demo

    config = DemoConfig(out_dir=Path(args.out), weights=args.weights, image=args.image, size=args.size)
    result = run_demo(config)
    print(f"Perceptual-loss breakdown: degraded {config.image} ({config.size}px) against the clean image")
    print(f"loss network: vgg16, weights {result.weights}; every term weight 1 (raw values), MSE\n")
    names = list(result.rows)
    terms = list(result.rows[names[0]])
    print(f"{'term':<16}" + "".join(f"{n:>14}" for n in names))
    print(f"{'PSNR (dB)':<16}" + "".join(f"{result.psnr[n]:>14.2f}" for n in names))
    for t in terms:
        print(f"{t:<16}" + "".join(f"{result.rows[n][t]:>14.5g}" for n in names))
    print(f"\nwrote {result.sheet}\nwrote {result.table}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossnet", description="Perceptual losses for image-to-image networks.")
    parser.add_argument("--version", action="version", version=f"lossnet {lossnet.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("layers", help="list a loss network's layer names")
    p.add_argument("arch", nargs="?", default="vgg16", help="e.g. vgg16, vgg19_bn (default vgg16)")
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("compare", help="print the perceptual-loss breakdown between two images")
    p.add_argument("pred", help="the image to score (e.g. a network's output)")
    p.add_argument("target", help="the reference image")
    p.add_argument("--size", type=int, help="resize both so the longer side is SIZE pixels")
    _add_loss_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("demo", help="the main job, offline: loss breakdown and feature-difference maps")
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    p.add_argument("--weights", type=_weights, default="hed", help="hed (default, offline) | imagenet | auto | PATH")
    p.add_argument("--image", default="astronaut", help="a default image: " + ", ".join(lossnet.data.DEFAULT_IMAGES))
    p.add_argument("--size", type=int, default=256, help="longer side in pixels (default 256)")
    p.set_defaults(func=cmd_demo)
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
