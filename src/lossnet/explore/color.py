"""Colour preservation for style transfer: transfer luminance only (Gatys et al. 2016, arXiv:1606.05897).

The content and style images are reduced to their luminance Y of YIQ; the style's Y is
shifted and scaled to the content's mean and standard deviation; style transfer runs on the
grey images; the result's Y is then joined with the content's chrominance I, Q.
"""

from __future__ import annotations

import torch

from lossnet.errors import InputError
from lossnet.validation import check_image

# NTSC YIQ (FCC): Y is BT.601 luma, as lossnet.data.luminance.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(device=x.device, dtype=x.dtype), x)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] to YIQ (Y in [0, 1], I and Q about [-0.6, 0.6]).

    >>> rgb_to_yiq(torch.ones(1, 3, 1, 1)).flatten().round(decimals=4).abs()
    tensor([1., 0., 0.])
    """
    _check_rgb(x)
    return _mix(x, _RGB_TO_YIQ)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_yiq`; the result is not clamped.

    >>> x = torch.rand(1, 3, 4, 4)
    >>> torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-5)
    True
    """
    _check_rgb(x, "YIQ image", check_range=False)
    return _mix(x, torch.linalg.inv(_RGB_TO_YIQ.double()).float())


def luminance_only(content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey (3-channel) versions of content and style for luminance-only transfer.

    The style's luminance is matched to the content's mean and standard deviation
    (Gatys et al. 2016, sec. 3), so the style brings texture, not a brightness shift.

    Returns:
        ``(content_grey, style_grey)``, each ``(1, 3, H, W)`` in [0, 1] with equal channels.
    """
    yc, ys = rgb_to_yiq(content)[:, :1], rgb_to_yiq(style)[:, :1]
    ys = (ys - ys.mean()) / ys.std().clamp_min(1e-6) * yc.std() + yc.mean()
    return yc.expand(-1, 3, -1, -1).clone(), ys.clamp(0.0, 1.0).expand(-1, 3, -1, -1).clone()


def with_content_colour(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Join the luminance of ``result`` with the chrominance (I, Q) of ``content``; both ``(1, 3, H, W)``.

    >>> content = torch.rand(1, 3, 4, 4)
    >>> torch.allclose(with_content_colour(content, content), content, atol=1e-5)
    True
    """
    if result.shape != content.shape:
        raise InputError(f"result {tuple(result.shape)} and content {tuple(content.shape)} must have one shape")
    y = rgb_to_yiq(result)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0.0, 1.0)


def _check_rgb(x: torch.Tensor, name: str = "image", check_range: bool = True) -> None:
    check_image(x, name, (0.0, 1.0) if check_range else None)
    if x.shape[1] != 3:
        raise InputError(f"{name} must be RGB (B, 3, H, W); got {tuple(x.shape)}")
