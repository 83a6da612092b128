"""The explore subcommands: ``stylize``, ``invert``, ``activations``, ``sweep`` and ``report``.

Each parses its flags, calls the one :mod:`lossnet.explore.commands` function of its name
(which reads the images, builds the loss network, runs and writes the outputs), shows the
progress the library reports and prints the results.
"""

from __future__ import annotations

import argparse
import sys

import lossnet
from lossnet.cli.common import (
    add_backbone_options,
    add_share_options,
    print_balance,
    share_arguments,
    add_term_options,
    check_output_file,
    layer_weights_arg,
    term_arguments,
)
from lossnet.data.io import IMAGE_SUFFIXES
from lossnet.errors import InputError
from lossnet.explore import commands
from lossnet.explore.commands import Setup
from lossnet.explore.optimize import INITS
from lossnet.runtime import PRECISION_CHOICES, PRECISION_HELP


def layers_arg(text: str) -> list[str]:
    """Parse ``relu1_2,relu2_2`` into names (checked later against the network, with suggestions)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer names such as relu2_2,relu3_3; got {text!r}")
    return names


def floats_arg(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1,10,100; got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers such as 1,10,100; got {text!r}")
    return values


class _Progress:
    """A tqdm bar on stderr, sized and advanced by the library's ``progress(done, total, terms)``."""

    def __init__(self, desc: str) -> None:
        self.desc, self.bar = desc, None

    def __call__(self, done: int, total: int, terms: dict[str, float]) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, file=sys.stderr, unit="step", mininterval=0.5, leave=False)
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(loss=f"{terms['total']:.4g}", refresh=False)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _setup(args: argparse.Namespace) -> Setup:
    """The loss network's weights, the device and precision (resolved by the library) and the input bound."""
    return Setup(args.weights, args.preprocessing, args.device, args.precision, args.max_size)


def _optimize_config(args: argparse.Namespace) -> lossnet.explore.OptimizeConfig:
    return lossnet.explore.OptimizeConfig(steps=args.steps, optimizer=args.optimizer, lr=args.lr, levels=args.levels)


def _stylize_config(args: argparse.Namespace) -> lossnet.explore.StylizeConfig:
    from lossnet.explore.stylize import StylizeConfig

    defaults = StylizeConfig()
    return StylizeConfig(
        arch=args.arch,
        content_layers=args.content_layers or defaults.content_layers,
        style_layers=defaults.style_layers if args.style_layers is None else args.style_layers,
        style_family=args.style_family,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        init=args.init,
        style_scale=args.style_scale,
        preserve_color=args.preserve_color,
        seed=args.seed,
        optimize=_optimize_config(args),
        terms=term_arguments(args, skip=_OWN_TERM_FLAGS),
        shares=_shares(args),
    )


def _shares(args: argparse.Namespace) -> dict[str, float]:
    """The ``--*-share`` flags (empty: the weights as given); ``--balance shares`` alone is an error here."""
    shares = share_arguments(args)
    if shares is not None and not shares:
        raise InputError(
            "--balance shares needs a share per family in use: e.g. --feature-share 0.5 --style-share 0.45 "
            "--tv-share 0.05 (stylize has no preset to take them from)"
        )
    return shares or {}


def _wrote(run: commands.CommandRun) -> None:
    """The files written, then the precision the library resolved (once, for the whole command)."""
    print("\n".join([*(f"wrote {p}" for p in run.written), run.runtime.summary]))


def cmd_stylize(args: argparse.Namespace) -> int:
    config, setup = _stylize_config(args), _setup(args)
    with _Progress("stylize") as progress:
        run = commands.run_stylize(args.content, args.style, args.out, config, setup, args.curve, progress)
    result = run.result
    if result.balance is not None:
        print_balance(result.balance)
    # One set of numbers: the written image's terms, the progress bar's last loss and the curve's last point.
    steps = len(result.optimization.history)
    print(f"terms of the result (the last of the {steps} steps of the progress bar and of the loss curve):")
    for name, value in result.optimization.final.items():
        print(f"{name:<18} {value:12.6g}")
    measures = run.measures
    print("the result against the content and style (lossnet.metrics.style; ratio 1: no closer than the content):")
    print(f"{'colour ratio':<18} {measures.colour:12.3f}\n{'texture ratio':<18} {measures.texture:12.3f}")
    print(f"{'layout corr.':<18} {measures.layout:12.3f}")
    _wrote(run)
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    from lossnet.explore.invert import InvertConfig

    config = InvertConfig(
        arch=args.arch, layers=tuple(args.layers), style=not args.no_style, tv_weight=args.tv_weight,
        seed=args.seed, optimize=_optimize_config(args),
    )  # fmt: skip
    setup = _setup(args)
    with _Progress("invert") as progress:
        run = commands.run_invert(args.image, args.out, config, setup, progress)
    result = run.result
    print(f"{'reconstruction':<28} {'MSE start':>12} {'MSE end':>12} {'PSNR dB':>8}")
    print(f"{'noise start':<28} {'':>12} {'':>12} {result.start_psnr:8.2f}")
    for r in result.feature + result.style:
        print(f"{r.label:<28} {r.loss_start:12.5g} {r.loss_end:12.5g} {r.psnr:8.2f}")
    _wrote(run)
    return 0


def cmd_activations(args: argparse.Namespace) -> int:
    run = commands.run_activations(args.image, args.out, args.layers, args.top_k, args.arch, _setup(args))
    _wrote(run)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    config = _stylize_config(args)
    sets = [layers_arg(s) for s in args.style_layer_sets.split(";")] if args.style_layer_sets else None
    setup = _setup(args)
    with _Progress("sweep") as progress:
        run = commands.run_sweep(
            args.content, args.style, args.out, config, args.ratios, sets, args.models, setup, progress
        )
    for row in run.result.rows:
        for cell in row:
            print(
                f"{cell.label.replace(chr(10), ', '):<40} content {cell.content_loss:10.4g}  style {cell.style_loss:10.4g}"
            )
    _wrote(run)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lossnet.explore.invert import InvertConfig
    from lossnet.explore.report import ReportConfig

    invert_config = InvertConfig(
        arch=args.arch, layers=tuple(args.layers), tv_weight=0.01, seed=args.seed, optimize=_optimize_config(args)
    )
    config = ReportConfig(invert=invert_config, stylize=_stylize_config(args), ratios=args.ratios, top_k=args.top_k)
    setup = _setup(args)
    with _Progress("report") as progress:
        run = commands.run_report(
            args.content, args.style, args.out, config, setup, args.screenshot, args.palette, progress
        )
    _wrote(run)
    return 0


def _network(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss network")
    add_backbone_options(g, "vgg16", "default vgg16")
    g.add_argument("--device", default="auto", help="auto (default: CUDA when available, else CPU) | cpu | cuda | cuda:N")
    g.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help="the loss network's " + PRECISION_HELP)
    g.add_argument("--max-size", type=int, help="shrink inputs to this longer side (default 512 on CPU, 1024 on GPU)")


def _optimisation(p: argparse.ArgumentParser, steps: int, levels: int) -> None:
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=steps, help=f"optimiser steps per optimisation (default {steps})")
    g.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="the optimiser (default lbfgs)")
    g.add_argument("--lr", type=float, help="step size (default 1 for L-BFGS, 0.02 for Adam)")
    g.add_argument("--levels", type=int, default=levels, help=f"coarse-to-fine pyramid levels (default {levels})")
    g.add_argument("--seed", type=int, default=0, help="seed of the noise starts (default 0)")


#: The term keywords stylize spells its own way (relative to --content-weight / --style-weight), or leaves out:
#: its feature and Gram terms are MSE (their criterion is not a flag here).
_OWN_TERM_FLAGS = ("feature_layers", "style_layers", "tv_weight", "criterion")


def _style_options(p: argparse.ArgumentParser) -> None:
    from lossnet.explore.stylize import STYLE_FAMILIES, StylizeConfig

    d = StylizeConfig()
    g = p.add_argument_group("style transfer")
    g.add_argument("--content-layers", type=layer_weights_arg, help="e.g. relu2_2=1 (default relu2_2)")
    g.add_argument(
        "--style-layers",
        type=layer_weights_arg,
        help="e.g. relu1_2,relu2_2,relu3_3,relu4_3 (the default), of --style-family; '' for none (other families alone)",
    )
    g.add_argument(
        "--style-family",
        choices=list(STYLE_FAMILIES),
        default=d.style_family,
        help=f"what the style layers compare: Gram matrices, sliced Wasserstein, mean/std (default {d.style_family})",
    )
    g.add_argument("--content-weight", type=float, default=d.content_weight, help=f"default {d.content_weight:g}")
    g.add_argument("--style-weight", type=float, default=d.style_weight, help=f"default {d.style_weight:g}")
    g.add_argument("--tv-weight", type=float, default=d.tv_weight, help=f"default {d.tv_weight:g}")
    g.add_argument(
        "--init",
        choices=list(INITS),
        default=d.init,
        help=f"start image: the content, noise, or the content recoloured to the style's colours (default {d.init})",
    )
    g.add_argument("--style-scale", type=float, default=d.style_scale, help="style size / content size (default 1)")
    g.add_argument("--preserve-color", action="store_true", help="transfer luminance only, keep the content's colours")
    g = p.add_argument_group(
        "more terms (any family of lossnet.terms.registry; weights as given; a style family's compare with the "
        "style image, the others with the content image)"
    )
    add_term_options(g, skip=_OWN_TERM_FLAGS, default="off")
    g = p.add_argument_group("recipe in shares (lossnet.terms.shares)")
    add_share_options(g, "calibrated on the mean of the content and style images")


def _checked(func, out_suffixes: tuple[str, ...] = IMAGE_SUFFIXES):  # type: ignore[no-untyped-def]
    """Check the cheap things (sizes, output paths, the browser) before any image is read or optimised."""

    def run(args: argparse.Namespace) -> int:
        check_output_file(args.out, "--out", out_suffixes)
        if getattr(args, "curve", None):
            check_output_file(args.curve, "--curve")
        if getattr(args, "screenshot", None):
            from lossnet.explore.report import find_browser

            check_output_file(args.screenshot, "--screenshot")
            if find_browser() is None:
                raise InputError(
                    "--screenshot needs a headless browser (Chromium) and none was found: install one "
                    "(e.g. apt-get install chromium), set LOSSNET_BROWSER, or leave out --screenshot"
                )
        return func(args)

    return run


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``stylize``, ``invert``, ``activations``, ``sweep`` and ``report`` to the subcommands."""
    from lossnet.explore.invert import DEFAULT_LAYERS
    from lossnet.explore.sweep import DEFAULT_RATIOS

    layers_help = f"comma-separated layer names (default {','.join(DEFAULT_LAYERS)})"
    ratios = ",".join(f"{r:g}" for r in DEFAULT_RATIOS)

    p = sub.add_parser("stylize", help="style transfer by image optimisation (Gatys et al.)")
    builtin = ", ".join(lossnet.data.DEFAULT_IMAGES)
    p.add_argument("content", help=f"content image file, or a built-in image ({builtin})")
    p.add_argument("style", help="style image file, or a built-in image (grass, brick, ...)")
    p.add_argument("--out", default="stylized.png", help="output image (default stylized.png)")
    p.add_argument("--curve", help="loss-curve PNG (default: OUT with _loss.png)")
    _style_options(p)
    _network(p)
    from lossnet.explore.stylize import StylizeConfig

    _optimisation(p, steps=StylizeConfig().optimize.steps, levels=1)
    p.set_defaults(func=_checked(cmd_stylize))

    p = sub.add_parser("invert", help="reconstruct an image from each layer's features and from Gram matrices")
    p.add_argument("image", help="image file")
    p.add_argument("--layers", type=layers_arg, default=list(DEFAULT_LAYERS), help=layers_help)
    p.add_argument("--no-style", action="store_true", help="feature reconstructions only")
    p.add_argument(
        "--tv-weight", type=float, default=0.01, help="TV weight, relative to the normalised terms (default 0.01)"
    )
    p.add_argument("--out", default="invert_sheet.png", help="contact sheet (default invert_sheet.png)")
    _network(p)
    _optimisation(p, steps=300, levels=3)
    p.set_defaults(func=_checked(cmd_invert))

    p = sub.add_parser("activations", help="per-layer activation maps of the strongest channels")
    p.add_argument("image", help="image file")
    p.add_argument("--layers", type=layers_arg, default=list(DEFAULT_LAYERS), help=layers_help)
    p.add_argument("--top-k", type=int, default=4, help="channels per layer (default 4)")
    p.add_argument("--out", default="activations.png", help="contact sheet (default activations.png)")
    _network(p)
    p.set_defaults(func=_checked(cmd_activations))

    p = sub.add_parser("sweep", help="a grid over the style/content weight ratio and style layer sets")
    p.add_argument("content", help="content image file")
    p.add_argument("style", help="style image file")
    p.add_argument("--ratios", type=floats_arg, default=list(DEFAULT_RATIOS), help=f"style/content (default {ratios})")
    p.add_argument("--style-layer-sets", help="rows, ';'-separated: 'relu1_2;relu1_2,relu2_2'")
    p.add_argument("--models", nargs="+", metavar="CKPT", help="trained checkpoints to compare instead of optimising")
    p.add_argument("--out", default="sweep.png", help="contact sheet (default sweep.png)")
    _style_options(p)
    _network(p)
    _optimisation(p, steps=100, levels=1)
    p.set_defaults(func=_checked(cmd_sweep))

    p = sub.add_parser("report", help="one self-contained HTML page: inversion, activations, style transfer, sweep")
    p.add_argument("content", help="content image file")
    p.add_argument("style", nargs="?", help="style image file (optional: adds style transfer and the sweep)")
    p.add_argument("--layers", type=layers_arg, default=list(DEFAULT_LAYERS), help=layers_help)
    p.add_argument("--ratios", type=floats_arg, default=list(DEFAULT_RATIOS), help=f"style/content (default {ratios})")
    p.add_argument("--top-k", type=int, default=4, help="channels per layer (default 4)")
    p.add_argument("--out", default="report.html", help="HTML file (default report.html)")
    p.add_argument("--screenshot", help="also render the page to this PNG with headless Chromium")
    p.add_argument("--palette", action="store_true", help="store the screenshot with 256 colours (smaller file)")
    _style_options(p)
    _network(p)
    _optimisation(p, steps=100, levels=3)
    p.set_defaults(func=_checked(cmd_report, (".html", ".htm")))
