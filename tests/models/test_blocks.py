"""blocks: make_norm, conv, conv_norm_relu, ResidualBlock."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lossnet.errors import InputError
from lossnet.models.blocks import NORMS, ResidualBlock, conv, conv_norm_relu, make_norm


def test_make_norm_types() -> None:
    assert isinstance(make_norm("instance", 4), nn.InstanceNorm2d) and make_norm("instance", 4).affine
    assert isinstance(make_norm("batch", 4), nn.BatchNorm2d)
    assert isinstance(make_norm("none", 4), nn.Identity)
    with pytest.raises(InputError, match=r"Did you mean 'instance'"):
        make_norm("instnace", 4)


@pytest.mark.parametrize("norm", NORMS)
def test_conv_has_a_bias_only_without_norm(norm: str) -> None:
    layer = conv_norm_relu(3, 4, 3, norm)
    assert (layer[0].bias is None) == (norm != "none")


@pytest.mark.parametrize(("k", "stride", "size", "expected"), [(9, 1, 10, 10), (3, 2, 10, 5), (3, 1, 2, 2)])
def test_conv_keeps_or_halves_the_size(k: int, stride: int, size: int, expected: int) -> None:
    layer = conv(2, 3, k, stride)
    assert layer.padding_mode == "reflect"
    assert layer(torch.rand(1, 2, size, size)).shape == (1, 3, expected, expected)


@pytest.mark.parametrize("norm", NORMS)
def test_residual_block_is_identity_when_its_last_layer_outputs_zero(norm: str) -> None:
    block = ResidualBlock(4, norm)
    # The norm's affine weight and bias, or the conv's when there is no norm.
    last = block.body[-1] if norm != "none" else block.body[-2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    x = torch.rand(2, 4, 5, 5)
    torch.testing.assert_close(block(x), x)
    assert not torch.allclose(ResidualBlock(4, norm)(x), x)
