"""Adaptive instance normalisation (AdaIN; Huang & Belongie, ICCV 2017, arXiv:1703.06868).

AdaIN gives each channel of the content's features the mean and standard deviation of the
style's, per image (eq. 8):

``AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y)``

with ``mu`` and ``sigma = sqrt(var + eps)`` taken per channel over the positions, the variance the
biased one (over ``H * W``), as instance norm takes it. The same ``eps`` enters both ``sigma``, so
AdaIN of ``x`` with its own statistics gives ``x`` back. Statistics are computed in float32 whatever
the features' dtype (float64 stays float64), and so is the result.

Beyond eq. 8 the paper's inference controls are here too: :func:`blend` is the content-style
trade-off ``alpha * t + (1 - alpha) * x`` (sec. 7, eq. 14), and :func:`regional_adain` the spatial
control (sec. 7): each region of the content (a soft mask) normalised by its own statistics and
given its own style's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lossnet.errors import InputError
from lossnet.validation import check_tensor

#: Added to the variance before its square root (the paper's code and instance norm's default).
ADAIN_EPS = 1e-5

#: Channels of a training pair of ``style_any``: the content image, then its style image, stacked.
PACKED_CHANNELS = 6

#: A style's statistics: per-channel mean and standard deviation, each ``(B, C)`` or ``(1, C)``.
Statistics = tuple[torch.Tensor, torch.Tensor]


def _exact(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0 or eps != eps or eps == float("inf"):
        raise InputError(f"eps must be a finite number > 0 (a flat channel has sigma 0 without it); got {eps!r}")
    return float(eps)


def split_content_style(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(content, style)``, each ``(B, 3, H, W)``, of a content and a style stacked on the channels ``(B, 6, H, W)``.

    The one convention of ``style_any``'s training pairs (content first), which its network and loss read.

    >>> [tuple(t.shape) for t in split_content_style(torch.zeros(2, 6, 8, 8))]
    [(2, 3, 8, 8), (2, 3, 8, 8)]
    """
    check_tensor(x, "content and style", 4)
    if x.shape[1] != PACKED_CHANNELS:
        raise InputError(
            f"expected a content and a style image stacked on the channels, (B, 6, H, W), content first, as the "
            f"style_any task's pairs are; got {tuple(x.shape)}"
        )
    return x[:, :3], x[:, 3:]


def channel_mean_std(features: torch.Tensor, eps: float = ADAIN_EPS) -> Statistics:
    """Per-channel mean and ``sqrt(var + eps)`` over all positions, ``((B, C), (B, C))``, float32 (float64 stays).

    The biased variance (``correction=0``); ``eps >= 0`` (0 is fine for a distance between statistics;
    :func:`adain` divides by the content's, so it needs :func:`channel_statistics`' ``eps > 0``).

    >>> mean, std = channel_mean_std(torch.tensor([[[[1.0, 3.0]]]]), eps=0.0)
    >>> mean.tolist(), std.tolist()
    ([[2.0]], [[1.0]])
    """
    x = _exact(check_tensor(features, "features", 4))
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf"):
        raise InputError(f"eps must be a finite number >= 0; got {eps!r}")
    var, mean = torch.var_mean(x.flatten(2), dim=2, correction=0)
    return mean, (var + eps).sqrt()


def channel_statistics(
    features: torch.Tensor, eps: float = ADAIN_EPS, region: torch.Tensor | None = None
) -> Statistics:
    """Per-channel mean and ``sqrt(var + eps)`` over positions, ``((B, C), (B, C))``, float32 (float64 stays).

    Args:
        features: ``(B, C, H, W)``, any real values.
        eps: added to the biased variance before the square root, > 0.
        region: ``None`` (every position counts once) or ``(B, 1, H, W)`` / ``(1, 1, H, W)`` weights
            ``>= 0``: the statistics of a soft region, ``mu = sum(w x) / sum(w)`` and the variance
            likewise. A region of zero total weight gets mean 0 and ``sqrt(eps)``.

    Example:
        >>> mean, std = channel_statistics(torch.tensor([[[[1.0, 3.0]]]]), eps=1e-12)
        >>> mean.tolist(), [round(v, 6) for v in std[0].tolist()]
        ([[2.0]], [1.0])
    """
    eps = _check_eps(eps)
    if region is None:
        return channel_mean_std(features, eps)
    x = _exact(check_tensor(features, "features", 4))
    w = _exact(check_tensor(region, "region", 4)).to(x.dtype)
    if w.shape[1] != 1 or w.shape[-2:] != x.shape[-2:] or w.shape[0] not in (1, x.shape[0]):
        raise InputError(
            f"region must be (B, 1, H, W) or (1, 1, H, W) at the features' size {tuple(x.shape[-2:])}; "
            f"got {tuple(w.shape)} for features {tuple(x.shape)}"
        )
    total = w.sum((-2, -1)).clamp_min(torch.finfo(x.dtype).tiny)
    mean = (w * x).sum((-2, -1)) / total
    var = (w * (x - mean[..., None, None]).square()).sum((-2, -1)) / total
    return mean, (var + eps).sqrt()


def check_statistics(content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Raise unless ``(mean, std)`` are a style's statistics ``(B or 1, C)`` for content features ``(B, C, H, W)``."""
    b, c = content.shape[:2]
    for name, s in (("mean", mean), ("std", std)):
        if s.ndim != 2 or s.shape[1] != c or s.shape[0] not in (1, b):
            raise InputError(
                f"the style's {name} must be (B, C) or (1, C) with C = {c}, the content's channels; got "
                f"{tuple(s.shape)} for content {tuple(content.shape)}. Take both from the same encoder layer."
            )


def adain_from_statistics(
    content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, eps: float = ADAIN_EPS
) -> torch.Tensor:
    """AdaIN with the style given by its statistics (as :func:`channel_statistics` returns them).

    ``std * (content - mu(content)) / sigma(content) + mean``, ``(B, C, H, W)``, float32 (or float64).
    A style's statistics computed once can so be applied to any number of contents.
    """
    x = _exact(check_tensor(content, "content features", 4))
    check_statistics(x, mean, std)
    mu, sigma = channel_statistics(x, eps)
    scale = _exact(std).to(x.dtype) / sigma
    return (x - mu[..., None, None]) * scale[..., None, None] + _exact(mean).to(x.dtype)[..., None, None]


def recolour(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``images`` with each RGB channel given ``mean`` and ``std``: AdaIN on pixels, clamped to [0, 1].

    Reinhard et al. 2001's colour transfer, in RGB. The style task's recoloured content targets
    (``--recolour-target``) and ``lossnet stylize --init recoloured`` both use it.

    Args:
        images: ``(B, 3, H, W)`` in [0, 1].
        mean, std: a reference's :func:`channel_statistics`, ``(B or 1, 3)``.

    Returns:
        ``(B, 3, H, W)`` in [0, 1], float32.

    Example:
        >>> grey = torch.full((1, 3, 6, 6), 0.4)
        >>> out = recolour(torch.rand(2, 3, 8, 8), *channel_statistics(grey))
        >>> round(float(out.mean()), 4), round(float(out.std()), 2)  # a flat reference: its flat colour
        (0.4, 0.0)
    """
    return adain_from_statistics(images.float(), mean, std, ADAIN_EPS).clamp(0.0, 1.0)


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = ADAIN_EPS) -> torch.Tensor:
    """Adaptive instance normalisation: the content's features with the style's channel statistics.

    Args:
        content: content features ``(B, C, H, W)``.
        style: style features ``(B, C, H', W')`` or ``(1, C, H', W')`` (one style for every content);
            any size: only their per-channel statistics are used.
        eps: added to both variances before the square root, > 0.

    Returns:
        ``(B, C, H, W)``, float32 (float64 inputs stay float64): per channel, the mean of ``style``
        and its ``sqrt(var + eps)`` (up to ``eps``'s share in the content's variance).

    Example:
        >>> x = torch.tensor([[[[0.0, 2.0]]]])
        >>> y = torch.tensor([[[[10.0, 10.0, 14.0, 14.0]]]])
        >>> adain(x, y, eps=1e-12).tolist()  # mean 10 -> 12, spread 1 -> 2
        [[[[10.0, 14.0]]]]
    """
    content = check_tensor(content, "content features", 4)
    style = check_tensor(style, "style features", 4)
    if style.shape[1] != content.shape[1] or style.shape[0] not in (1, content.shape[0]):
        raise InputError(
            f"style features {tuple(style.shape)} do not fit content features {tuple(content.shape)}: expected "
            f"(B, C, H', W') or (1, C, H', W') with C = {content.shape[1]}. Encode both at the same layer."
        )
    mean, std = channel_statistics(style, eps)
    return adain_from_statistics(content, mean, std, eps)


def blend(stylised: torch.Tensor, content: torch.Tensor, alpha: float) -> torch.Tensor:
    """The content-style trade-off ``alpha * stylised + (1 - alpha) * content`` (the paper's eq. 14).

    ``alpha = 1`` is full AdaIN, ``alpha = 0`` the content's own features (the decoder then
    reconstructs the content); both ends return their input itself, unrounded. Both ``(B, C, H, W)``;
    ``alpha`` in [0, 1].

    >>> blend(torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), 0.25).item()
    0.25
    """
    a = check_alpha(alpha)
    if stylised.shape != content.shape:
        shapes = f"{tuple(stylised.shape)} and {tuple(content.shape)}"
        raise InputError(f"blend needs two feature maps of one shape; got {shapes}")
    if a == 1.0:
        return stylised
    if a == 0.0:
        return content
    return a * stylised + (1.0 - a) * content.to(stylised.dtype)


def check_alpha(alpha: object) -> float:
    """Return ``alpha`` as a float if it lies in [0, 1], else raise (1 is full style, 0 the content)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise InputError(f"alpha must be a number in [0, 1] (1: full style, 0: the content); got {alpha!r}")
    return float(alpha)


def regional_adain(
    content: torch.Tensor,
    styles: Sequence[Statistics | None],
    masks: torch.Tensor,
    eps: float = ADAIN_EPS,
) -> torch.Tensor:
    """Spatial control: region ``r`` of the content takes style ``r``'s statistics (the paper's sec. 7).

    ``sum_r m_r * (std_r * (x - mu_r(x)) / sigma_r(x) + mean_r)``, where ``mu_r`` and ``sigma_r``
    are the content's statistics over region ``r`` alone (weighted by ``m_r``), so each region is
    restyled as if it were an image of its own. A style given as ``None`` keeps its region's
    content features as they are.

    Args:
        content: content features ``(B, C, H, W)``.
        styles: one ``(mean, std)`` per region (:func:`channel_statistics` of a style's features), or ``None``.
        masks: ``(B, R, H, W)`` or ``(1, R, H, W)`` region weights in [0, 1] at the features' size, one
            channel per style; they should sum to 1 at each position (two regions: ``m`` and ``1 - m``).
        eps: as for :func:`adain`.

    Returns:
        ``(B, C, H, W)``, float32 (or float64).
    """
    x = _exact(check_tensor(content, "content features", 4))
    m = _exact(check_tensor(masks, "masks", 4)).to(x.dtype)
    if m.shape[1] != len(styles) or m.shape[-2:] != x.shape[-2:] or m.shape[0] not in (1, x.shape[0]):
        raise InputError(
            f"masks must be (B, R, H, W) or (1, R, H, W) with one channel per style (R = {len(styles)}) at the "
            f"features' size {tuple(x.shape[-2:])}; got {tuple(m.shape)}"
        )
    out = torch.zeros_like(x)
    for r, style in enumerate(styles):
        region = m[:, r : r + 1]
        if style is None:
            out = out + region * x
            continue
        mean, std = style
        check_statistics(x, mean, std)
        mu, sigma = channel_statistics(x, eps, region=region)
        scale = (_exact(std).to(x.dtype) / sigma)[..., None, None]
        out = out + region * ((x - mu[..., None, None]) * scale + _exact(mean).to(x.dtype)[..., None, None])
    return out
