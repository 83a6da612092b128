"""Each network declares the sizes it takes (``size_multiple``, ``min_size``) and checks them itself."""

from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError
from lossnet.models import Compact, SuperResNet, TransformerNet, UNet

NETWORKS = {
    "transformer": lambda: TransformerNet(channels=2, num_residual=1),
    "superres-k9": lambda: SuperResNet(scale=2, channels=2, num_residual=1),
    "superres-k3": lambda: SuperResNet(scale=2, channels=2, num_residual=1, head_kernel_size=3),
    "unet-batch": lambda: UNet(depth=2, base_channels=2, norm="batch"),
    "unet-instance": lambda: UNet(depth=2, base_channels=2, norm="instance"),
    "unet-grey": lambda: UNet(in_channels=1, depth=3, base_channels=2),
    "compact": lambda: Compact(scale=3, num_feat=2, num_conv=1),
}
# (size_multiple, min_size, in_channels, scale), from each network's layout: two stride-2 convs; reflection
# padding of a 9x9 and a 3x3 head; 2**depth, twice that for instance norm's 2x2 bottleneck; zero padding.
DECLARED = {
    "transformer": (4, 8, 3, 1),
    "superres-k9": (1, 5, 3, 2),
    "superres-k3": (1, 2, 3, 2),
    "unet-batch": (4, 4, 3, 1),
    "unet-instance": (4, 8, 3, 1),
    "unet-grey": (8, 8, 1, 1),
    "compact": (1, 1, 3, 3),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_declared_size_rules(name: str) -> None:
    net = NETWORKS[name]()
    assert (net.size_multiple, net.min_size, net.in_channels, net.scale) == DECLARED[name]


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_network_takes_exactly_the_sizes_it_declares(name: str) -> None:
    net = NETWORKS[name]().eval()
    m, smallest, c, scale = DECLARED[name]
    side = -(-smallest // m) * m  # the smallest side that is a multiple
    with torch.no_grad():
        assert net(torch.rand(1, c, side, side + m)).shape[-2:] == (side * scale, (side + m) * scale)
        if m > 1:
            with pytest.raises(InputError, match=f"multiples of {m}"):
                net(torch.rand(1, c, side + 1, side))
        if side - m >= 1:
            with pytest.raises(InputError, match=f"at least {smallest}x{smallest}"):
                net(torch.rand(1, c, side - m, side))
