"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Collection, Sequence
from pathlib import Path

import lossnet
from lossnet.data.io import IMAGE_SUFFIXES
from lossnet.errors import InputError


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


def add_loss_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss network and terms")
    g.add_argument("--preset", help=f"a published recipe (default none): {', '.join(lossnet.PRESETS)}")
    add_backbone_options(g, None, "default vgg16, or the preset's")
    g.add_argument(
        "--feature-layers",
        type=layer_weights_arg,
        help="feature terms, e.g. relu2_2=1,relu3_3=0.5 (default relu2_2=1, or the preset's)",
    )
    g.add_argument(
        "--style-layers",
        type=layer_weights_arg,
        help="Gram terms, e.g. relu1_2=5,relu2_2=5 (default none, or the preset's)",
    )
    g.add_argument("--pixel-weight", type=float, help="weight of the per-pixel term (default 0, or the preset's)")
    g.add_argument("--tv-weight", type=float, help="weight of the total-variation term (default 0, or the preset's)")
    g.add_argument(
        "--criterion",
        choices=list(lossnet.losses.CRITERIA),
        help="distance of the pixel, feature and style terms (default mse, or the preset's)",
    )
    g.add_argument(
        "--lpips-weight", type=float, help="weight of the LPIPS term on the network's LPIPS layers (default 0, or the preset's)"
    )
    g.add_argument(
        "--dists-weight", type=float, help="weight of the DISTS term; needs --arch vgg16 --pooling l2 (default 0, or the preset's)"
    )
    g.add_argument(
        "--contextual-layers",
        type=layer_weights_arg,
        help="contextual-loss terms, e.g. relu3_4=0.1 (default none, or the preset's)",
    )
    g.add_argument("--pooling", choices=["max", "l2"], help="VGG pooling: max, or DISTS' l2 (default max, or the preset's)")
    g.add_argument(
        "--allow-uncalibrated",
        action="store_true",
        help="allow LPIPS/DISTS on a network other than their ImageNet one (HED offline, say); "
        "the terms are then named lpips_like/dists_like",
    )


def build_loss(args: argparse.Namespace, compute_dtype: object = None) -> lossnet.PerceptualLoss:
    kwargs = lossnet.losses.get_preset(args.preset).kwargs() if args.preset else {"feature_layers": {"relu2_2": 1.0}}
    keys = ("arch", "feature_layers", "style_layers", "pixel_weight", "tv_weight", "criterion")
    keys += ("lpips_weight", "dists_weight", "contextual_layers", "pooling")
    for key in keys:
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    return lossnet.PerceptualLoss(
        weights=args.weights,
        preprocessing=args.preprocessing,
        compute_dtype=compute_dtype,
        strict=not args.allow_uncalibrated,
        **kwargs,
    )


def print_terms(terms: dict[str, float]) -> None:
    """Each weighted term, its share of the total, and a note on terms too small to matter."""
    shares = lossnet.term_shares(terms)
    width = max(len(k) for k in terms)
    print(f"{'term':<{width}}  {'weighted':>12}  {'share':>7}")
    for name, value in terms.items():
        if name == "total":
            print("-" * (width + 23))
            print(f"{name:<{width}}  {value:12.6g}  {'100%':>7}")
            continue
        note = "  (under 0.1% of the total: raise its weight if it should count)" if shares[name] < 1e-3 else ""
        print(f"{name:<{width}}  {value:12.6g}  {shares[name]:7.1%}{note}")


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
