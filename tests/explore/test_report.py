from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

from lossnet.explore.invert import InvertConfig
from lossnet.explore.optimize import OptimizeConfig
from lossnet.explore.report import ReportConfig, build_report, find_browser, render_screenshot, write_report
from lossnet.explore.stylize import StylizeConfig


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action"):
                self.refs.append((tag, name, value or ""))


def _tiny_config() -> ReportConfig:
    opt = OptimizeConfig(steps=2)
    return ReportConfig(
        invert=InvertConfig(arch="vgg11", layers=("relu1_1", "relu2_1"), optimize=opt),
        stylize=StylizeConfig(
            arch="vgg11", content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0}, optimize=opt
        ),
        ratios=(1.0, 10.0),
        top_k=2,
    )


@pytest.fixture(scope="module")
def report():
    torch.manual_seed(0)
    return build_report(
        torch.rand(1, 3, 32, 40), torch.rand(1, 3, 32, 32), None, _tiny_config(), names=("a.png", "b.png")
    )


def test_page_parses_and_embeds_every_image_with_no_external_reference(report) -> None:
    parser = _Collect()
    parser.feed(report.html)
    parser.close()
    assert (
        parser.tags[0] == "html" and "body" in parser.tags and "script" not in parser.tags and "link" not in parser.tags
    )
    assert set(report.images) == {"a.png", "b.png", "inversion", "activations", "stylized", "loss curve", "sweep"}
    assert [r for r in parser.refs if r[0] != "img" or r[1] != "src"] == []
    assert len(parser.refs) == len(report.images)
    for _, _, src in parser.refs:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and im.width > 0
    assert "http" not in report.html and "url(" not in report.html
    assert set(report.losses) == {"feature.relu2_1", "mean_std.relu1_1", "tv", "total"}  # the default family
    assert "lossnet.PerceptualLoss(arch=&#x27;vgg11&#x27;" in report.html


def test_without_a_style_image_the_page_has_no_style_sections() -> None:
    torch.manual_seed(0)
    page = build_report(torch.rand(1, 3, 32, 32), None, None, _tiny_config())
    assert set(page.images) == {"content", "inversion", "activations"} and page.losses == {}


def test_headless_chromium_renders_the_page(report, tmp_path) -> None:
    if find_browser() is None:
        pytest.skip("no chromium/chromium-browser/google-chrome on PATH (apt-get install chromium)")
    html = write_report(tmp_path / "report.html", report)
    png = render_screenshot(html, tmp_path / "shot.png", size=(800, 1000))
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape == (1000, 800, 3)
    # Text and embedded images were drawn: the page is neither blank nor one colour.
    assert (pixels < 128).any(axis=2).mean() > 0.01
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
