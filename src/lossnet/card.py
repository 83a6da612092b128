"""The model card and a network's interface in every file a lossnet network comes in.

A trained network is a ``.safetensors`` checkpoint (:mod:`lossnet.checkpoint`, whose
:func:`~lossnet.checkpoint.model_card` builds the card from the metadata the trainer writes),
or a file ``lossnet export`` wrote from one. An exported file carries, besides the card, what a
program needs to run the network (:class:`Interface`), as strings under ``lossnet.*`` keys
(:func:`export_metadata`):

- ONNX: the model's ``metadata_props``, one entry per key;
- TorchScript: one extra file, ``extra/lossnet.json``, holding the same keys.

:func:`read_model_file` reads the card back from all three formats, and the interface from
the two exported ones, without running anything: the ``.safetensors`` header is JSON, the
ONNX file is parsed by ``onnx`` (not executed), and the TorchScript archive is opened as
the zip it is (its graph is not loaded). :func:`card_lines` words it all for ``lossnet info``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossnet._version import __version__
from lossnet.checkpoint import load_checkpoint, model_card
from lossnet.errors import CheckpointError, MissingExtraError

#: The ``lossnet.format`` of the files ``lossnet export`` writes.
EXPORT_FORMAT = "lossnet-export-1"
#: The key prefix in ONNX ``metadata_props`` (and in the TorchScript extra file).
PREFIX = "lossnet."
#: The TorchScript extra file that holds the keys.
EXTRA_FILE = "lossnet.json"
#: What installs the ONNX packages.
EXPORT_EXTRA = "pip install 'lossnet[export]'"
#: An exported graph's inputs, by :attr:`Interface.style_input`: one image; an image and a style mix
#: (``style_multi``); a content image, a style image and the trade-off alpha (``style_any``).
INPUT_NAMES: dict[str, tuple[str, ...]] = {
    "": ("image",),
    "mix": ("image", "style"),
    "image": ("content", "style", "alpha"),
}


@dataclass(frozen=True)
class Interface:
    """What a program needs to run an exported network.

    Attributes:
        in_channels: input channels: 3 (RGB) or 1 (BT.601 luma, for colorize).
        out_channels: output channels.
        scale: the output is ``scale`` times larger than the input.
        size_multiple, min_size: the size rule: H and W multiples of ``size_multiple``, at least ``min_size``.
        input_range, output_range: the pixel value ranges, e.g. ``(0.0, 1.0)``.
        dtype: the tensors' type, ``'float32'`` or ``'float16'``.
        task: what it was trained for, or ``None``.
        per_image_norm: the network normalises each image by its own statistics (instance norm): tiles
            would each take their own and leave seams, so lossnet runs such a file on the whole image.
        style_input: what the file takes besides the image (:data:`STYLE_INPUTS`): ``''`` nothing;
            ``'mix'`` (a ``style_multi`` network) a second input ``style``, float ``(B or 1, num_styles)``,
            each row's weights ``>= 0`` and summing to 1 (a one-hot row is style ``k``; the graph does not
            check the sum); ``'image'`` (a ``style_any`` network) the image input is named ``content``, and
            ``style`` ``(B or 1, 3, H', W')`` in [0, 1] of any size, H' and W' at least ``min_size``, and
            ``alpha`` ``(B or 1,)`` in [0, 1] (1: full style, 0: the content reconstructed) follow it.
        num_styles: the styles a ``'mix'`` file holds (0 otherwise).

    Example:
        >>> i = Interface(1, 3, 1, 16, 16, (0.0, 1.0), (0.0, 1.0), "float32", "colorize")
        >>> i.channel_layout
        'NCHW; input: 1 channel, BT.601 luma; output: RGB'
        >>> i == read_export_metadata(export_metadata(i, {}), "x.onnx")[0]
        True
        >>> m = Interface(3, 3, 1, 4, 8, (0.0, 1.0), (0.0, 1.0), style_input="mix", num_styles=2)
        >>> m.input_names, m == read_export_metadata(export_metadata(m, {}), "x.onnx")[0]
        (('image', 'style'), True)
    """

    in_channels: int
    out_channels: int
    scale: int
    size_multiple: int
    min_size: int
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    dtype: str = "float32"
    task: str | None = None
    per_image_norm: bool = False
    style_input: str = ""
    num_styles: int = 0

    @property
    def input_names(self) -> tuple[str, ...]:
        """The graph's input names in order (:data:`INPUT_NAMES`), e.g. ``('content', 'style', 'alpha')``."""
        return INPUT_NAMES[self.style_input]

    @property
    def channel_layout(self) -> str:
        """How the channels are laid out, in words (written into the file for people and apps)."""
        return f"NCHW; input: {_channels(self.in_channels)}; output: {_channels(self.out_channels)}"

    def describe(self) -> str:
        """One line: the input and output tensors and the size rule."""
        lo, hi = self.input_range
        olo, ohi = self.output_range
        up = "" if self.scale == 1 else f"{self.scale}"
        first = "input" if not self.style_input else f"input {self.input_names[0]}"
        return (
            f"{first} (B, {self.in_channels}, H, W) {self.dtype} {_channels(self.in_channels)} in [{lo:g}, {hi:g}], "
            f"H and W multiples of {self.size_multiple} and at least {self.min_size}{self._style_words()}; "
            f"output (B, {self.out_channels}, {up}H, {up}W) in [{olo:g}, {ohi:g}]"
        )

    def _style_words(self) -> str:
        if self.style_input == "mix":
            return (
                f"; style (B or 1, {self.num_styles}) {self.dtype}, a mix of its {self.num_styles} styles "
                "(weights >= 0 summing to 1; one-hot: one style)"
            )
        if self.style_input == "image":
            return (
                f"; style (B or 1, 3, H', W') {self.dtype} RGB in [0, 1] of any size, at least {self.min_size}; "
                "alpha (B or 1,) in [0, 1] (1 full style, 0 the content)"
            )
        return ""


def _channels(n: int) -> str:
    return {1: "1 channel, BT.601 luma", 3: "RGB"}.get(n, f"{n} channels")


# The interface's fields as stored: each a string (ONNX metadata holds strings), read back by its parser.
_FIELDS: dict[str, Any] = {
    "in_channels": int,
    "out_channels": int,
    "scale": int,
    "size_multiple": int,
    "min_size": int,
    "input_range": lambda s: tuple(float(v) for v in json.loads(s)),
    "output_range": lambda s: tuple(float(v) for v in json.loads(s)),
    "dtype": str,
    "task": lambda s: s or None,
    "per_image_norm": lambda s: s == "True",
    "style_input": lambda s: _style_input(s),
    "num_styles": lambda s: int(s or 0),
}
#: Fields a file may lack (written by an earlier lossnet), read as their default.
_OPTIONAL = {"per_image_norm", "style_input", "num_styles"}


def _style_input(s: str) -> str:
    if s not in INPUT_NAMES:
        raise ValueError(f"style_input {s!r} is none of {sorted(INPUT_NAMES)}")
    return s


def export_metadata(interface: Interface, card: Mapping[str, Any], opset: int | None = None) -> dict[str, str]:
    """The ``lossnet.*`` strings an exported file carries: the interface, the card (JSON), the version, the opset.

    >>> i = Interface(3, 3, 2, 1, 5, (0.0, 1.0), (0.0, 1.0), "float32", "superres")
    >>> m = export_metadata(i, {"steps": 10}, opset=17)
    >>> m["lossnet.scale"], m["lossnet.input_range"], m["lossnet.opset"], m["lossnet.card"]
    ('2', '[0.0, 1.0]', '17', '{"steps": 10}')
    """
    values = {
        "format": EXPORT_FORMAT,
        "version": __version__,
        **{name: json.dumps(list(v)) if isinstance(v := getattr(interface, name), tuple) else str(v or "")
           for name in _FIELDS},
        "channel_layout": interface.channel_layout,
        "card": json.dumps(dict(card)),
    }
    if opset is not None:
        values["opset"] = str(opset)
    return {PREFIX + k: v for k, v in values.items()}


def read_export_metadata(props: Mapping[str, str], path: str | os.PathLike[str]) -> tuple[Interface, dict[str, Any]]:
    """``(interface, card)`` from the strings :func:`export_metadata` wrote.

    Raises:
        CheckpointError: the file carries no lossnet metadata (it was not written by ``lossnet export``)
            or a field is unreadable.
    """
    if props.get(PREFIX + "format") != EXPORT_FORMAT:
        raise CheckpointError(
            f"{path} carries no lossnet metadata ({PREFIX}format is {props.get(PREFIX + 'format')!r}, expected "
            f"{EXPORT_FORMAT!r}): lossnet runs the ONNX and TorchScript files `lossnet export` writes, whose metadata "
            "gives the network's size rule and value ranges. Export the .safetensors model with `lossnet export`"
        )
    try:
        stored = [name for name in _FIELDS if name not in _OPTIONAL or PREFIX + name in props]
        fields = {name: _FIELDS[name](props[PREFIX + name]) for name in stored}
        card = json.loads(props.get(PREFIX + "card") or "{}")
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: its lossnet metadata is incomplete or unreadable ({err!r}); export it again") from None
    return Interface(**fields), card


@dataclass(frozen=True)
class ModelFile:
    """What :func:`read_model_file` found.

    Attributes:
        path: the file.
        format: ``'safetensors'``, ``'onnx'`` or ``'torchscript'``.
        card: the model card (see :mod:`lossnet.checkpoint`).
        sha256: the file's SHA-256, hex.
        interface: how to run it (exported files only; ``None`` for a checkpoint).
        opset: the ONNX opset (ONNX only).
    """

    path: Path
    format: str
    card: dict[str, Any]
    sha256: str
    interface: Interface | None = None
    opset: int | None = None


def file_format(path: str | os.PathLike[str]) -> str:
    """``'onnx'`` (by the ``.onnx`` suffix), ``'torchscript'`` (a zip archive holding TorchScript code) or ``'safetensors'``.

    A zip archive without TorchScript code (what ``torch.save`` writes) is left to the
    checkpoint reader, which refuses it with its reason.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any(n.endswith(f"/extra/{EXTRA_FILE}") or "/code/" in n for n in z.namelist()):
                return "torchscript"
    return "safetensors"


def read_model_file(path: str | os.PathLike[str]) -> ModelFile:
    """Read a network file's card (and an exported file's interface) without running it; see the module docstring.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a lossnet checkpoint or export, or truncated.
        MissingExtraError: an ONNX file, and the ``onnx`` package is not installed.

    Example:
        >>> import tempfile, pathlib, torch
        >>> from lossnet.checkpoint import model_meta, save_checkpoint
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
        >>> _ = save_checkpoint(p, {"w": torch.ones(1)}, model_meta({"name": "UNet"}, task="restore", step=3))
        >>> f = read_model_file(p)
        >>> f.format, f.card["task"], f.card["steps"], len(f.sha256)
        ('safetensors', 'restore', 3, 64)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    kind, opset = file_format(path), None
    if kind == "safetensors":
        return ModelFile(path, kind, model_card(load_checkpoint(path).meta), file_sha256(path))
    props = _onnx_props(path) if kind == "onnx" else _torchscript_props(path)
    interface, card = read_export_metadata(props, path)
    if kind == "onnx" and props.get(PREFIX + "opset", "").isdigit():
        opset = int(props[PREFIX + "opset"])
    return ModelFile(path, kind, card, file_sha256(path), interface, opset)


def _onnx_props(path: Path) -> dict[str, str]:
    try:
        import onnx
    except ImportError:
        raise MissingExtraError(f"reading {path} needs the onnx package: {EXPORT_EXTRA}") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends: the file is not ONNX
        raise CheckpointError(f"{path} is not a readable ONNX file ({type(err).__name__}: {err})") from None
    return {p.key: p.value for p in model.metadata_props}


def _torchscript_props(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith(f"/extra/{EXTRA_FILE}")]
        if not names:
            return {}
        try:
            props = json.loads(z.read(names[0]))
        except ValueError as err:
            raise CheckpointError(f"{path}: its {EXTRA_FILE} is not JSON ({err})") from None
    return {str(k): str(v) for k, v in props.items()} if isinstance(props, dict) else {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The file's SHA-256 as 64 hex digits, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_lines(model: ModelFile) -> list[str]:
    """The card and the file's facts as ``name: value`` lines, as ``lossnet info`` prints them.

    >>> f = ModelFile(Path("m.safetensors"), "safetensors", {"task": "style", "steps": 2, "data": "photos"}, "ab")
    >>> card_lines(f)[:4]
    ['file: m.safetensors (safetensors)', 'sha256: ab', 'task: style', 'network: unrecorded']
    """
    c = model.card
    net, loss, trunk = c.get("network") or {}, c.get("loss") or {}, c.get("trunk") or {}
    kind = model.format + (f", ONNX opset {model.opset}" if model.opset is not None else "")
    network = "unrecorded"
    if net.get("name"):
        rule = ""
        if net.get("size_multiple") is not None:
            rule = f"; size rule: H and W multiples of {net['size_multiple']}, at least {net.get('min_size')}"
        scale = f" x{net['scale']}" if net.get("scale") not in (None, 1) else ""
        kwargs = f" {json.dumps(net['kwargs'])}" if net.get("kwargs") else ""
        network = f"{net['name']}{scale}{kwargs}{rule}"
    weights = loss.get("weights")
    terms = ": " + ", ".join(f"{k} {v:g}" for k, v in weights.items()) if weights else ""
    scores = c.get("validation")
    lines = [
        f"file: {model.path} ({kind})",
        f"sha256: {model.sha256}",
        f"task: {c.get('task') or 'unrecorded'}",
        f"network: {network}",
        f"loss: {loss.get('recipe') or 'unrecorded'}{terms}",
        f"trunk: {trunk.get('arch') or 'none'}, weights {trunk.get('weights') or 'none'}",
        f"steps: {_or_unrecorded(c.get('steps'))}",
        f"data: {_or_unrecorded(c.get('data'))}",
        f"validation: {', '.join(f'{k} {v:.4g}' for k, v in scores.items()) if scores else 'unrecorded'}",
        f"lossnet version: {_or_unrecorded(c.get('lossnet_version'))}",
    ]
    if c.get("styles"):
        lines.insert(4, "styles: " + ", ".join(f"{k} {name}" for k, name in enumerate(c["styles"])))
    if model.interface is not None:
        lines.append(f"interface: {model.interface.describe()}")
    return lines


def _or_unrecorded(value: object) -> str:
    return "unrecorded" if value is None else str(value)
