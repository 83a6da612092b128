"""Several styles in one network: TransformerNet with conditional instance norm (Dumoulin, Shlens & Kudlur 2017).

Every instance norm of :class:`~lossnet.models.TransformerNet` becomes a
:class:`ConditionalInstanceNorm`: the same normalisation, then one ``(scale, shift)`` pair per style,
``gamma_s * norm(x) + beta_s``. The convolutions are shared by all styles. The network takes a style
for each image, as an index or as a mix: a mix ``w`` (non-negative, summing to 1) blends the affine
parameters, ``gamma = sum_s w_s gamma_s`` (and so for ``beta``), which is how the paper interpolates
between styles. A one-hot mix is the index path exactly (each product is by 1 or 0, the sum adds zeros).

:class:`StyleChoice` fixes a style on a network so that it is called as any one-input network
(the tiled :func:`lossnet.inference.apply_model`, export).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from lossnet.errors import InputError, InputTypeError
from lossnet.models.interface import adopt_interface
from lossnet.models.transformer_net import TransformerNet
from lossnet.validation import check_positive_int

#: How far a mix's sum may be from 1.
MIX_TOLERANCE = 1e-4


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with one affine pair per style: ``gamma[s] * (x - mean) / std + beta[s]``.

    The normalisation is a plain :class:`~torch.nn.InstanceNorm2d` (``self.norm``, no affine), so
    tiled inference can hold its statistics to the whole image's (:mod:`lossnet.inference.norm_stats`).
    The style comes from :attr:`mix`, a ``(B, num_styles)`` weight per image that the network sets
    for the length of a forward pass.

    Args:
        channels: feature maps.
        num_styles: styles, each with its own ``weight[s]`` (scale, starts at 1) and ``bias[s]`` (shift, 0).
    """

    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))
        self.mix: Tensor | None = None
        self.index: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.index is not None:  # one style per image: its own parameters, as they are
            gamma, beta = self.weight[self.index], self.bias[self.index]
        elif self.mix is not None:  # in float32 whatever the autocast: a one-hot mix adds exact zeros
            mix = self.mix.float()[:, :, None]
            gamma, beta = (mix * self.weight.float()).sum(1), (mix * self.bias.float()).sum(1)
        else:
            raise InputError("ConditionalInstanceNorm needs a style; call it through its MultiStyleNet")
        y = self.norm(x)
        return y * gamma[:, :, None, None].to(y.dtype) + beta[:, :, None, None].to(y.dtype)


class MultiStyleNet(TransformerNet):
    """TransformerNet for ``num_styles`` styles at once, with conditional instance norm (arXiv:1610.07629).

    The layout is :class:`~lossnet.models.TransformerNet`'s with ``norm='instance'``; each of its
    instance norms has ``num_styles`` affine pairs (:class:`ConditionalInstanceNorm`). The rest of the
    weights are shared, so a style costs ``2 x`` the norm channels (about 3k numbers at ``channels=32``).

    Args:
        num_styles: how many styles the network holds.
        channels, num_residual, upsample, output_range, input_range: as for TransformerNet.

    Shape:
        ``forward(x, style)``: ``x`` ``(B, 3, H, W)`` (H, W multiples of 4, at least 8) to ``(B, 3, H, W)``.
        ``style``: an int, or int64 indices ``(B,)`` (or ``()``), in ``[0, num_styles)``; or a float mix
        ``(num_styles,)`` or ``(B, num_styles)``, each row ``>= 0`` and summing to 1. ``None`` is style 0
        only for a one-style network.

    Example:
        >>> net = MultiStyleNet(num_styles=3, channels=4, num_residual=1)
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y = net(x, torch.tensor([0, 2]))
        >>> torch.equal(y, net(x, torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])))  # one-hot mixes: the same
        True
        >>> net(x, 3)
        Traceback (most recent call last):
        ...
        lossnet.errors.InputError: style 3 is out of range: this network holds 3 styles, 0 to 2
    """

    #: Every norm is an instance norm (there is no ``norm`` argument to choose it): what TransformerNet's ``norm``
    #: says, declared on the class, so the trainer can read it before building (it redraws near-flat crops).
    norm = "instance"

    def __init__(
        self,
        num_styles: int = 2,
        channels: int = 32,
        num_residual: int = 5,
        upsample: str = "resize",
        output_range: Sequence[float] = (0.0, 1.0),
        input_range: Sequence[float] | None = None,
    ) -> None:
        super().__init__(channels, num_residual, "instance", upsample, output_range, input_range)
        self.num_styles = check_positive_int(num_styles, "num_styles")
        for name, module in list(self.named_modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, nn.InstanceNorm2d):
                    setattr(module, child_name, ConditionalInstanceNorm(child.num_features, self.num_styles))
        self.conditional_norms = [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def forward(self, x: Tensor, style: int | Tensor | None = None) -> Tensor:  # type: ignore[override]
        """Stylise ``x`` ``(B, 3, H, W)`` in ``input_range`` with ``style`` (see the class's Shape)."""
        index, mix = style_weights(style, self.num_styles, x.shape[0] if isinstance(x, Tensor) else 1)
        for norm in self.conditional_norms:
            norm.index, norm.mix = index, mix
        try:
            return super().forward(x)
        finally:
            for norm in self.conditional_norms:
                norm.index = norm.mix = None

    def style_parameters(self) -> Iterator[nn.Parameter]:
        """The per-style parameters: every conditional norm's scales and shifts (the trainer can give them their own
        learning rate, ``TrainConfig.style_lr_scale``).

        >>> sum(p.numel() for p in MultiStyleNet(num_styles=2, channels=4, num_residual=1).style_parameters())
        288
        """
        for norm in self.conditional_norms:
            yield from norm.parameters()

    def extra_repr(self) -> str:
        return f"num_styles={self.num_styles}, " + super().extra_repr()


def style_weights(style: int | Tensor | None, num_styles: int, batch: int) -> tuple[Tensor | None, Tensor | None]:
    """``(indices (B,), None)`` or ``(None, mix (B, num_styles))`` for a network of ``num_styles``, checked.

    Raises:
        InputError: an index out of range, a mix of the wrong length, with a negative weight, or not summing
            to 1; no style for a network of several.
    """
    if style is None:
        if num_styles != 1:
            raise InputError(
                f"this network holds {num_styles} styles; pass style= an index 0 to {num_styles - 1}, "
                f"or a mix of {num_styles} weights summing to 1"
            )
        style = 0
    if isinstance(style, bool) or not isinstance(style, (int, Tensor)):
        raise InputTypeError(f"style must be an int, int64 indices (B,) or a float mix; got {type(style).__name__}")
    if isinstance(style, int):
        style = torch.tensor(style)
    if not style.is_floating_point():
        index = style.long().reshape(-1).expand(batch) if style.numel() == 1 else style.long()
        if index.shape != (batch,):
            raise InputError(f"style indices must be one per image, ({batch},); got {tuple(style.shape)}")
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= num_styles:
            bad = low if low < 0 else high
            raise InputError(
                f"style {bad} is out of range: this network holds {num_styles} styles, 0 to {num_styles - 1}"
            )
        return index, None
    mix = style[None] if style.ndim == 1 else style
    if mix.ndim != 2 or mix.shape[1] != num_styles or mix.shape[0] not in (1, batch):
        raise InputError(
            f"a style mix has one weight per style, ({num_styles},) or ({batch}, {num_styles}); got {tuple(style.shape)}"
        )
    sums = mix.detach().float().sum(1)
    if bool((mix < 0).any()) or bool(((sums - 1).abs() > MIX_TOLERANCE).any()):
        raise InputError(
            f"a style mix's weights must be >= 0 and sum to 1; got {[round(w, 4) for w in mix.detach().tolist()[0]]} "
            f"(sum {float(sums[0]):g}); e.g. 0.3,0.7 for two styles"
        )
    return None, mix.expand(batch, -1)


class StyleChoice(nn.Module):
    """A multi-style network with its style fixed: ``StyleChoice(net, 1)(x) == net(x, 1)``.

    It declares the network's size rule, channels, scale and ranges (and ``per_image_norm``, where an
    exported file declares it), so that tiled inference and the exporters take it as any one-input network.

    Args:
        model: a network whose ``forward(x, style)`` takes a style (:class:`MultiStyleNet`).
        style: an index, or a mix ``(num_styles,)`` (a sequence of floats or a tensor), checked here.

    Example:
        >>> net = MultiStyleNet(num_styles=2, channels=4, num_residual=1).eval()
        >>> x = torch.rand(1, 3, 16, 16)
        >>> torch.equal(StyleChoice(net, [0.25, 0.75])(x), net(x, torch.tensor([0.25, 0.75])))
        True
    """

    def __init__(self, model: nn.Module, style: int | Sequence[float] | Tensor) -> None:
        super().__init__()
        self.model = model
        if not isinstance(style, (int, Tensor)):
            style = torch.tensor([float(w) for w in style])
        style_weights(style, int(model.num_styles), 1)  # checked now, not at the first image
        self.style = style
        self.train(model.training)
        adopt_interface(self, model)

    def forward(self, x: Tensor) -> Tensor:
        style = self.style.to(x.device) if isinstance(self.style, Tensor) else self.style
        return self.model(x, style)
