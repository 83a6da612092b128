"""How much a stylised image took of its style and kept of its content, measured without a loss network.

Three measures of an output against the content image it started from and the style image it was given,
none of which depends on the loss that made it (so a style transfer cannot score well by fitting its own
loss network):

- **colour**: the sliced Wasserstein distance between the RGB pixel distributions of the output and the
  style, as a ratio to the content image's own distance to the style. 1: the colours moved no closer to the
  style's; 0: the output has the style's colours.
- **texture**: the same ratio for the sets of ``7x7`` RGB patches (stride 2), each minus its own mean
  colour, so that it compares local structure and not colour. 1: no closer to the style's texture; above 1:
  further from it than the content was (noise, say); 0: the style's patches.
- **layout**: the Pearson correlation between the output's and the content's luma, each average-pooled to
  a ``16x16`` grid. 1: the content's layout (up to brightness and contrast); 0: none of it.

With ``SW(P, Q) = sqrt(mean_k mean_i (sort(<p, v_k>)_i - sort(<q, v_k>)_i)^2)`` over seeded unit directions
``v_k`` (:func:`lossnet.terms.sliced_wasserstein.sliced_wasserstein`, here its square root, a distance):

``colour = SW(pixels(out), pixels(style)) / SW(pixels(content), pixels(style))``,
``texture = SW(patches(out), patches(style)) / SW(patches(content), patches(style))``,
``layout = corr(pool16(Y(out)), pool16(Y(content)))``.

Sizes: the content and the style are resized (bicubic, antialiased) to the output's size, the style
keeping its aspect ratio (its longer side becomes the output's longer side, as ``lossnet stylize`` scales
it), so the patches of all three are of the same scale. Sets of different sizes are compared as quantile
functions. At most ``max_points`` pixels or patches of an image are used, a seeded sample (the same
positions for images of the same size), which keeps a large image's cost bounded.

The measures are computed in float32 whatever the inputs' dtype. They are the figures of issue 20 of
lossnet ("the papers' effects, visible"); the thresholds it sets for a style transfer are colour <= 0.5,
texture <= 0.8 and layout >= 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lossnet.errors import InputError
from lossnet.functional.reduction import reduce
from lossnet.metrics.pixel import rgb_to_y
from lossnet.terms.sliced_wasserstein import random_directions, sliced_wasserstein
from lossnet.validation import check_image, check_positive_int

#: The side of the patches the texture measure compares, and their stride.
PATCH_SIZE, PATCH_STRIDE = 7, 2
#: The grid the layout measure pools the luma to.
LAYOUT_GRID = 16
#: Directions of the colour (RGB) and texture (patch) distances.
COLOUR_DIRECTIONS, TEXTURE_DIRECTIONS = 64, 128
#: The most pixels or patches of one image a distance uses (a seeded sample beyond that).
MAX_POINTS = 65536


@dataclass(frozen=True)
class StyleMeasures:
    """The three measures of an output (means over the batch), and the distances they are ratios of.

    Attributes:
        colour: colour distance ratio, ``>= 0`` (lower: closer to the style's colours).
        texture: texture distance ratio, ``>= 0`` (lower: closer to the style's patches).
        layout: layout correlation with the content, in [-1, 1] (higher: more of the content's layout);
            NaN when either pooled luma is constant.
        colour_distance: ``SW`` of the output's pixels to the style's.
        content_colour_distance: ``SW`` of the content's pixels to the style's (the ratio's denominator).
        texture_distance: ``SW`` of the output's patches to the style's.
        content_texture_distance: ``SW`` of the content's patches to the style's.
    """

    colour: float
    texture: float
    layout: float
    colour_distance: float
    content_colour_distance: float
    texture_distance: float
    content_texture_distance: float

    def as_dict(self) -> dict[str, float]:
        """The three measures by name: ``{'colour': ..., 'texture': ..., 'layout': ...}``."""
        return {"colour": self.colour, "texture": self.texture, "layout": self.layout}


def colour_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    directions: int = COLOUR_DIRECTIONS,
    seed: int = 0,
    max_points: int = MAX_POINTS,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sliced Wasserstein distance between the RGB pixel distributions of two images.

    Args:
        x: ``(B, 3, H, W)`` in [0, 1].
        y: ``(B, 3, H', W')`` or ``(1, 3, H', W')`` in [0, 1], any size.
        directions: random unit directions in RGB space (seeded by ``seed``).
        seed: seeds the directions and the sample of ``max_points`` pixels.
        max_points: the most pixels of an image used.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``(B,)``) over the batch.

    Returns:
        float32, ``>= 0``, in [0, 1] units of a channel; 0 when ``y``'s pixels are ``x``'s in any order.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> float(colour_distance(x, x.flip(-1)))
        0.0
        >>> grey = torch.full((1, 3, 4, 4), 0.5)
        >>> float(colour_distance(grey, grey + 0.25)) == float(colour_distance(grey, grey - 0.25))
        True
    """
    x, y = _check_pair(x, y, "x", "y")
    return _distance(x, y, directions, seed, max_points, reduction)


def texture_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    directions: int = TEXTURE_DIRECTIONS,
    seed: int = 0,
    max_points: int = MAX_POINTS,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sliced Wasserstein distance between the sets of ``7x7`` RGB patches (stride 2) of two images,
    each patch minus its own mean colour.

    Args:
        x: ``(B, 3, H, W)`` in [0, 1], ``H, W >= 7``.
        y: ``(B, 3, H', W')`` or ``(1, 3, H', W')`` in [0, 1], ``H', W' >= 7``, at the scale to compare at.
        directions: random unit directions in the 147-dimensional patch space (seeded by ``seed``).
        seed: seeds the directions and the sample of ``max_points`` patches.
        max_points: the most patches of an image used.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``(B,)``) over the batch.

    Returns:
        float32, ``>= 0``; 0 for images of one flat colour each (their patches minus their mean are all zero).

    Example:
        >>> float(texture_distance(torch.zeros(1, 3, 9, 9), torch.full((1, 3, 9, 9), 0.5)))
        0.0
    """
    x, y = _check_pair(x, y, "x", "y")
    for name, image in (("x", x), ("y", y)):
        if min(image.shape[-2:]) < PATCH_SIZE:
            raise InputError(
                f"texture_distance compares {PATCH_SIZE}x{PATCH_SIZE} patches; {name} is "
                f"{tuple(image.shape[-2:])}: give images at least {PATCH_SIZE} pixels on each side"
            )
    return _distance(_patches(x), _patches(y), directions, seed, max_points, reduction)


def layout_correlation(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Pearson correlation between the luma of two images, each average-pooled to a ``16x16`` grid.

    Args:
        x: ``(B, 3, H, W)`` in [0, 1].
        y: ``(B, 3, H', W')`` in [0, 1]; any size (pooling to the grid makes them comparable; an aspect
            ratio other than ``x``'s stretches it onto ``x``'s grid).
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``(B,)``) over the batch.

    Returns:
        float32 in [-1, 1]; NaN where either pooled luma is constant (a correlation is undefined there).

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> round(float(layout_correlation(x, 0.5 * x)), 4), round(float(layout_correlation(x, 1 - x)), 4)
        (1.0, -1.0)
    """
    x, y = _check_pair(x, y, "x", "y")
    if y.shape[0] != x.shape[0]:
        raise InputError(f"layout_correlation compares images one to one; got batches {x.shape[0]} and {y.shape[0]}")
    a, b = (F.adaptive_avg_pool2d(rgb_to_y(t), LAYOUT_GRID).flatten(1) for t in (x, y))
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    denominator = a.norm(dim=1) * b.norm(dim=1)
    scale = 1e-6 * LAYOUT_GRID  # a pooled luma whose spread is under ~1e-6 counts as constant
    corr = (a * b).sum(1) / denominator
    corr = torch.where((a.norm(dim=1) > scale) & (b.norm(dim=1) > scale), corr, torch.full_like(corr, math.nan))
    return reduce(corr.clamp(-1.0, 1.0), reduction)


def style_measures(
    output: torch.Tensor, content: torch.Tensor, style: torch.Tensor, seed: int = 0, max_points: int = MAX_POINTS
) -> StyleMeasures:
    """The colour and texture ratios and the layout correlation of a stylised image (module docstring).

    Args:
        output: the stylised images ``(B, 3, H, W)`` in [0, 1], ``H, W >= 7``.
        content: their content images ``(B, 3, H', W')`` (or one, ``(1, 3, H', W')``) in [0, 1]; resized to
            ``(H, W)`` when they differ.
        style: the style image ``(1, 3, H'', W'')`` (or one per output) in [0, 1]; resized so that its longer
            side is ``max(H, W)``.
        seed: seeds the directions and the samples of ``max_points`` pixels or patches.
        max_points: the most pixels or patches of an image used.

    Returns:
        :class:`StyleMeasures`, each figure the mean over the batch. A ratio is NaN where the content is as
        far from the style as nothing (both distances 0) and infinite where only the content's is 0.

    Example:
        >>> content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32).pow(3)
        >>> m = style_measures(content, content, style)
        >>> m.colour, m.texture, round(m.layout, 4)
        (1.0, 1.0, 1.0)
        >>> style_measures(style, content, style).colour
        0.0
    """
    output = _check(output, "output")
    content, style = _check(content, "content"), _check(style, "style")
    batch = output.shape[0]
    for name, image in (("content", content), ("style", style)):
        if image.shape[0] not in (1, batch):
            raise InputError(
                f"{name} must have batch 1 or the output's ({batch}); got {tuple(image.shape)}: pass one "
                f"{name} image per output, or one for all"
            )
    size = tuple(output.shape[-2:])
    content = _resize(content, size).expand(batch, -1, -1, -1)
    h, w = style.shape[-2:]
    scale = max(size) / max(h, w)
    style = _resize(style, (max(1, round(h * scale)), max(1, round(w * scale))))
    kw = {"seed": seed, "max_points": max_points, "reduction": "none"}
    colour, content_colour = colour_distance(output, style, **kw), colour_distance(content, style, **kw)
    texture, content_texture = texture_distance(output, style, **kw), texture_distance(content, style, **kw)
    layout = layout_correlation(output, content, reduction="none")
    return StyleMeasures(
        colour=_mean(colour / content_colour),
        texture=_mean(texture / content_texture),
        layout=_mean(layout),
        colour_distance=_mean(colour),
        content_colour_distance=_mean(content_colour),
        texture_distance=_mean(texture),
        content_texture_distance=_mean(content_texture),
    )


def _check(x: torch.Tensor, name: str) -> torch.Tensor:
    x = check_image(x, name, (0.0, 1.0))
    if x.shape[1] != 3:
        raise InputError(
            f"{name} must be an RGB image (B, 3, H, W); got {tuple(x.shape)}: repeat a grey channel 3 times"
        )
    return x.detach().float()


def _check_pair(x: torch.Tensor, y: torch.Tensor, xn: str, yn: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _check(x, xn), _check(y, yn)
    if y.shape[0] not in (1, x.shape[0]):
        raise InputError(f"{yn} must have batch 1 or {xn}'s ({x.shape[0]}); got {tuple(y.shape)}")
    return x, y


def _resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0.0, 1.0)


def _patches(x: torch.Tensor) -> torch.Tensor:
    """``(B, 147, n, 1)``: the 7x7 RGB patches (stride 2) of ``x``, each minus its mean colour, as points."""
    p = F.unfold(x, PATCH_SIZE, stride=PATCH_STRIDE)  # (B, 3 * 49, n), channel-major
    b, _, n = p.shape
    p = p.view(b, 3, PATCH_SIZE * PATCH_SIZE, n)
    return (p - p.mean(2, keepdim=True)).view(b, -1, n, 1)


def _sample(points: torch.Tensor, max_points: int, seed: int) -> torch.Tensor:
    """At most ``max_points`` of the positions of ``(B, C, H, W)``, a seeded sample, as ``(B, C, n, 1)``."""
    flat = points.flatten(2)
    n = flat.shape[-1]
    if n <= max_points:
        return flat.unsqueeze(-1)
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_points].to(flat.device)
    return flat[:, :, keep].unsqueeze(-1)


def _distance(
    x: torch.Tensor, y: torch.Tensor, directions: int, seed: int, max_points: int, reduction: str
) -> torch.Tensor:
    check_positive_int(max_points, "max_points")
    count = check_positive_int(directions, "directions")
    v = random_directions(x.shape[1], count, torch.Generator().manual_seed(seed))
    x, y = _sample(x, max_points, seed), _sample(y, max_points, seed)
    return reduce(sliced_wasserstein(x, y, v, reduction="none").clamp_min(0).sqrt(), reduction)


def _mean(values: torch.Tensor) -> float:
    return float(values.mean())
