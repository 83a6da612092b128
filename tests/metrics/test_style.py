from __future__ import annotations

import math

import pytest
import torch

from lossnet.errors import InputError
from lossnet.metrics.style import (
    StyleMeasures,
    colour_distance,
    layout_correlation,
    style_measures,
    texture_distance,
)


def _images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth 'photo' (a gradient with a bright disc) and a striped 'texture' in other colours."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.05).float()
    content = torch.stack([0.2 + 0.6 * x, 0.3 + 0.3 * y, 0.5 * disc + 0.2]).unsqueeze(0)
    stripes = (torch.arange(40) // 3 % 2).float().expand(40, 40)
    style = torch.stack([0.9 * stripes, 0.1 + 0.2 * stripes.T, 0.6 * torch.ones(40, 40)]).unsqueeze(0)
    style = (style + 0.05 * torch.rand(style.shape, generator=g)).clamp(0, 1)
    return content, style


def test_the_content_itself_scores_one_and_the_style_itself_zero() -> None:
    content, style = _images()
    itself = style_measures(content, content, style)
    assert isinstance(itself, StyleMeasures)
    assert (itself.colour, itself.texture) == (1.0, 1.0)
    assert itself.layout == pytest.approx(1.0, abs=1e-6)
    assert itself.colour_distance == itself.content_colour_distance > 0
    same_size = torch.nn.functional.interpolate(style, size=(48, 48), mode="bilinear")
    square = torch.rand(1, 3, 48, 48)  # a content of the style's size: the style is compared as it is
    styled = style_measures(same_size, square, same_size)
    assert styled.colour == 0.0 and styled.texture == 0.0


def test_colour_ignores_where_pixels_are_texture_and_layout_do_not() -> None:
    content, style = _images()
    g = torch.Generator().manual_seed(3)
    shuffled = content.flatten(2)[:, :, torch.randperm(48 * 64, generator=g)].view_as(content)
    m = style_measures(shuffled, content, style)
    assert m.colour == pytest.approx(1.0, abs=1e-6)  # the same pixels in another order: the same colours
    assert abs(m.texture - 1.0) > 0.2  # the same pixels in other patches: another texture
    assert abs(m.layout) < 0.3
    # A permutation of the style's pixels is the style to the colour distance, and another texture.
    perm = style.flatten(2)[:, :, torch.randperm(40 * 40, generator=g)].view_as(style)
    assert float(colour_distance(perm, style)) == 0.0
    assert float(texture_distance(perm, style)) > 0.5 * float(texture_distance(content, style))

def test_known_values_and_symmetries() -> None:
    content, style = _images()
    grey = torch.full((1, 3, 16, 16), 0.5)
    # Flat images: every projection is a constant, so the distance is |shift| * sqrt(mean_k (sum_c v_kc)^2)
    # for a shift of all three channels, linear in the shift and the same for +-.
    d1, d2 = float(colour_distance(grey, grey + 0.1)), float(colour_distance(grey, grey + 0.2))
    assert d2 == pytest.approx(2 * d1, rel=1e-5) and d1 == pytest.approx(float(colour_distance(grey, grey - 0.1)))
    assert 0.05 < d1 < 0.2  # ~0.1: E[(sum_c v_c)^2] = 1 for a uniform unit vector in R^3
    # Symmetric up to the resampling of the larger set at the smaller one's quantiles.
    assert float(colour_distance(content, style)) == pytest.approx(float(colour_distance(style, content)), rel=1e-3)
    # The texture distance sees no mean colour: a shift of every channel leaves it unchanged; contrast does not.
    base = float(texture_distance(content, style))
    assert float(texture_distance(content + 0.05, style)) == pytest.approx(base, rel=1e-4)
    assert float(texture_distance(style + 0.0, style)) == 0.0 < float(texture_distance(0.5 * style + 0.2, style))
    flat_a, flat_b = torch.full((1, 3, 12, 12), 0.25), torch.full((1, 3, 12, 12), 0.75)
    assert float(texture_distance(flat_a, flat_b)) == 0.0
    # Layout: invariant to brightness and contrast, -1 for the negative, 0-ish for an unrelated image.
    assert float(layout_correlation(content, 0.5 * content + 0.3)) == pytest.approx(1.0, abs=1e-5)
    assert float(layout_correlation(content, 1 - content)) == pytest.approx(-1.0, abs=1e-5)
    assert math.isnan(float(layout_correlation(content, grey)))  # a flat image has no layout


def test_seeded_batched_and_dtype_independent() -> None:
    content, style = _images()
    other = (content.flip(-1) * 0.7 + 0.2).clamp(0, 1)
    a, b = style_measures(other, content, style, seed=1), style_measures(other, content, style, seed=1)
    assert a == b
    c = style_measures(other, content, style, seed=2)
    assert c.colour == pytest.approx(a.colour, rel=0.1) and c.texture == pytest.approx(a.texture, rel=0.1)
    # A batch is the mean of its samples; per-sample values are there with reduction='none'.
    both = style_measures(torch.cat([content, other]), content, style)
    assert both.colour == pytest.approx((1.0 + style_measures(other, content, style).colour) / 2, rel=1e-5)
    assert colour_distance(torch.cat([content, other]), style, reduction="none").shape == (2,)
    # Computed in float32 whatever the input's dtype.
    half = style_measures(other.bfloat16(), content.bfloat16(), style.bfloat16())
    assert half.layout == pytest.approx(a.layout, abs=0.02)


def test_sizes_the_content_is_resized_to_the_output() -> None:
    content, style = _images()
    small = torch.nn.functional.interpolate(content, size=(24, 32), mode="bilinear", antialias=True)
    m = style_measures(small, content, style)
    assert m.colour == pytest.approx(1.0, abs=0.05) and m.layout > 0.99


def test_bad_inputs_are_clear_errors() -> None:
    content, style = _images()
    with pytest.raises(InputError, match="must be an RGB image"):
        style_measures(content[:, :1], content, style)
    with pytest.raises(InputError, match="channels-last"):
        style_measures(content.permute(0, 2, 3, 1), content, style)
    with pytest.raises(ValueError, match="range"):
        style_measures(content * 255, content, style)
    with pytest.raises(InputError, match="at least 7 pixels"):
        texture_distance(content[..., :5, :], style)
    with pytest.raises(InputError, match="batch 1 or the output's"):
        style_measures(content, torch.cat([content] * 3), style)
    with pytest.raises(InputError, match="directions must be an int"):
        colour_distance(content, style, directions=0)
