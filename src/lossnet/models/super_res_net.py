"""A single-image super-resolution network (Johnson, Alahi & Fei-Fei 2016, section 4.2)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossnet.errors import InputError, InputTypeError
from lossnet.models.blocks import NORMS, ResidualBlock, conv, conv_norm_relu
from lossnet.models.upsampling import PixelShuffleICNR, ResizeConv
from lossnet.models.value_range import ScaledTanh, clamp_st, check_ranges, from_signed, to_signed
from lossnet.validation import check_choice, check_model_input, check_positive_int

#: Upscaling factors SuperResNet offers.
SCALES: tuple[int, ...] = (2, 4, 8)
#: Upsampling layers SuperResNet offers.
SR_UPSAMPLES: tuple[str, ...] = ("pixel_shuffle", "resize")


class SuperResNet(nn.Module):
    """Super-resolution network: residual blocks at low resolution, then ``log2(scale)`` 2x upsamplings.

    After Johnson, Alahi & Fei-Fei (2016, arXiv:1603.08155, section 4.2 and supplementary):

    - a ``head_kernel_size`` conv (9x9 as in the paper, or 3x3) to ``channels``, norm, ReLU;
    - ``num_residual`` residual blocks at ``channels`` (the paper uses 4 blocks of 64);
    - ``log2(scale)`` 2x upsampling stages at ``channels``, each followed by a ReLU:
      ``'pixel_shuffle'`` (default; :class:`PixelShuffleICNR` with a 3x3 conv, ICNR
      initialisation and blur) or ``'resize'`` (nearest 2x resize then 3x3 conv);
      the paper uses stride-1/2 convolutions;
    - a ``head_kernel_size`` conv to 3 channels.

    All convolutions are reflection-padded. The input is mapped from ``input_range`` to
    ``[-1, 1]`` first (``2 (x - lo) / (hi - lo) - 1``, fixed).

    Output range, the one design choice that differs between the two modes:

    - ``residual_bicubic=True`` (default): the network predicts a residual ``g r`` added to
      the bicubic upsampling of the input, both in ``[-1, 1]`` units, and the sum is clamped
      to ``[-1, 1]`` before being mapped to ``output_range``. A tanh would distort the bicubic
      base everywhere (a residual of 0 must mean "bicubic"); the clamp only touches pixels
      that overshoot (bicubic rings a little at sharp edges). Two choices keep this trainable:

      * ``g`` (``residual_gain``) is one learnable scalar initialised to 0 (ReZero, Bachlechner
        et al. 2021), so the output at initialisation *is* the bicubic upsampling and the
        first optimiser steps cannot jump far from it. Without it, one Adam step at 1e-3 moves
        every weight of the 9x9x64 last conv by about 1e-3 in a correlated direction, which
        shifts whole colour channels by ~2.6 (in ``[-1, 1]`` units): the output saturates to
        a flat colour, and in lossnet <= 0.1.0 it stayed there.
      * the clamp passes its gradient straight through (:class:`ClampST`), so a pixel pushed
        past the range still learns its way back instead of receiving a zero gradient forever.

      Checkpoints written before ``residual_gain`` existed load with ``g = 1`` (their exact output).
    - ``residual_bicubic=False``: the output is the scaled tanh of the last conv,
      ``lo + (hi - lo) (tanh(y) + 1) / 2``, as in :class:`TransformerNet`; the last conv keeps
      PyTorch's default initialisation.

    Args:
        scale: upscaling factor, 2, 4 or 8.
        channels: width of every layer before the last (64 in the paper).
        num_residual: number of residual blocks (4 in the paper).
        head_kernel_size: kernel of the first and last convs, an odd int (9 in the paper).
        upsample: ``'pixel_shuffle'`` (default) or ``'resize'``.
        norm: ``'batch'`` (default, as in the paper), ``'instance'`` or ``'none'`` (as in EDSR).
        residual_bicubic: predict a residual over bicubic upsampling (default ``True``).
        output_range: ``(0, 1)`` (default), ``(-1, 1)`` or ``(0, 255)``.
        input_range: the input's range, one of the same; ``None`` (default) means ``output_range``.

    Shape:
        ``(B, 3, h, w)`` to ``(B, 3, scale h, scale w)``; h and w must be at least
        ``max(2, head_kernel_size // 2 + 1)`` (reflection padding needs it).

    Example:
        >>> import torch
        >>> net = SuperResNet(scale=4, channels=8, num_residual=1)
        >>> x = torch.rand(1, 3, 12, 10)
        >>> y = net(x)
        >>> y.shape
        torch.Size([1, 3, 48, 40])
        >>> bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic").clamp(0, 1)
        >>> torch.allclose(y, bicubic, atol=1e-6)  # at initialisation (residual_gain = 0)
        True
        >>> net.size_multiple, net.min_size, net.in_channels, net.scale
        (1, 5, 3, 4)
    """

    #: The size rule (read by :func:`lossnet.inference.apply_model`'s tiler and checked in
    #: ``forward``): any H and W of at least :attr:`min_size` (set from ``head_kernel_size``).
    size_multiple = 1
    #: Input channels.
    in_channels = 3

    def __init__(
        self,
        scale: int = 4,
        channels: int = 64,
        num_residual: int = 4,
        head_kernel_size: int = 9,
        upsample: str = "pixel_shuffle",
        norm: str = "batch",
        residual_bicubic: bool = True,
        output_range: Sequence[float] = (0.0, 1.0),
        input_range: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int):
            raise InputTypeError(f"scale must be an int, one of {list(SCALES)}; got {scale!r}")
        if scale not in SCALES:
            raise InputError(f"scale must be one of {list(SCALES)}; got {scale}")
        k = check_positive_int(head_kernel_size, "head_kernel_size")
        if k % 2 == 0:
            raise InputError(f"head_kernel_size must be odd (3 or 9, say) to keep the size; got {k}")
        c = check_positive_int(channels, "channels")
        self.scale = scale
        self.channels = c
        self.num_residual = check_positive_int(num_residual, "num_residual")
        self.head_kernel_size = k
        self.upsample = check_choice(upsample, SR_UPSAMPLES, "upsample")
        self.norm = check_choice(norm, NORMS, "norm")
        self.residual_bicubic = bool(residual_bicubic)
        self.output_range, self.input_range = check_ranges(output_range, input_range)
        #: The smallest H and W: reflection padding needs the padding to be smaller than the image.
        self.min_size = max(2, k // 2 + 1)

        self.stem = conv_norm_relu(3, c, k, norm)
        self.residuals = nn.Sequential(*(ResidualBlock(c, norm) for _ in range(num_residual)))
        stages: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            if upsample == "pixel_shuffle":
                stages.append(PixelShuffleICNR(c, c, 2, kernel_size=3, padding_mode="reflect"))
            else:
                stages += [ResizeConv(c, c, 3), nn.ReLU(inplace=True)]
        self.upsampler = nn.Sequential(*stages)
        self.head = conv(c, 3, k)
        if self.residual_bicubic:
            self.residual_gain = nn.Parameter(torch.zeros(()))
        self.to_range = ScaledTanh(self.output_range)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale images.

        Args:
            x: images ``(B, 3, h, w)`` in ``input_range`` (values are not checked).

        Returns:
            images ``(B, 3, scale h, scale w)`` in ``output_range``.
        """
        check_model_input(x, "SuperResNet", self.in_channels, self.size_multiple, self.min_size)
        z = to_signed(x, self.input_range)
        y = self.head(self.upsampler(self.residuals(self.stem(z))))
        if not self.residual_bicubic:
            return self.to_range(y)
        base = F.interpolate(z, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return from_signed(clamp_st(base + self.residual_gain * y), self.output_range)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        # Checkpoints from before residual_gain: their head was trained with an implicit gain of 1.
        key = prefix + "residual_gain"
        if self.residual_bicubic and key not in state_dict and prefix + "head.weight" in state_dict:
            state_dict[key] = torch.ones((), dtype=state_dict[prefix + "head.weight"].dtype)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, channels={self.channels}, num_residual={self.num_residual}, "
            f"head_kernel_size={self.head_kernel_size}, upsample={self.upsample!r}, norm={self.norm!r}, "
            f"residual_bicubic={self.residual_bicubic}, output_range={self.output_range}, "
            f"input_range={self.input_range}"
        )

