"""The image-transformation network of Johnson, Alahi & Fei-Fei (2016), for fast style transfer."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lossnet.models.blocks import ResidualBlock, conv, conv_norm_relu, make_norm
from lossnet.models.value_range import ScaledTanh, check_ranges, to_signed
from lossnet.validation import check_choice, check_model_input, check_positive_int

#: Normalisations TransformerNet offers.
TRANSFORMER_NORMS: tuple[str, ...] = ("instance", "batch")
#: Upsampling layers TransformerNet offers.
TRANSFORMER_UPSAMPLES: tuple[str, ...] = ("resize", "transposed")


class TransformerNet(nn.Module):
    """Feed-forward style-transfer network (Johnson, Alahi & Fei-Fei 2016, arXiv:1603.08155).

    Layout (``c = channels``, 32 in the paper), all convolutions reflection-padded:

    - 9x9 conv to ``c``; 3x3 stride-2 convs to ``2c`` and ``4c`` (each followed by norm, ReLU);
    - ``num_residual`` residual blocks at ``4c`` (two 3x3 convs each, see :class:`ResidualBlock`);
    - two 2x upsampling stages to ``2c`` and ``c`` (each followed by norm, ReLU);
    - 9x9 conv to 3 channels, then a scaled tanh into ``output_range``.

    Departures from the paper, all for the usual reasons of later re-implementations:

    - ``norm='instance'`` is the default (Ulyanov et al. 2016 showed it works much better
      for stylisation than the paper's batch norm; ``'batch'`` is the paper's).
    - ``upsample='resize'`` (nearest 2x resize then 3x3 conv) is the default; it avoids the
      checkerboard artefacts of the paper's stride-1/2 convolutions, which
      ``upsample='transposed'`` (``ConvTranspose2d``, stride 2) reproduces.
    - Every convolution is padded, so the output has the input's size; the paper pads the
      input by 40 pixels once and uses unpadded convolutions in the residual blocks.
    - Convolutions followed by a norm have no bias (the norm would cancel it).
    - The input is first mapped from ``input_range`` to ``[-1, 1]`` by
      ``2 (x - lo) / (hi - lo) - 1`` (a fixed affine map, not learned); the paper feeds
      raw ``[0, 255]`` pixels to batch norm.
    - The output is ``lo + (hi - lo) (tanh(y) + 1) / 2``, which lies in ``output_range``
      exactly; the paper's ``150 tanh(y) + 127.5`` overshoots ``[0, 255]`` slightly.

    Args:
        channels: width of the first layer, ``c`` above (32 in the paper); smaller values
            make tiny networks for tests.
        num_residual: number of residual blocks (5 in the paper).
        norm: ``'instance'`` (affine, default) or ``'batch'``.
        upsample: ``'resize'`` (default) or ``'transposed'``.
        output_range: the range of the output image: ``(0, 1)`` (default), ``(-1, 1)`` or ``(0, 255)``.
        input_range: the range of the input image, one of the same; ``None`` (default) means
            ``output_range``.

    Shape:
        ``(B, 3, H, W)`` to ``(B, 3, H, W)``, with H and W multiples of 4 and at least 8.
        Other sizes raise :class:`~lossnet.errors.InputError`.

    Example:
        >>> import torch
        >>> net = TransformerNet(channels=8, num_residual=1)
        >>> y = net(torch.rand(2, 3, 32, 48))
        >>> y.shape, bool(y.min() >= 0 and y.max() <= 1)
        (torch.Size([2, 3, 32, 48]), True)
        >>> net.size_multiple, net.min_size, net.in_channels, net.scale
        (4, 8, 3, 1)
    """

    #: The size rule (read by :func:`lossnet.inference.apply_model`'s tiler and checked in
    #: ``forward``): H and W are multiples of 4 (two stride-2 convs) and at least 8.
    size_multiple = 4
    min_size = 8
    #: Input channels, and how many times larger the output is.
    in_channels = 3
    scale = 1

    def __init__(
        self,
        channels: int = 32,
        num_residual: int = 5,
        norm: str = "instance",
        upsample: str = "resize",
        output_range: Sequence[float] = (0.0, 1.0),
        input_range: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        c = check_positive_int(channels, "channels")
        self.num_residual = check_positive_int(num_residual, "num_residual")
        self.norm = check_choice(norm, TRANSFORMER_NORMS, "norm")
        self.upsample = check_choice(upsample, TRANSFORMER_UPSAMPLES, "upsample")
        self.output_range, self.input_range = check_ranges(output_range, input_range)
        self.channels = c

        self.encoder = nn.Sequential(
            conv_norm_relu(3, c, 9, norm),
            conv_norm_relu(c, 2 * c, 3, norm, stride=2),
            conv_norm_relu(2 * c, 4 * c, 3, norm, stride=2),
        )
        self.residuals = nn.Sequential(*(ResidualBlock(4 * c, norm) for _ in range(num_residual)))
        self.decoder = nn.Sequential(self._up(4 * c, 2 * c), self._up(2 * c, c))
        self.head = conv(c, 3, 9)
        self.to_range = ScaledTanh(self.output_range)

    def _up(self, in_channels: int, out_channels: int) -> nn.Sequential:
        if self.upsample == "resize":
            layers: list[nn.Module] = [
                nn.Upsample(scale_factor=2, mode="nearest"),
                conv(in_channels, out_channels, 3, bias=False),
            ]
        else:
            layers = [
                nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False)
            ]
        return nn.Sequential(*layers, make_norm(self.norm, out_channels), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        """Transform images.

        Args:
            x: images ``(B, 3, H, W)`` in ``input_range``, H and W multiples of 4, at least 8.
                The values are not checked.

        Returns:
            images ``(B, 3, H, W)`` in ``output_range``.
        """
        check_model_input(x, "TransformerNet", self.in_channels, self.size_multiple, self.min_size)
        y = self.decoder(self.residuals(self.encoder(to_signed(x, self.input_range))))
        return self.to_range(self.head(y))

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, num_residual={self.num_residual}, norm={self.norm!r}, "
            f"upsample={self.upsample!r}, output_range={self.output_range}, input_range={self.input_range}"
        )
