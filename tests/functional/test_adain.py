"""AdaIN's maths: identity on its own statistics, the style's statistics out, alpha, regions, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError, InputTypeError
from lossnet.functional.adain import (
    adain,
    adain_from_statistics,
    blend,
    channel_statistics,
    regional_adain,
    split_content_style,
)
from lossnet.models.adain import AdaIN


def _features(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.rand(1, shape[1], 1, 1, generator=g) * 5 + 0.1  # channels of very different spreads and means
    return (torch.randn(*shape, generator=g) * scale + 3 * torch.randn(1, shape[1], 1, 1, generator=g)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adain_of_x_with_its_own_statistics_is_x(dtype) -> None:
    x = _features(3, 16, 9, 11, dtype=dtype)
    assert (adain(x, x) - x).abs().max() <= 1e-6 * max(1.0, float(x.abs().max()))
    assert adain(x, x).dtype == dtype


def test_the_output_takes_the_styles_channel_statistics() -> None:
    content, style = _features(2, 8, 12, 12, seed=1), _features(2, 8, 20, 7, seed=2)
    out = adain(content, style)
    (mo, so), (ms, ss) = channel_statistics(out), channel_statistics(style)
    (mc, sc) = channel_statistics(content)
    assert torch.allclose(mo, ms, atol=1e-4) and torch.allclose(so, ss, rtol=1e-4)
    assert (mo - ms).abs().max() < 1e-3 * (mc - ms).abs().max()  # it moved: the content's were far off


def test_known_values_eq_8() -> None:
    # content channel: mean 1, std 1; style channel: mean 10, std 3 -> 3 * (x - 1) / 1 + 10
    x = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2)
    y = torch.tensor([7.0, 13.0]).view(1, 1, 2, 1)
    assert torch.allclose(adain(x, y, eps=1e-12), torch.tensor([7.0, 13.0]).view(1, 1, 1, 2))


def test_one_style_for_a_batch_equals_each_sample_alone() -> None:
    content, style = _features(3, 4, 6, 6), _features(1, 4, 5, 5, seed=3)
    batched = adain(content, style)
    for i in range(3):
        assert torch.allclose(batched[i : i + 1], adain(content[i : i + 1], style), atol=1e-6)
    per_style = _features(3, 4, 5, 5, seed=4)
    batched = adain(content, per_style)
    assert torch.allclose(batched[1:2], adain(content[1:2], per_style[1:2]), atol=1e-6)


def test_the_statistics_form_equals_the_image_form() -> None:
    content, style = _features(2, 5, 6, 6), _features(2, 5, 9, 9, seed=5)
    assert torch.equal(adain(content, style), adain_from_statistics(content, *channel_statistics(style)))


def test_module_equals_function() -> None:
    content, style = _features(2, 6, 8, 8), _features(1, 6, 10, 10, seed=6)
    assert torch.allclose(AdaIN(6)(content, style), adain(content, style), atol=1e-5, rtol=1e-5)
    assert torch.allclose(AdaIN(6, eps=0.5)(content, style), adain(content, style, eps=0.5), atol=1e-5)


def test_gradcheck_in_float64() -> None:
    content = _features(2, 3, 4, 5, dtype=torch.float64).requires_grad_()
    style = _features(1, 3, 3, 3, seed=7, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda c, s: adain(c, s), (content, style))
    mask = torch.rand(1, 2, 4, 5, dtype=torch.float64)
    mask = mask / mask.sum(1, keepdim=True)
    stats = [channel_statistics(style), None]
    assert torch.autograd.gradcheck(lambda c: regional_adain(c, stats, mask), (content,))


def test_alpha_0_is_the_content_and_the_statistics_move_with_alpha() -> None:
    content, style = _features(1, 8, 10, 10), _features(1, 8, 10, 10, seed=8)
    t = adain(content, style)
    assert torch.equal(blend(t, content, 0.0), content) and torch.equal(blend(t, content, 1.0), t)
    target = channel_statistics(style)
    gaps = []
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        mean, std = channel_statistics(blend(t, content, alpha))
        gaps.append(float((mean - target[0]).square().mean() + (std - target[1]).square().mean()))
    assert all(a > b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-8 * gaps[0]


def test_a_full_region_is_plain_adain_and_each_half_is_restyled_on_its_own() -> None:
    content = _features(1, 4, 6, 8)
    a, b = channel_statistics(_features(1, 4, 5, 5, seed=9)), channel_statistics(_features(1, 4, 5, 5, seed=10))
    ones = torch.ones(1, 1, 6, 8)
    assert torch.allclose(regional_adain(content, [a, b], torch.cat([ones, 0 * ones], 1)), adain_from_statistics(content, *a), atol=1e-5)
    left = torch.zeros(1, 1, 6, 8)
    left[..., :4] = 1.0
    out = regional_adain(content, [a, None], torch.cat([left, 1 - left], 1))
    assert torch.allclose(out[..., :4], adain_from_statistics(content[..., :4], *a), atol=1e-5)
    assert torch.equal(out[..., 4:], content[..., 4:])  # the style None keeps its region
    out = regional_adain(content, [a, b], torch.cat([left, 1 - left], 1))
    assert torch.allclose(out[..., 4:], adain_from_statistics(content[..., 4:], *b), atol=1e-5)


def test_weighted_statistics_with_unit_weights_are_the_plain_ones() -> None:
    x = _features(2, 3, 5, 7)
    for got, want in zip(channel_statistics(x, region=torch.ones(1, 1, 5, 7)), channel_statistics(x)):
        assert torch.allclose(got, want, atol=1e-5)


def test_split_content_style() -> None:
    x = torch.rand(2, 6, 4, 4)
    content, style = split_content_style(x)
    assert torch.equal(content, x[:, :3]) and torch.equal(style, x[:, 3:])
    with pytest.raises(InputError, match=r"stacked on the channels, \(B, 6, H, W\)"):
        split_content_style(torch.rand(2, 3, 4, 4))


def test_bad_inputs() -> None:
    x = torch.rand(2, 4, 5, 5)
    with pytest.raises(InputError, match="4 dimensions"):
        adain(x[0], x)
    with pytest.raises(InputError, match=r"expected \(B, C, H', W'\) or \(1, C, H', W'\) with C = 4"):
        adain(x, torch.rand(1, 3, 5, 5))
    with pytest.raises(InputError, match="do not fit"):
        adain(x, torch.rand(3, 4, 5, 5))
    with pytest.raises(InputTypeError, match="floating-point"):
        adain(x, torch.ones(1, 4, 5, 5, dtype=torch.int64))
    for eps in (0.0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(InputError, match="eps must be a finite number > 0"):
            adain(x, x, eps=eps)
    for alpha in (-0.1, 1.5, "1", True):
        with pytest.raises(InputError, match=r"alpha must be a number in \[0, 1\]"):
            blend(x, x, alpha)
    with pytest.raises(InputError, match="one channel per style"):
        regional_adain(x, [channel_statistics(x)], torch.ones(1, 2, 5, 5))
    with pytest.raises(InputError, match="the style's mean must be"):
        adain_from_statistics(x, torch.zeros(1, 3), torch.ones(1, 3))
