"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import lossnet
from lossnet.data.io import IMAGE_SUFFIXES
from lossnet.errors import InputError
from lossnet.terms.registry import FAMILIES, OPTIONS, Option, family_of, term_keywords


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


#: The loss-network weights of every command, one default: ImageNet where it can be had, else HED.
WEIGHTS_DEFAULT = "auto"
WEIGHTS_HELP = (
    "auto (default: ImageNet where it can be had, else the offline HED VGG16; logged) | imagenet | hed | "
    "none (random) | PATH (.pth, .safetensors, .h5)"
)
#: Old spellings of ``--weights``, still accepted: ``{alias: flag}``. Messages name the flag.
FLAG_ALIASES = {"--loss-weights": "--weights", "--feature-weights": "--weights"}


def add_weights_option(g: argparse._ActionsContainer, *aliases: str, dest: str = "weights", what: str = "") -> None:
    """``--weights`` (and its old spellings ``aliases``, kept working): the loss network's weights."""
    note = f" (alias: {', '.join(aliases)})" if aliases else ""
    g.add_argument(
        "--weights", *aliases, dest=dest, type=weights_arg, default=WEIGHTS_DEFAULT, help=what + WEIGHTS_HELP + note
    )


def add_backbone_options(g: argparse._ArgumentGroup, arch_default: str | None, arch_help: str) -> None:
    """``--arch``, ``--weights`` and ``--preprocessing``: which loss network, with which weights."""
    g.add_argument("--arch", default=arch_default, help=f"loss network ({arch_help}): " + ", ".join(lossnet.ALL_ARCHS))
    add_weights_option(g)
    g.add_argument(
        "--preprocessing",
        choices=["torch", "caffe"],
        help="a weight file's input preprocessing (default: guessed from the file)",
    )


def bool_arg(text: str) -> bool:
    """``true/false``, ``yes/no``, ``1/0`` in any case; anything else is a ``ValueError``."""
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.strip().lower())
    if value is None:
        raise ValueError(text)
    return value


def _strict_bool(text: str) -> bool:
    try:
        return bool_arg(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected true/false, yes/no or 1/0; got {text!r}") from None


class BoolAction(argparse.Action):
    """``--flag`` alone is true; ``--flag BOOL`` parses BOOL strictly (true/false, yes/no, 1/0), on every command."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("type", _strict_bool)
        super().__init__(option_strings, dest, nargs="?", const=True, metavar="BOOL", **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        setattr(namespace, self.dest, values)


def _option_type(option: Option) -> Any:
    def parse(text: str) -> Any:
        if (option.optional or option.default is None) and text.lower() == "none":
            return None
        try:
            return bool_arg(text) if option.type is bool else option.type(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option.flag} expects {option.type.__name__}; got {text!r}") from None

    parse.__name__ = option.type.__name__
    return parse


def add_term_options(g: argparse._ActionsContainer, skip: Collection[str] = (), default: str = "the preset's") -> None:
    """One flag per family keyword and option of the table of term families (:mod:`lossnet.terms.registry`).

    Every flag defaults to ``None`` (``default`` decides: the preset's, or off); ``skip`` leaves out the
    keywords a command spells its own way (stylize's ``--style-layers`` is relative to ``--style-weight``).
    """
    for name in term_keywords():
        if name in skip:
            continue
        family = family_of(name)
        if family is not None:
            syntax = "e.g. relu2_2=1,relu3_3=0.5" if family.layered else "a number >= 0"
            g.add_argument(
                family.flag,
                type=layer_weights_arg if family.layered else float,
                metavar="LAYER=W,..." if family.layered else "W",
                help=f"{family.help}: {syntax} (default none, or {default})",
            )
            continue
        option = OPTIONS[name]
        if not option.cli:
            continue
        shown = "none" if option.default is None else option.default
        if "(default" in option.help and option.help.endswith(")"):  # the option's help says its default itself
            help_ = option.help[:-1].replace("(default: ", "(default ") + f", or {default})"
        else:
            help_ = f"{option.help} (default {shown}, or {default})"
        if option.type is bool:
            g.add_argument(option.flag, action=BoolAction, help=help_ + "; BOOL is true/false, yes/no or 1/0")
        else:
            metavar = None if option.choices else {int: "N", float: "X"}.get(option.type, "PATH")
            g.add_argument(
                option.flag, type=_option_type(option), choices=option.choices or None, metavar=metavar, help=help_
            )


def term_arguments(args: argparse.Namespace, skip: Collection[str] = ()) -> dict[str, Any]:
    """The term keywords and options given on the command line (those left out, or in ``skip``, are not in the dict)."""
    given = {name: getattr(args, name, None) for name in term_keywords() if name not in skip}
    return {name: value for name, value in given.items() if value is not None}


#: ``--balance``: the term weights as given, or each family's share of the loss resolved to weights.
BALANCE_CHOICES = ("weights", "shares")


def share_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a share >= 0 such as 0.25; got {text!r}")
    return value


def add_share_options(g: argparse._ActionsContainer, where: str) -> None:
    """``--balance`` and one ``--<family>-share`` per family of the table (:mod:`lossnet.terms.shares`)."""
    g.add_argument(
        "--balance",
        choices=BALANCE_CHOICES,
        help=f"weights: the term weights as given; shares: each family gets the share of the loss that its "
        f"--FAMILY-share flag (or the preset) gives it, resolved to weights on this trunk, {where} (default: "
        "shares when a --*-share flag is given, else weights)",
    )
    for name, family in FAMILIES.items():
        g.add_argument(
            f"--{name.replace('_', '-')}-share",
            type=share_arg,
            metavar="S",
            help=f"share of the {family.help.split(' (')[0]} (any positive scale, normalised; 0 turns it off)",
        )


def share_arguments(args: argparse.Namespace) -> dict[str, float] | None:
    """The ``--*-share`` flags given, or ``None`` when the weights are used as given (``--balance weights``)."""
    given = {name: v for name in FAMILIES if (v := getattr(args, f"{name}_share", None)) is not None}
    if args.balance == "weights" and given:
        flag = f"--{next(iter(given)).replace('_', '-')}-share"
        raise InputError(f"{flag} asks for shares, and --balance weights for the weights as given; drop one")
    return given if given or args.balance == "shares" else None


def add_loss_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss network and terms")
    g.add_argument("--preset", help=f"a published recipe (default none): {', '.join(lossnet.PRESETS)}")
    add_backbone_options(g, None, "default vgg16, or the preset's")
    g.add_argument(
        "--pooling", choices=["max", "l2"], help="VGG pooling: max, or DISTS' l2 (default max, or the preset's)"
    )
    g.add_argument(
        "--allow-uncalibrated",
        action=BoolAction,
        default=False,
        help="allow LPIPS/DISTS on a network other than their ImageNet one (HED offline, say); "
        "the terms are then named lpips_like/dists_like. BOOL is true/false, yes/no or 1/0; alone: true "
        "(default False)",
    )
    g = p.add_argument_group("terms (one flag per family of lossnet.terms.registry.FAMILIES)")
    add_term_options(g)
    g = p.add_argument_group("recipes in shares (lossnet.terms.shares)")
    add_share_options(g, "calibrated on the two images")


def build_loss(
    args: argparse.Namespace, compute_dtype: object = None, shares: dict[str, float] | None = None
) -> lossnet.PerceptualLoss:
    """The command's loss: the preset's terms (or relu2_2 features), then every term flag given.

    With ``shares`` (the ``--*-share`` flags), the preset's shares are merged in, every family with a share
    is built, and the merged shares are left in ``shares`` for the caller to calibrate with.

    A recipe that cannot run as asked (layers the trunk lacks, a trunk whose weights cannot be had
    offline) fails with one message that gives every flag that makes it run (:mod:`lossnet.losses.trunk`).
    """
    from lossnet.errors import WeightsUnavailableError
    from lossnet.losses.trunk import check_trunk_layers, run_flags

    preset = lossnet.losses.get_preset(args.preset).kwargs() if args.preset else {"feature_layers": {"relu2_2": 1.0}}
    given = term_arguments(args)
    kwargs = preset | {k: getattr(args, k) for k in ("arch", "pooling") if getattr(args, k) is not None} | given
    arch, strict = kwargs.setdefault("arch", "vgg16"), not args.allow_uncalibrated
    recipe = f"--preset {args.preset}" if args.preset else "this loss"
    if shares is not None:
        from lossnet.losses.shares import merge_shares, with_shared_families

        preset_shares = lossnet.losses.get_preset(args.preset).shares if args.preset else None
        merged = merge_shares(preset_shares, shares, kwargs)
        shares.clear()
        shares.update(merged)
        kwargs = with_shared_families(kwargs, merged)
    if args.preset:  # the preset's own layers (a layer flag given is checked, with suggestions, by the loss)
        own = {k: v for k, v in kwargs.items() if k not in given}
        check_trunk_layers(own, arch, recipe, uncalibrated=strict and args.weights != "imagenet")
    try:
        return lossnet.PerceptualLoss(
            weights=args.weights, preprocessing=args.preprocessing, compute_dtype=compute_dtype, strict=strict, **kwargs
        )
    except WeightsUnavailableError as err:
        if arch == "vgg16" or args.weights not in ("auto", "hed"):
            raise
        flags = run_flags(kwargs, "vgg16", uncalibrated=strict)
        fix = f"To run {recipe} on HED's VGG16, the trunk that works offline: {flags} --weights hed"
        raise InputError(f"{err} {fix}") from None


def print_terms(terms: dict[str, float], gradient: dict[str, float] | None = None) -> None:
    """Each weighted term, its share of the total value and of the gradient, and a note on terms that do not count.

    ``gradient``: each term's share of the gradient at the prediction (:meth:`lossnet.PerceptualLoss.shares`);
    a term with a large value share and almost no gradient share moves nothing.
    """
    shares = lossnet.term_shares(terms)
    width = max(len(k) for k in terms)
    if not any(v for k, v in terms.items() if k != "total"):  # no shares of a 0 total: say why instead
        rows = [f"{name:<{width}}  {value:12.6g}" for name, value in terms.items()]
        print(*rows, "every term is 0: the two images are the same as this loss sees them", sep="\n")
        return
    grad_col = f"  {'grad share':>10}" if gradient is not None else ""
    print(f"{'term':<{width}}  {'weighted':>12}  {'share':>7}{grad_col}")
    for name, value in terms.items():
        if name == "total":
            print("-" * (width + 23 + len(grad_col)))
            print(f"{name:<{width}}  {value:12.6g}  {'100%':>7}" + (f"  {'100%':>10}" if gradient is not None else ""))
            continue
        g = None if gradient is None else gradient.get(name, 0.0)
        if g is not None and g < 1e-3 <= shares[name]:
            note = "  (moves nothing: under 0.1% of the gradient)"
        elif shares[name] < 1e-3 and (g is None or g < 1e-3):
            note = "  (under 0.1% of the total: raise its weight if it should count)"
        else:
            note = ""
        cell = f"  {g:10.1%}" if g is not None else ""
        print(f"{name:<{width}}  {value:12.6g}  {shares[name]:7.1%}{cell}{note}")


def print_balance(balance: Any) -> None:
    """The shares asked for and the weights they resolved to (a :class:`lossnet.terms.shares.Balance`)."""
    from lossnet.train.config import cli_value

    asked = ", ".join(f"{name} {share:.1%}" for name, share in balance.shares.items())
    print(f"shares ({balance.rule} rule, calibrated on the {balance.where}): {asked}")
    for keyword, value in balance.keywords.items():
        shown = {k: float(f"{v:.4g}") for k, v in value.items()} if isinstance(value, dict) else float(f"{value:.4g}")
        print(f"  --{keyword.replace('_', '-')} {cli_value(shown)}")


# ---------------------------------------------------------------------------------------------
# Output paths, checked before any work


def check_output_file(path: str, flag: str = "--out", suffixes: Sequence[str] = IMAGE_SUFFIXES) -> Path:
    """Check, before minutes of work, that a file can be written at ``path``; return it as a Path.

    Raises:
        InputError: the suffix is not one of ``suffixes``, ``path`` is a folder, a parent is a
            file, or the folder it goes into cannot be written. The message names ``flag``.
    """
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        got = f"{p.suffix!r}" if p.suffix else "no suffix"
        raise InputError(
            f"{flag} {path}: expected a file name ending in {', '.join(suffixes)}; got {got}: "
            f"e.g. {flag} {p.with_suffix(suffixes[0]) if p.name else 'out' + suffixes[0]}"
        )
    if p.is_dir():
        raise InputError(f"{flag} {path} is a folder; give a file name, e.g. {flag} {p / ('out' + suffixes[0])}")
    _check_writable_folder(p.parent, flag, path)
    return p


def check_output_dir(path: str, flag: str = "--out") -> Path:
    """Check, before any work, that ``path`` is (or can be made) a folder this process can write in.

    Raises:
        InputError: ``path`` or a parent is a file, or the folder cannot be written. The message names ``flag``.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} {path} is a file, not a folder; choose a folder path, e.g. {flag} {p}_out")
    _check_writable_folder(p, flag, path)
    return p


def _check_writable_folder(folder: Path, flag: str, given: str) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{flag} {given}: {existing} is a file, not a folder; choose another {flag}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"{flag} {given}: cannot write in {existing} (permission denied); "
            f"choose another {flag} or make the folder writable"
        )


def os_error_line(err: OSError) -> str:
    """One line for an OSError on a named path: what went wrong, where, and what to do."""
    where = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    if isinstance(err, PermissionError):
        return f"permission denied: {where}; choose a location you can write to, or fix its permissions"
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        return f"{where}: a file is in the way where a folder is needed; choose another output path"
    if isinstance(err, IsADirectoryError):
        return f"{where} is a folder where a file is needed; give a file name"
    return f"{err.strerror or err}: {where}; check the path, its permissions and the free disk space"


# ---------------------------------------------------------------------------------------------
# Messages in command-line words

_ASSIGNMENT = re.compile(r"(?<![-\w])([a-z][a-z0-9_]*)=(None|True|False|'[^']*'|\"[^\"]*\"|[-\w./]+)?")
_MUST = re.compile(r"(^|; |\. )([a-z][a-z0-9_]*) must\b")
#: What a Python ``None`` means on the command line, per flag.
_NONE_ON_CLI = {"--tile": "0", "--weights": "none"}


def cli_wording(message: str, flags: Collection[str]) -> str:
    """Rewrite the library's Python argument syntax in a message as command-line flags.

    Only names that are flags of the command (in ``flags``) are rewritten: ``weights='hed'``
    becomes ``--weights hed``, ``tile=None`` ``--tile 0``, ``check arch=`` ``check --arch``,
    ``quality must`` ``--quality must``, ``tile >= 16`` ``--tile 16 or more``; and
    ``lossnet.layer_names('vgg16')`` becomes ``lossnet layers vgg16``. An old spelling of a flag
    (:data:`FLAG_ALIASES`: ``feature_weights=``, ``--loss-weights``) is written as the flag.

    >>> cli_wording("use weights='hed', or tile=None; max_size must be > 0", {"--weights", "--tile", "--max-size"})
    'use --weights hed, or --tile 0; --max-size must be > 0'
    >>> cli_wording("feature_weights=None, or --loss-weights hed", {"--weights", "--feature-weights", "--loss-weights"})
    '--weights none, or --weights hed'
    """

    def assignment(m: re.Match[str]) -> str:
        flag = "--" + m[1].replace("_", "-")
        if flag not in flags:
            return m[0]
        flag = FLAG_ALIASES.get(flag, flag)
        value = m[2]
        if value is None:
            return flag
        if value == "None":
            value = _NONE_ON_CLI.get(flag, "none")
        return f"{flag} {value.strip(chr(39) + chr(34))}"

    def must(m: re.Match[str]) -> str:
        flag = "--" + m[2].replace("_", "-")
        return f"{m[1]}{FLAG_ALIASES.get(flag, flag)} must" if flag in flags else m[0]

    message = _MUST.sub(must, _ASSIGNMENT.sub(assignment, message))
    for alias, flag in FLAG_ALIASES.items():
        if alias in flags:
            message = re.sub(rf"(?<![\w-]){alias}(?![\w-])", flag, message)
    message = re.sub(r"\blossnet\.layer_names\('(\w+)'\)", r"`lossnet layers \1`", message)
    if "--tile" in flags:
        message = re.sub(r"\btile >= (\d+)", r"--tile \1 or more", message)
    return message
