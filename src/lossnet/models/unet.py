"""A U-Net (Ronneberger, Fischer & Brox 2015) with ICNR pixel-shuffle upsampling, for image-to-image tasks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lossnet.models.blocks import NORMS, conv, conv_norm_relu
from lossnet.models.upsampling import PixelShuffleICNR
from lossnet.errors import InputError
from lossnet.models.value_range import ScaledTanh, clamp_st, check_ranges, from_signed, to_signed
from lossnet.validation import check_choice, check_model_input, check_positive_int

#: Downsampling layers UNet offers.
UNET_DOWNSAMPLES: tuple[str, ...] = ("conv", "maxpool")


def _double_conv(in_channels: int, out_channels: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        conv_norm_relu(in_channels, out_channels, 3, norm, padding_mode="zeros"),
        conv_norm_relu(out_channels, out_channels, 3, norm, padding_mode="zeros"),
    )


class _Down(nn.Module):
    """Halve the size and double the width: stride-2 conv or max-pool, then conv blocks."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, downsample: str) -> None:
        super().__init__()
        if downsample == "conv":
            self.body = nn.Sequential(
                conv_norm_relu(in_channels, out_channels, 3, norm, stride=2, padding_mode="zeros"),
                conv_norm_relu(out_channels, out_channels, 3, norm, padding_mode="zeros"),
            )
        else:
            self.body = nn.Sequential(nn.MaxPool2d(2), _double_conv(in_channels, out_channels, norm))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class _Up(nn.Module):
    """Double the size and halve the width (:class:`PixelShuffleICNR`), concatenate the skip, conv blocks."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        self.up = PixelShuffleICNR(in_channels, out_channels, 2, kernel_size=1, blur=True)
        self.body = _double_conv(2 * out_channels, out_channels, norm)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.body(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """U-Net with pixel-shuffle (ICNR + blur) upsampling and concatenated skip connections.

    Widths ``c_i = base_channels * 2**i`` for ``i = 0 .. depth``:

    - level 0: two 3x3 conv-norm-ReLU at full resolution, ``in_channels`` to ``c_0``;
    - encoder level ``i = 1 .. depth``: halve the size to width ``c_i`` (``downsample='conv'``:
      a stride-2 3x3 conv-norm-ReLU then one 3x3 conv-norm-ReLU; ``'maxpool'``: a 2x2 max-pool
      then two 3x3 conv-norm-ReLU, as in Ronneberger et al.);
    - decoder level ``i = depth .. 1``: :class:`PixelShuffleICNR` (1x1 conv to ``4 c_{i-1}``,
      ReLU, PixelShuffle(2), blur, as fastai's ``PixelShuffle_ICNR``) to width ``c_{i-1}``,
      concatenation with the encoder's level ``i-1`` output, two 3x3 conv-norm-ReLU;
    - a 1x1 conv to ``out_channels``, then either ``lo + (hi - lo) (tanh(y) + 1) / 2`` into
      ``output_range`` (``residual=False``, default), or, with ``residual=True``, a residual
      ``g y`` added to the input itself (repeated to ``out_channels`` when the input has one
      channel) and clamped to the range, with ``g`` a learnable scalar initialised to 0, as in
      :class:`~lossnet.models.SuperResNet`. The network then starts as the identity, which is
      the task's baseline for restoration (the degraded input) and colourisation (the grey
      input), and the first optimiser steps cannot throw it far from that.

    Convolutions are zero-padded (as in most U-Nets; the deepest maps may be 1x1, too small
    for reflection). The input is mapped from ``input_range`` to ``[-1, 1]`` first by the
    fixed ``2 (x - lo) / (hi - lo) - 1``. Convolutions followed by a norm have no bias.

    Args:
        in_channels: input channels: 1 for colorisation from luminance, 3 for RGB (default).
        out_channels: output channels (3).
        depth: number of 2x downsamplings (4).
        base_channels: width at full resolution (32); the bottleneck has ``base_channels * 2**depth``.
        norm: ``'batch'`` (default), ``'instance'`` or ``'none'``. In training mode both norms
            need more than one value per channel, so with batch size 1 the bottleneck must be
            bigger than 1x1 (an input of at least ``2**(depth + 1)`` pixels a side).
        downsample: ``'conv'`` (stride-2 convolution, default) or ``'maxpool'``.
        output_range: ``(0, 1)`` (default), ``(-1, 1)`` or ``(0, 255)``.
        input_range: the input's range, one of the same; ``None`` (default) means ``output_range``.
        residual: predict a residual over the input (see above); needs ``in_channels`` equal to
            ``out_channels`` or 1. The restore and colorize recipes turn it on.

    Shape:
        ``(B, in_channels, H, W)`` to ``(B, out_channels, H, W)``, with H and W multiples of
        ``2**depth`` (:attr:`size_multiple`) and at least :attr:`min_size`; other sizes raise :class:`~lossnet.errors.InputError`.

    Example:
        >>> import torch
        >>> net = UNet(in_channels=1, depth=2, base_channels=4)
        >>> net(torch.rand(2, 1, 16, 24)).shape
        torch.Size([2, 3, 16, 24])
        >>> net.size_multiple, net.min_size, net.scale
        (4, 4, 1)
    """

    #: The output has the input's size.
    scale = 1

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 4,
        base_channels: int = 32,
        norm: str = "batch",
        downsample: str = "conv",
        output_range: Sequence[float] = (0.0, 1.0),
        input_range: Sequence[float] | None = None,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.depth = check_positive_int(depth, "depth")
        self.base_channels = check_positive_int(base_channels, "base_channels")
        self.norm = check_choice(norm, NORMS, "norm")
        self.downsample = check_choice(downsample, UNET_DOWNSAMPLES, "downsample")
        self.output_range, self.input_range = check_ranges(output_range, input_range)
        self.residual = bool(residual)
        if self.residual and in_channels not in (1, out_channels):
            raise InputError(
                f"residual=True adds the input to the output, so in_channels must be 1 or out_channels "
                f"({out_channels}); got in_channels={in_channels}. Use residual=False"
            )

        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = _double_conv(in_channels, widths[0], norm)
        self.encoder = nn.ModuleList(_Down(widths[i], widths[i + 1], norm, downsample) for i in range(depth))
        self.decoder = nn.ModuleList(_Up(widths[i + 1], widths[i], norm) for i in reversed(range(depth)))
        self.head = conv(widths[0], out_channels, 1)
        self.to_range = ScaledTanh(self.output_range)
        if self.residual:
            self.residual_gain = nn.Parameter(torch.zeros(()))

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this: ``2**depth`` (one halving per level)."""
        return 2**self.depth

    @property
    def min_size(self) -> int:
        """The smallest H and W: ``2**depth``, or twice that with instance norm.

        Instance norm needs more than one value per channel, also at the bottleneck, so its
        input must be at least 2x2 there.
        """
        return 2 * self.size_multiple if self.norm == "instance" else self.size_multiple

    def forward(self, x: Tensor) -> Tensor:
        """Map images to images.

        Args:
            x: images ``(B, in_channels, H, W)`` in ``input_range`` (values are not checked),
                H and W multiples of ``2**depth``.

        Returns:
            images ``(B, out_channels, H, W)`` in ``output_range``.
        """
        check_model_input(x, "UNet", self.in_channels, self.size_multiple, self.min_size)
        z = to_signed(x, self.input_range)
        y = self.stem(z)
        skips: list[Tensor] = []
        for down in self.encoder:
            skips.append(y)
            y = down(y)
        for up, skip in zip(self.decoder, reversed(skips), strict=True):
            y = up(y, skip)
        if not self.residual:
            return self.to_range(self.head(y))
        base = z.expand(-1, self.out_channels, -1, -1) if self.in_channels == 1 else z
        return from_signed(clamp_st(base + self.residual_gain * self.head(y)), self.output_range)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, depth={self.depth}, "
            f"base_channels={self.base_channels}, norm={self.norm!r}, downsample={self.downsample!r}, "
            f"output_range={self.output_range}, input_range={self.input_range}, residual={self.residual}"
        )
