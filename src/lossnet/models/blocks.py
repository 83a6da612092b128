"""Building blocks shared by the image-transformation networks: convolutions, norms, residual blocks."""

from __future__ import annotations

from torch import Tensor, nn

from lossnet.validation import check_choice

#: Normalisation layers the networks can use (not every network offers ``'none'``).
NORMS: tuple[str, ...] = ("instance", "batch", "none")


def make_norm(norm: str, channels: int) -> nn.Module:
    """A normalisation layer for ``channels`` feature maps.

    ``'instance'`` is an affine :class:`~torch.nn.InstanceNorm2d` without running
    statistics (so it normalises each image by its own statistics in eval mode too, as
    style transfer wants), ``'batch'`` a :class:`~torch.nn.BatchNorm2d`, ``'none'`` an identity.

    >>> norm = make_norm("instance", 8)
    >>> type(norm).__name__, norm.affine, norm.track_running_stats
    ('InstanceNorm2d', True, False)
    """
    check_choice(norm, NORMS, "norm")
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    bias: bool = True,
    padding_mode: str = "reflect",
) -> nn.Conv2d:
    """A ``kernel_size`` convolution padded by ``kernel_size // 2`` (reflection by default).

    With an odd kernel, stride 1 keeps the size and stride 2 halves an even size exactly.

    >>> import torch
    >>> conv(3, 8, 9)(torch.rand(1, 3, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
    """
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=bias, padding_mode=padding_mode
    )


def conv_norm_relu(
    in_channels: int, out_channels: int, kernel_size: int, norm: str, stride: int = 1, padding_mode: str = "reflect"
) -> nn.Sequential:
    """Convolution, normalisation, ReLU.

    The convolution has no bias when a norm follows: the norm subtracts the mean, so a
    bias there would be a parameter that never receives a gradient.
    """
    return nn.Sequential(
        conv(in_channels, out_channels, kernel_size, stride, bias=norm == "none", padding_mode=padding_mode),
        make_norm(norm, out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """``x + norm(conv(relu(norm(conv(x)))))``, two 3x3 convolutions at constant width.

    This is the block of Johnson et al. (2016, supplementary, after Gross & Wilber), with
    no ReLU after the sum. Their convolutions are unpadded and the identity is cropped to
    match (the image being reflection-padded by 40 pixels once, up front); here each
    convolution is reflection-padded instead, so the block keeps the size and nothing is cropped.

    Args:
        channels: feature maps in and out.
        norm: ``'instance'``, ``'batch'`` or ``'none'``.

    Example:
        >>> import torch
        >>> ResidualBlock(8, "instance")(torch.rand(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_relu(channels, channels, 3, norm),
            conv(channels, channels, 3, bias=norm == "none"),
            make_norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)
