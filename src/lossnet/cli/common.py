"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse

import lossnet


def layer_weights_arg(text: str) -> dict[str, float]:
    """Parse ``relu2_2=1,relu3_3=0.5`` (a bare name means weight 1)."""
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, weight = item.partition("=")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight {item!r}: expected NAME or NAME=NUMBER") from None
    return out


def weights_arg(text: str) -> str | None:
    return None if text == "none" else text


def add_backbone_options(g: argparse._ArgumentGroup, arch_default: str | None, arch_help: str) -> None:
    """``--arch``, ``--weights`` and ``--preprocessing``: which loss network, with which weights."""
    g.add_argument("--arch", default=arch_default, help=f"loss network ({arch_help}): " + ", ".join(lossnet.ARCHS))
    g.add_argument(
        "--weights",
        type=weights_arg,
        default="imagenet",
        help="imagenet (default) | hed (offline) | auto | none | PATH (.pth, .safetensors, .h5)",
    )
    g.add_argument("--preprocessing", choices=["torch", "caffe"], help="override the guess for a weight file")


def add_loss_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss network and terms")
    g.add_argument("--preset", help=f"a published recipe: {', '.join(lossnet.PRESETS)}")
    add_backbone_options(g, None, "default vgg16, or the preset's")
    g.add_argument("--feature-layers", type=layer_weights_arg, help="e.g. relu2_2=1,relu3_3=0.5")
    g.add_argument("--style-layers", type=layer_weights_arg, help="e.g. relu1_2=5,relu2_2=5")
    g.add_argument("--pixel-weight", type=float)
    g.add_argument("--tv-weight", type=float)
    g.add_argument("--criterion", choices=list(lossnet.losses.CRITERIA))


def build_loss(args: argparse.Namespace, compute_dtype: object = None) -> lossnet.PerceptualLoss:
    kwargs = lossnet.losses.get_preset(args.preset).kwargs() if args.preset else {"feature_layers": {"relu2_2": 1.0}}
    for key in ("arch", "feature_layers", "style_layers", "pixel_weight", "tv_weight", "criterion"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    return lossnet.PerceptualLoss(
        weights=args.weights, preprocessing=args.preprocessing, compute_dtype=compute_dtype, **kwargs
    )


def print_terms(terms: dict[str, float]) -> None:
    width = max(len(k) for k in terms)
    for name, value in terms.items():
        if name == "total":
            print("-" * (width + 14))
        print(f"{name:<{width}}  {value:12.6g}")
