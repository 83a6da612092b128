"""Real-ESRGAN's compact super-resolution network (SRVGGNetCompact), with its published weight names.

Upscaler apps (chaiNNer, ComfyUI, InvokeAI, through spandrel) recognise this network by its
state-dict keys and read its hyper-parameters back from the tensors' shapes, so a
:class:`Compact` trained by lossnet, saved with flat keys
(:func:`lossnet.export.spandrel.export_spandrel`), loads there as it is.
:func:`compact_hyperparameters` does that reading here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossnet.errors import InputError, InputTypeError
from lossnet.validation import check_choice, check_model_input, check_positive_int

#: Activations the published network offers; only ``'prelu'`` has weights, so only it shows in the keys.
COMPACT_ACTIVATIONS: tuple[str, ...] = ("prelu", "relu", "leakyrelu")


class Compact(nn.Module):
    """Real-ESRGAN's Compact network, SRVGGNetCompact (Wang, Xie, Dong & Shan 2021, arXiv:2107.10833).

    A stack of 3x3 convolutions at low resolution, the last one to ``out_channels scale^2``
    channels, a pixel shuffle to full resolution, and the nearest-neighbour upscaling of the
    input added:

    - ``body.0``: 3x3 conv ``in_channels -> num_feat``; ``body.1``: activation;
    - ``body.2 .. body.{2 num_conv + 1}``: ``num_conv`` (3x3 conv ``num_feat -> num_feat``, activation) pairs;
    - ``body.{2 num_conv + 2}``: 3x3 conv ``num_feat -> out_channels scale^2``;
    - ``upsampler``: :class:`~torch.nn.PixelShuffle` (no weights), then ``+ nearest(x, scale)``.

    Every convolution is zero-padded by 1 and has a bias. A PReLU has one slope per feature map
    (``body.{odd}.weight``, shape ``(num_feat,)``); a ReLU or LeakyReLU (slope 0.1) holds no
    weights, so its index is missing from the state dict. These are the published key names and
    shapes (``realesrgan/archs/srvgg_arch.py``), and the published forward pass: images go in and
    come out in [0, 1] as they are (no normalisation), and the output is not clamped (a small
    overshoot is left to the caller; :func:`~lossnet.inference.apply_model` and the saved files clamp).

    Departure: the last convolution starts at zero (weights and bias), so an untrained network
    is exactly the nearest-neighbour upscaling and the first optimiser steps cannot throw the
    output far from it (as :class:`~lossnet.models.SuperResNet`'s zero residual gain does;
    a gain parameter here would add a key the apps do not know). The published network keeps
    PyTorch's default initialisation. Loading weights overwrites either.

    Args:
        scale: upscaling factor (``upscale`` in the published code), an int >= 1.
        in_channels: input channels (``num_in_ch``).
        out_channels: output channels (``num_out_ch``); the added input needs ``in_channels`` equal
            to it or 1.
        num_feat: feature maps of every hidden convolution (``num_feat``, 64 published).
        num_conv: hidden ``num_feat -> num_feat`` convolutions (``num_conv``, 16 published;
            realesr-animevideov3 uses 16 and realesr-general-x4v3 32).
        act_type: ``'prelu'`` (default, published), ``'relu'`` or ``'leakyrelu'``.

    Shape:
        ``(B, in_channels, h, w)`` to ``(B, out_channels, scale h, scale w)``, any h, w >= 1.

    Example:
        >>> net = Compact(scale=2, num_feat=8, num_conv=2)
        >>> [(k, tuple(v.shape)) for k, v in net.state_dict().items()][:3]
        [('body.0.weight', (8, 3, 3, 3)), ('body.0.bias', (8,)), ('body.1.weight', (8,))]
        >>> x = torch.rand(1, 3, 5, 7)
        >>> torch.equal(net(x), F.interpolate(x, scale_factor=2, mode="nearest"))  # untrained: nearest
        True
        >>> net.size_multiple, net.min_size, net.in_channels, net.scale
        (1, 1, 3, 2)
    """

    #: The size rule (read by :func:`lossnet.inference.apply_model`'s tiler): any H and W, zero padding.
    size_multiple = 1
    min_size = 1
    #: The published network takes and gives [0, 1] images as they are.
    input_range = (0.0, 1.0)
    output_range = (0.0, 1.0)

    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        self.scale = check_positive_int(scale, "scale")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        if self.in_channels not in (1, self.out_channels):
            raise InputError(
                f"Compact adds the upscaled input to the output, so in_channels must be 1 or out_channels "
                f"({self.out_channels}); got in_channels={self.in_channels}"
            )
        self.num_feat = check_positive_int(num_feat, "num_feat")
        if isinstance(num_conv, bool) or not isinstance(num_conv, int) or num_conv < 0:
            raise InputError(f"num_conv must be an int >= 0; got {num_conv!r}")
        self.num_conv = num_conv
        self.act_type = check_choice(act_type, COMPACT_ACTIVATIONS, "act_type")

        layers: list[nn.Module] = [nn.Conv2d(self.in_channels, self.num_feat, 3, 1, 1), self._activation()]
        for _ in range(num_conv):
            layers += [nn.Conv2d(self.num_feat, self.num_feat, 3, 1, 1), self._activation()]
        last = nn.Conv2d(self.num_feat, self.out_channels * self.scale**2, 3, 1, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.ModuleList([*layers, last])
        self.upsampler = nn.PixelShuffle(self.scale)

    def _activation(self) -> nn.Module:
        if self.act_type == "prelu":
            return nn.PReLU(num_parameters=self.num_feat)
        if self.act_type == "relu":
            return nn.ReLU()
        return nn.LeakyReLU(negative_slope=0.1)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale images.

        Args:
            x: images ``(B, in_channels, h, w)``, in [0, 1] (values are not checked).

        Returns:
            images ``(B, out_channels, scale h, scale w)``, about [0, 1] (not clamped).
        """
        check_model_input(x, "Compact", self.in_channels, self.size_multiple, self.min_size)
        y = x
        for layer in self.body:
            y = layer(y)
        return self.upsampler(y) + F.interpolate(x, scale_factor=self.scale, mode="nearest")

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"num_feat={self.num_feat}, num_conv={self.num_conv}, act_type={self.act_type!r}"
        )


_BODY_KEY = re.compile(r"body\.(\d+)\.(weight|bias)")


def compact_hyperparameters(state_dict: Mapping[str, Tensor], act_type: str | None = None) -> dict[str, Any]:
    """Read a Compact network's constructor arguments back from its weights' shapes alone.

    ``in_channels`` and ``num_feat`` are ``body.0.weight``'s shape ``(num_feat, in_channels, 3, 3)``;
    the last conv's index ``2 num_conv + 2`` gives ``num_conv``; its ``out_channels scale^2``
    outputs give the scale, taking ``out_channels`` as the first of ``in_channels``, 3, 4, 1 that
    leaves a whole square (the rule upscaler apps use: ``x48`` from 3 channels is x4 RGB). A
    PReLU shows as ``body.1.weight``; a ReLU and a LeakyReLU hold no weights, so they cannot
    be told apart and ``act_type`` must then be given.

    Args:
        state_dict: the flat keys (``body.0.weight``, ...) as :meth:`Compact.state_dict` or a
            Real-ESRGAN ``.pth``/``.safetensors`` holds them (tensors, or anything with ``.shape``).
        act_type: the activation when the weights cannot show it; checked against them when they can.

    Returns:
        ``{"scale", "in_channels", "out_channels", "num_feat", "num_conv", "act_type"}``:
        ``Compact(**result)`` takes these weights.

    Raises:
        InputError: the keys are not a Compact network's, or the activation cannot be read.

    Example:
        >>> compact_hyperparameters(Compact(scale=2, num_feat=8, num_conv=3).state_dict())
        {'scale': 2, 'in_channels': 3, 'out_channels': 3, 'num_feat': 8, 'num_conv': 3, 'act_type': 'prelu'}
    """
    if not isinstance(state_dict, Mapping):
        raise InputTypeError(f"state_dict must be a mapping of key to tensor; got {type(state_dict).__name__}")
    stray = sorted(k for k in state_dict if not _BODY_KEY.fullmatch(k))
    if "body.0.weight" not in state_dict or stray:
        what = f"keys it does not have ({stray[:3]})" if stray else "no body.0.weight"
        raise InputError(
            f"not a Compact (SRVGGNetCompact) state dict: it has {what}. Compact's keys are body.<n>.weight "
            "and body.<n>.bias, flat (a lossnet checkpoint holds them under 'model/'; load it with load_model)"
        )
    first = tuple(state_dict["body.0.weight"].shape)
    if len(first) != 4 or first[2:] != (3, 3):
        raise InputError(f"body.0.weight of a Compact network is (num_feat, in_channels, 3, 3); got {first}")
    num_feat, in_channels = first[:2]
    last = max(int(_BODY_KEY.fullmatch(k).group(1)) for k in state_dict)  # type: ignore[union-attr]
    if last < 2 or last % 2:
        raise InputError(f"the last convolution of a Compact network has an even index >= 2; got body.{last}")
    prelu = "body.1.weight" in state_dict
    if act_type is None and not prelu:
        raise InputError(
            "the weights hold no activation (a ReLU or a LeakyReLU, which the shapes cannot tell apart); "
            "pass act_type='relu' or act_type='leakyrelu'"
        )
    act = "prelu" if act_type is None else check_choice(act_type, COMPACT_ACTIVATIONS, "act_type")
    if (act == "prelu") != prelu:
        has = "have" if prelu else "have no"
        raise InputError(f"act_type={act!r} but the weights {has} PReLU slopes (body.1.weight)")
    outputs = int(state_dict[f"body.{last}.weight"].shape[0])
    for channels in dict.fromkeys((in_channels, 3, 4, 1)):
        scale = math.isqrt(outputs // channels)
        if outputs % channels == 0 and scale * scale * channels == outputs:
            break
    else:
        raise InputError(f"the last convolution's {outputs} outputs are not channels x scale^2 for 1, 3 or 4 channels")
    return {
        "scale": scale,
        "in_channels": int(in_channels),
        "out_channels": channels,
        "num_feat": int(num_feat),
        "num_conv": (last - 2) // 2,
        "act_type": act,
    }
