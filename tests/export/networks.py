"""The networks every export test runs: each model registry entry, small, with its weights moved off their initial values.

A registry entry without a tiny configuration here is exported at its defaults, so a new entry is
covered by the parity tests the day it is added.
"""

from __future__ import annotations

import torch
from torch import nn

from lossnet.models import MODELS, build_model, model_spec
from tests.inference.checkpoints import perturbed

#: (test id, registry name, constructor arguments): every network lossnet trains, in its variants.
CASES: list[tuple[str, str, dict]] = [
    ("style-instance", "TransformerNet", {"channels": 4, "num_residual": 1}),
    ("style-multi-one-style", "MultiStyleNet", {"num_styles": 1, "channels": 4, "num_residual": 1}),
    ("style-batch-transposed", "TransformerNet", {"channels": 4, "num_residual": 1, "norm": "batch", "upsample": "transposed"}),
    ("superres-x2", "SuperResNet", {"scale": 2, "channels": 4, "num_residual": 1, "head_kernel_size": 3}),
    ("superres-x4-resize-tanh", "SuperResNet",
     {"scale": 4, "channels": 4, "num_residual": 1, "upsample": "resize", "norm": "instance", "residual_bicubic": False}),
    ("colorize-unet", "UNet", {"in_channels": 1, "depth": 2, "base_channels": 4, "residual": True}),
    ("restore-unet-maxpool", "UNet", {"depth": 3, "base_channels": 4, "downsample": "maxpool", "norm": "instance"}),
    ("unet-0-255", "UNet", {"depth": 2, "base_channels": 4, "output_range": (0, 255)}),
]
#: Networks of two input images (AdaINNet: content and style) are in STYLE_CASES.
CASES += [
    (name, name, {})
    for name in MODELS
    if name not in {c[1] for c in CASES} and len(getattr(MODELS[name], "inputs", ("image",))) == 1
]
#: The networks that take their style as a second input (tests/export/test_style_inputs.py): a style mix
#: (MultiStyleNet of several styles), or a content and a style image and alpha (AdaINNet, at the paper's
#: layer relu4_1 and at a shallow one).
STYLE_CASES: list[tuple[str, str, dict]] = [
    ("style-multi-3", "MultiStyleNet", {"num_styles": 3, "channels": 4, "num_residual": 1}),
    ("style-any-relu4_1", "AdaINNet", {"arch": "vgg11", "weights": None}),
    ("style-any-relu2_1", "AdaINNet", {"arch": "vgg11", "weights": None, "layer": "relu2_1"}),
]


def network(name: str, kwargs: dict) -> nn.Module:
    """The registry's network, perturbed (so that an identity or bicubic start cannot hide a difference), in eval mode."""
    torch.manual_seed(0)
    net = perturbed(build_model(model_spec(name, **kwargs)))
    with torch.no_grad():  # the residual gains start at 0, where the network is its baseline
        for key, p in net.named_parameters():
            if key.endswith("residual_gain"):
                p.fill_(0.7)
    return net.requires_grad_(False)


def _fit(n: int, multiple: int, min_size: int) -> int:
    """``n`` rounded up to the multiple and the minimum, and moved off powers of two."""
    n = max(-(-n // multiple) * multiple, min_size)
    return n + multiple if n & (n - 1) == 0 else n


def sizes(net: nn.Module) -> list[tuple[int, int]]:
    """64x64, and the sizes nearest 68x92 and 128x200 that the network takes (neither square nor powers of two)."""
    multiple, min_size = int(getattr(net, "size_multiple", 1)), int(getattr(net, "min_size", 1))
    square = max(-(-64 // multiple) * multiple, min_size)
    return [(square, square)] + [(_fit(h, multiple, min_size), _fit(w, multiple, min_size)) for h, w in ((68, 92), (128, 200))]


def image(net: nn.Module, batch: int, size: tuple[int, int], seed: int = 1) -> torch.Tensor:
    lo, hi = getattr(net, "input_range", (0.0, 1.0))
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(batch, int(getattr(net, "in_channels", 3)), *size, generator=g)


def relative(diff: float, net: nn.Module) -> float:
    """A difference in the network's output units, as a fraction of [0, 1] (the (0, 255) network counts as 255)."""
    lo, hi = getattr(net, "output_range", (0.0, 1.0))
    return diff / (hi - lo)


def style_network(name: str, kwargs: dict) -> nn.Module:
    """A STYLE_CASES network as :func:`network` makes it; an AdaINNet's decoder is then rescaled so that its
    output lies inside [0, 1] (an untrained decoder's is mostly clamped, where any two runs agree trivially)."""
    net = network(name, kwargs)
    if name == "AdaINNet":
        g = torch.Generator().manual_seed(3)
        content, style = torch.rand(2, 3, 48, 64, generator=g), torch.rand(1, 3, 40, 36, generator=g)
        with torch.no_grad():
            raw = net.decoder(net.adain(net.encode(content), net.encode(style)))
            last = net.decoder[-1]
            factor = 0.15 / float(raw.std())
            last.weight.mul_(factor)
            last.bias.sub_(raw.mean()).mul_(factor).add_(0.5)
    return net
