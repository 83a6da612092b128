"""Issue 20: ``lossnet stylize`` at its defaults shows the style, by measures no loss network enters.

On the embedded images (chelsea and astronaut as contents; ihc, a colour image, and grass, a grey texture, as
styles) at 128 px, in the precision ``auto`` picks (bf16 on a CPU that runs it natively, fp32 as an AVX2 CPU runs
it; CI runs both), the stylised image must be:

- nearer the style's colours than the content is, by half: colour ratio <= 0.5;
- nearer the style's texture (7x7 patches minus their mean colour): texture ratio <= 0.8;
- still the content's picture: layout correlation >= 0.5.

(``lossnet.metrics.style``; measured values are in the README's "Did the style transfer?" table.)
"""

from __future__ import annotations

import pytest

from lossnet.data import load_default_image
from lossnet.explore.stylize import StylizeConfig, build_extractor, stylize
from lossnet.metrics.style import style_measures
from lossnet.runtime import resolve

SIZE = 128


@pytest.mark.slow
@pytest.mark.parametrize("content_name", ["chelsea", "astronaut"])
@pytest.mark.parametrize("style_name", ["ihc", "grass"])
def test_stylize_defaults_move_colour_and_texture_to_the_style_and_keep_the_layout(
    hed_weights, content_name: str, style_name: str
) -> None:
    content, style = load_default_image(content_name, SIZE), load_default_image(style_name, SIZE)
    config = StylizeConfig()  # the defaults, 150 L-BFGS steps from the recoloured content included
    fx = build_extractor(config.arch, config.layers, hed_weights, precision=resolve("auto", "cpu"))
    result = stylize(content, style, None, config, extractor=fx)
    m = style_measures(result.image, content, style)
    assert m.colour <= 0.5 and m.texture <= 0.8 and m.layout >= 0.5, m
