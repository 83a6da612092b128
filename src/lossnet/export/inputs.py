"""What an exported graph takes: one image, or an image and its style (the two style networks that take one).

:func:`export_form` gives the module to trace and what its file declares besides the image
(:attr:`lossnet.card.Interface.style_input`):

- a network of one input image: itself, and ``image`` ``(B, C, H, W)``;
- a :class:`~lossnet.models.MultiStyleNet` of ``N > 1`` styles (``style_multi``): itself, and a second
  input ``style``, a float mix ``(B or 1, N)``. A mix serves both of its uses in one graph: a one-hot
  row is the index ``k`` (the network's mix path is its index path exactly there, see
  :mod:`lossnet.models.multi_style_net`), and any other row blends the styles' norm parameters;
- a network that declares its own exported form, a method ``export_graph() -> (module, style_input,
  num_styles)``: what it returns. An arbitrary-style network (``style_any``) gives a graph of inputs
  ``content`` ``(B, 3, H, W)``, ``style`` ``(B or 1, 3, H', W')`` of any size, and ``alpha`` ``(B or 1,)``
  (``style_input`` ``'image'``; :class:`lossnet.models.adain.AdaINGraph`).

:func:`example_inputs` makes the fixed random inputs the exporters trace with and check at: two
content sizes (batch 1 and 2) and, for a style image, two style sizes that differ from the
content's and from each other (the second check gives one style to a batch of 2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lossnet.card import Interface
from lossnet.errors import ExportError


def export_form(net: nn.Module, name: str) -> tuple[nn.Module, str, int]:
    """``(module to trace, style_input, num_styles)`` for a network (see the module docstring).

    Raises:
        ExportError: a network that declares more than one input image and no exported form of its own.
    """
    own = getattr(net, "export_graph", None)
    if own is not None:
        return own()
    inputs = tuple(getattr(net, "inputs", ("image",)))
    if len(inputs) != 1:
        raise ExportError(
            f"{name} takes {len(inputs)} images ({', '.join(inputs)}); lossnet export writes networks of one input "
            "image, a multi-style network's style mix, or an AdaINNet's content and style, and cannot export this one"
        )
    count = int(getattr(net, "num_styles", 1))
    return (net, "mix", count) if count > 1 else (net, "", 0)


def style_sizes(size: tuple[int, int], min_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two style sizes for the checks at content ``size``: neither the content's, nor multiples of anything.

    >>> style_sizes((40, 44), 16)
    ((49, 37), (35, 71))
    """
    h, w = size
    return (h + 9, max(w - 7, min_size)), (max(h - 5, min_size), w + 27)


def example_inputs(
    interface: Interface, batch: int, size: tuple[int, int], check: int, seed: int = 0
) -> tuple[Tensor, ...]:
    """Fixed random float32 inputs for check ``check`` (0: the trace, 1: the second size), in the graph's order.

    The image ``(batch, in_channels, H, W)`` in the input range; for a mix, ``(1, N)`` at check 0 and at
    check 1 ``(batch, N)`` whose first row is one-hot; for a style image, ``(1, 3, H', W')`` at a size of
    :func:`style_sizes`, and alpha ``(1,)`` at check 0 and one per image at check 1.
    """
    lo, hi = interface.input_range
    g = torch.Generator().manual_seed(seed)
    image = lo + (hi - lo) * torch.rand(batch, interface.in_channels, *size, generator=g)
    rows = 1 if check == 0 else batch
    if interface.style_input == "mix":
        mix = torch.rand(rows, interface.num_styles, generator=g) + 0.1
        mix = mix / mix.sum(1, keepdim=True)
        if check:
            mix[0] = torch.eye(interface.num_styles)[-1]  # a one-hot row: the index path
        return image, mix
    if interface.style_input == "image":
        style = torch.rand(1, 3, *style_sizes(size, interface.min_size)[check], generator=g)
        return image, style, 0.2 + 0.6 * torch.rand(rows, generator=g)
    return (image,)


def dynamic_axes(interface: Interface) -> dict[str, dict[int, str]]:
    """The ONNX graph's free axes, by input and output name: batch and size, and the style's own."""
    first, *rest = interface.input_names
    axes = {first: {0: "batch", 2: "height", 3: "width"}}
    for name in rest:
        axes[name] = {0: f"{name}_batch"}
    if interface.style_input == "image":
        axes["style"] |= {2: "style_height", 3: "style_width"}
    return axes
