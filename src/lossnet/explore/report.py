"""One self-contained HTML page: inversion, activations, style transfer, sweep and the loss values.

Every image is embedded as a ``data:`` URI and the style sheet is inline, so the page opens
in any browser from disk, with no server and nothing fetched. :func:`render_screenshot`
renders it with headless Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from lossnet.atomic import write_text
from lossnet.backbones.weights import LoadedWeights
from lossnet.data.io import save_image, to_pil
from lossnet.errors import LossnetError
from lossnet.explore.activations import activation_maps, activation_sheet
from lossnet.explore.curve import loss_curve
from lossnet.explore.invert import InvertConfig, inversion_sheet, invert
from lossnet.explore.optimize import Callback
from lossnet.explore.stylize import StylizeConfig, build_extractor, stylize
from lossnet.explore.sweep import DEFAULT_RATIOS, sweep, sweep_sheet
from lossnet.runtime import Runtime

#: Browser commands :func:`find_browser` tries, in order (``$LOSSNET_BROWSER`` first).
BROWSERS: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserUnavailableError(LossnetError, FileNotFoundError):
    """No headless Chromium (or Chrome) to render a page with."""


@dataclass
class ReportConfig:
    """What the report computes."""

    invert: InvertConfig = field(default_factory=InvertConfig)  # the layers shown everywhere are invert.layers
    stylize: StylizeConfig = field(default_factory=StylizeConfig)  # the chosen weights
    ratios: Sequence[float] = DEFAULT_RATIOS  # columns of the sweep
    top_k: int = 4  # channels per layer in the activation maps

    def total_steps(self, with_style: bool) -> int:
        """The optimiser steps :func:`build_report` runs in all (its ``callback`` is called this often).

        The inversions; with a style image also one stylisation and one per sweep ratio.

        >>> from lossnet.explore.optimize import OptimizeConfig
        >>> config = ReportConfig(InvertConfig(layers=("relu1_2",), optimize=OptimizeConfig(steps=10)),
        ...                       StylizeConfig(optimize=OptimizeConfig(steps=5)), ratios=(1.0, 10.0))
        >>> config.total_steps(False), config.total_steps(True)
        (20, 35)
        """
        stylisations = (1 + len(self.ratios)) if with_style else 0
        return self.invert.total_steps + stylisations * self.stylize.optimize.steps


@dataclass
class Report:
    """The page and the pieces it shows."""

    html: str
    images: dict[str, Image.Image] = field(default_factory=dict)  # name -> every image embedded
    losses: dict[str, float] = field(default_factory=dict)  # the chosen weights' terms (with a style image)
    weights: str = ""  # the id of the loss network's weights


def _data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
img { max-width: 100%; image-rendering: auto; } figure { margin: 0.6em 0; }
figcaption, .note { color: #555; font-size: 0.9em; } table { border-collapse: collapse; }
td, th { padding: 2px 10px; text-align: right; border-bottom: 1px solid #eee; } th:first-child, td:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
.row { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
"""


def build_report(
    content: torch.Tensor,
    style: torch.Tensor | None = None,
    weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
    config: ReportConfig | None = None,
    callback: Callback | None = None,
    names: tuple[str, str] = ("content", "style"),
    device: str | torch.device = "cpu",
    preprocessing: str | None = None,
    precision: str | Runtime | None = None,
) -> Report:
    """Compute everything and lay it out as one HTML page.

    Args:
        content: ``(1, 3, H, W)`` in [0, 1], at least as large as the deepest layer needs.
        style: ``(1, 3, H', W')`` in [0, 1], or ``None`` for a report without style transfer and sweep.
        weights: the loss network's weights; ``auto``: ImageNet where it can be had, else HED.
        config: the settings of each part.
        callback: called after every optimisation step (inversions, stylisation, sweep):
            :meth:`ReportConfig.total_steps` times in all.
        names: how the page and the error messages name the two images (e.g. their file names).
        device: where the loss network runs.
        preprocessing: a weight file's input preprocessing, ``'torch'`` or ``'caffe'`` (default: guessed).
        precision: the loss network's ``compute_dtype`` (``None``: float32; a :class:`~lossnet.runtime.Runtime`).

    Returns:
        A :class:`Report`; ``report.html`` is the page, every image inside it.

    Raises:
        InputError: an image is smaller than the deepest layer needs (the message names it).
    """
    config = config or ReportConfig()
    inv = config.invert
    layers = list(dict.fromkeys([*inv.layers, *config.stylize.layers]))
    fx = build_extractor(inv.arch, layers, weights, device, preprocessing, precision)
    shown = (
        build_extractor(inv.arch, list(inv.layers), weights, device, preprocessing, precision)
        if list(inv.layers) != layers
        else fx
    )
    content = fx.check(content.to(device), names[0])
    style = fx.check(style.to(device), names[1]) if style is not None else None
    images: dict[str, Image.Image] = {}
    parts: list[str] = []
    esc = html.escape

    def figure(name: str, image: Image.Image, caption: str) -> str:
        images[name] = image
        return (
            f'<figure><img alt="{esc(name)}" src="{_data_uri(image)}"><figcaption>{esc(caption)}</figcaption></figure>'
        )

    inputs = [figure(names[0], to_pil(content), f"content: {names[0]} ({content.shape[-1]}x{content.shape[-2]})")]
    if style is not None:
        inputs.append(figure(names[1], to_pil(style), f"style: {names[1]} ({style.shape[-1]}x{style.shape[-2]})"))
    parts.append(f'<h2>Inputs</h2><div class="row">{"".join(inputs)}</div>')

    inversion = invert(content, config=inv, callback=callback, extractor=shown)
    rows = "".join(
        f"<tr><td>{esc(r.label)}</td><td>{r.loss_start:.4g}</td><td>{r.loss_end:.4g}</td>"
        f"<td>{r.loss_start / max(r.loss_end, 1e-30):.3g}x</td><td>{r.psnr:.1f}</td></tr>"
        for r in inversion.feature + inversion.style
    )
    parts.append(
        "<h2>Choosing layers: what each layer keeps</h2>"
        + figure(
            "inversion",
            inversion_sheet(inversion),
            "images optimised from noise to match one layer's features "
            "(top) or the Gram matrices of growing layer sets (bottom)",
        )
        + '<p class="note">Low layers keep the image; high layers keep its layout but lose colour and texture; '
        "Gram matrices keep texture and lose layout (Johnson et al. 2016, Fig. 3). A content layer should keep "
        "what the output must preserve; style layers set the scale of the texture.</p>"
        + "<table><tr><th>reconstruction</th><th>MSE at start</th><th>MSE at end</th><th>reduction</th>"
        + f"<th>PSNR (dB)</th></tr>{rows}</table>"
        + f'<p class="note">noise start: {inversion.start_psnr:.1f} dB</p>'
    )

    maps = activation_maps(shown, content, config.top_k)
    parts.append(
        "<h2>What each layer responds to</h2>"
        + figure(
            "activations",
            activation_sheet(content, maps),
            "per layer: the mean over channels, then the "
            f"{config.top_k} channels with the largest mean, each scaled to its maximum",
        )
    )

    losses: dict[str, float] = {}
    if style is not None:
        result = stylize(content, style, config=config.stylize, callback=callback, extractor=fx)
        losses = dict(result.optimization.final)
        table = "".join(f"<tr><td>{esc(k)}</td><td>{v:.5g}</td></tr>" for k, v in losses.items())
        kwargs = ", ".join(f"{k}={v!r}" for k, v in result.loss_kwargs().items())
        parts.append(
            '<h2>Style transfer with the chosen weights</h2><div class="row">'
            + figure("stylized", to_pil(result.image), "optimised image")
            + figure("loss curve", loss_curve(result.optimization.history, "loss per step"), "loss per step (log)")
            + f"</div><table><tr><th>term</th><th>value</th></tr>{table}</table>"
            + f"<p>The same terms for training:</p><pre>lossnet.PerceptualLoss({esc(kwargs)}, weights=...)</pre>"
        )
        grid = (
            sweep(content, style, None, config.stylize, config.ratios, callback=callback, extractor=fx)
            if config.ratios
            else None
        )
        if grid is not None:
            parts.append(
                "<h2>Style/content weight ratio</h2>"
                + figure("sweep", sweep_sheet(grid), "the same optimisation at each ratio; losses with weight 1")
            )

    head = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>lossnet report: {esc(names[0])}</title>'
        f"<style>{_CSS}</style></head><body><h1>lossnet report: {esc(names[0])}"
        + (f" in the style of {esc(names[1])}" if style is not None else "")
        + f'</h1><p class="note">loss network {esc(inv.arch)}, weights {esc(fx.weights_id)}; '
        f"{inv.optimize.steps} {esc(inv.optimize.optimizer)} steps per inversion, "
        f"{config.stylize.optimize.steps} per stylisation; seed {inv.seed}</p>"
    )
    page = head + "".join(parts) + "</body></html>\n"
    return Report(html=page, images=images, losses=losses, weights=fx.weights_id)


def write_report(path: str | os.PathLike[str], report: Report) -> Path:
    """Write the page atomically."""
    return write_text(path, report.html)


def find_browser() -> str | None:
    """The headless browser to render with: ``$LOSSNET_BROWSER``, else the first of :data:`BROWSERS` on PATH."""
    env = os.environ.get("LOSSNET_BROWSER")
    if env:
        return shutil.which(env)
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def render_screenshot(
    html_path: str | os.PathLike[str],
    png_path: str | os.PathLike[str],
    size: tuple[int, int] = (1200, 1600),
    browser: str | None = None,
    timeout: float = 120.0,
    palette: bool = False,
) -> Path:
    """Render an HTML file with headless Chromium to a PNG of the top ``size = (width, height)`` pixels.

    The browser runs with networking features off and a throwaway profile; the PNG is
    written atomically. ``palette=True`` stores it with an adaptive 256-colour palette,
    about a third of the size (for screenshots kept in a repository).

    Raises:
        BrowserUnavailableError: no browser found (install Debian's ``chromium``) or it failed.
    """
    browser = browser or find_browser()
    if browser is None:
        raise BrowserUnavailableError(
            f"no headless browser found (looked for $LOSSNET_BROWSER and {', '.join(BROWSERS)}); "
            "install one, e.g. apt-get install chromium"
        )
    uri = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="lossnet-chromium-") as tmp:
        shot = Path(tmp) / "shot.png"
        cmd = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--disable-default-apps", "--mute-audio", f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}", uri,
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise BrowserUnavailableError(f"{browser} could not render {html_path}: {err}") from None
        if not shot.is_file():
            raise BrowserUnavailableError(
                f"{browser} wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )
        with Image.open(shot) as im:
            image = im.convert("RGB")
    if palette:
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return save_image(image, png_path)
