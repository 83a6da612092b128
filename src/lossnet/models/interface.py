"""What a network tells the tools that run it, as attributes: its channels, scale, value ranges, size rule and norms.

The tiler (:func:`lossnet.inference.apply_model`), the exporters and ``lossnet info`` read these from the network
itself. A wrapper that binds a network's extra inputs (a style index, a style image) and changes none of them takes
them over with :func:`adopt_interface`.

>>> from lossnet.models import TransformerNet
>>> class Wrapped(torch.nn.Module):
...     def __init__(self, net):
...         super().__init__()
...         self.net = net
...         adopt_interface(self, net)
>>> w = Wrapped(TransformerNet(channels=4, num_residual=1))
>>> w.size_multiple, w.min_size, w.scale, hasattr(w, "per_image_norm")  # an exported file's flag: none here
(4, 8, 1, False)
"""

from __future__ import annotations

import torch  # noqa: F401  (the doctest's torch.nn)
from torch import nn

#: The attributes a wrapper takes over from its network (those the network has).
INTERFACE_ATTRS = (
    "in_channels", "scale", "size_multiple", "min_size", "input_range", "output_range", "per_image_norm",
)  # fmt: skip


def adopt_interface(wrapper: nn.Module, net: nn.Module) -> None:
    """Set on ``wrapper`` each of :data:`INTERFACE_ATTRS` that ``net`` has, to ``net``'s value."""
    for attr in INTERFACE_ATTRS:
        if hasattr(net, attr):
            setattr(wrapper, attr, getattr(net, attr))
