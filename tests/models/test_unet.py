"""UNet: encoder-decoder with skips and ICNR pixel-shuffle upsampling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lossnet.errors import InputError
from lossnet.models.upsampling import Blur2x2
from lossnet.models import PixelShuffleICNR, UNet
from lossnet.validation import INPUT_RANGES


def tiny(**kwargs: object) -> UNet:
    kwargs.setdefault("depth", 2)
    kwargs.setdefault("base_channels", 2)
    return UNet(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("downsample", ["conv", "maxpool"])
@pytest.mark.parametrize(("depth", "b", "h", "w"), [(1, 1, 4, 6), (2, 2, 8, 16), (3, 3, 16, 24)])
def test_output_shape(depth: int, b: int, h: int, w: int, downsample: str) -> None:
    net = tiny(depth=depth, downsample=downsample)
    assert net(torch.rand(b, 3, h, w)).shape == (b, 3, h, w)


def test_colorisation_channels() -> None:
    net = tiny(in_channels=1, out_channels=3)
    assert net(torch.rand(2, 1, 8, 12)).shape == (2, 3, 8, 12)
    with pytest.raises(InputError, match=r"1 channels"):
        net(torch.rand(2, 3, 8, 12))


def test_default_layout() -> None:
    net = UNet()
    assert (net.depth, net.base_channels, net.in_channels, net.out_channels) == (4, 32, 3, 3)
    ups = [m for m in net.modules() if isinstance(m, PixelShuffleICNR)]
    assert len(ups) == 4
    assert [u.conv.out_channels for u in ups] == [4 * 256, 4 * 128, 4 * 64, 4 * 32]
    # fastai's blur (replicate pad top/left, 2x2 average; equality tested in test_upsampling)
    assert isinstance(ups[0].blur, Blur2x2) and ups[0].blur.kernel.shape[0] == ups[0].conv.out_channels // 4


def test_downsample_options() -> None:
    assert sum(isinstance(m, nn.MaxPool2d) for m in tiny(downsample="maxpool").modules()) == 2
    assert not any(isinstance(m, nn.MaxPool2d) for m in tiny(downsample="conv").modules())
    strides = [m.stride for m in tiny(downsample="conv").modules() if isinstance(m, nn.Conv2d)]
    assert strides.count((2, 2)) == 2


def test_skip_connections_are_used() -> None:
    """Zeroing the skip half of a decoder conv's input weights changes the output."""
    net = tiny().eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        y = net(x)
        first = net.decoder[-1].body[0][0]
        first.weight[:, first.in_channels // 2 :] = 0
        assert not torch.allclose(net(x), y)


@pytest.mark.parametrize("output_range", INPUT_RANGES)
def test_output_stays_in_range_for_extreme_inputs(output_range: tuple[float, float]) -> None:
    lo, hi = output_range
    net = tiny(output_range=output_range)
    with torch.no_grad():
        net.head.weight.mul_(1000.0)
    for x in (torch.full((2, 3, 8, 8), lo), torch.full((2, 3, 8, 8), hi), lo + (hi - lo) * torch.rand(2, 3, 8, 8)):
        y = net(x)
        assert y.min() >= lo and y.max() <= hi
    assert (y == lo).any() or (y == hi).any()


@pytest.mark.parametrize("downsample", ["conv", "maxpool"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_gradients_reach_every_parameter(norm: str, downsample: str) -> None:
    net = tiny(norm=norm, downsample=downsample, in_channels=1)
    net(torch.rand(2, 1, 8, 8)).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_norm_selects_module_type(norm: str) -> None:
    kinds = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}
    net = tiny(norm=norm)
    for name, kind in kinds.items():
        assert any(isinstance(m, kind) for m in net.modules()) == (name == norm)


@pytest.mark.parametrize(("depth", "h", "w"), [(2, 6, 8), (3, 12, 8), (1, 8, 7)])
def test_size_not_multiple_of_2_pow_depth_raises(depth: int, h: int, w: int) -> None:
    with pytest.raises(InputError, match=rf"multiples of {2**depth}.*Crop.*pad"):
        tiny(depth=depth)(torch.rand(1, 3, h, w))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"downsample": "maxpol"}, r"\['conv', 'maxpool'\].*Did you mean 'maxpool'"),
        ({"norm": "batchnorm"}, r"unknown norm 'batchnorm'.*Did you mean 'batch'"),
        ({"depth": 0}, r"depth must be an int >= 1"),
        ({"base_channels": -1}, r"base_channels must be an int >= 1"),
        ({"output_range": (-1, 0)}, r"output_range must be one of"),
    ],
)
def test_invalid_options_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        UNet(**kwargs)  # type: ignore[arg-type]


def test_state_dict_round_trip() -> None:
    a = tiny()
    a(torch.rand(2, 3, 8, 8))
    b = tiny()
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    x = torch.rand(2, 3, 12, 8)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_eval_mode_is_deterministic_and_batch_independent() -> None:
    net = tiny()
    net(torch.rand(4, 3, 8, 8))
    net.eval()
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        y = net(x)
        torch.testing.assert_close(net(x), y, rtol=0, atol=0)
        torch.testing.assert_close(net(x[:1]), y[:1])


def test_upsampler_is_nearest_neighbour_at_init() -> None:
    """Before the blur, each 2x2 sub-pixel block of conv + shuffle holds one value.

    Exactly in the parameters: the 4 output channels that the shuffle spreads over one block have the same
    filter and bias. The outputs agree to float rounding only: a CPU kernel may sum identical filters in
    different orders for different channel blocks (1 ulp apart as an AVX2 CPU runs it; equal with AVX-512)."""
    net = tiny(depth=3, base_channels=4)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        for stage in net.decoder:
            up = stage.up
            w = up.conv.weight.reshape(-1, 4, *up.conv.weight.shape[1:])  # (C, 4 sub-pixels, C_in, k, k)
            b = up.conv.bias.reshape(-1, 4)
            for k in (1, 2, 3):
                assert torch.equal(w[:, k], w[:, 0]) and torch.equal(b[:, k], b[:, 0])
            feats = torch.rand(2, up.conv.in_channels, 3, 5)
            y = up.shuffle(up.relu(up.conv(feats)))
            assert y.abs().sum() > 0
            for i, j in [(0, 1), (1, 0), (1, 1)]:
                torch.testing.assert_close(y[..., i::2, j::2], y[..., 0::2, 0::2])
        assert net(x).shape == x.shape


def test_gradcheck_float64() -> None:
    net = tiny(depth=2, base_channels=2, in_channels=1).double().eval()
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,), fast_mode=True)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_residual_starts_as_the_identity(in_channels: int) -> None:
    """residual=True: at initialisation the output is the input (grey repeated to RGB)."""
    net = UNet(in_channels=in_channels, depth=2, base_channels=4, residual=True)
    x = torch.rand(2, in_channels, 16, 16)
    torch.testing.assert_close(net(x), x.expand(-1, 3, -1, -1), rtol=0, atol=1e-6)
    net(x).mean().backward()
    assert net.residual_gain.grad is not None and net.residual_gain.grad.abs() > 0


def test_residual_output_stays_in_range_and_keeps_a_gradient() -> None:
    net = UNet(depth=2, base_channels=4, residual=True)
    with torch.no_grad():
        net.residual_gain.fill_(1.0)
        net.head.bias.fill_(50.0)
    y = net(torch.rand(1, 3, 16, 16))
    assert (y == 1).all()
    y.mean().backward()
    assert net.head.bias.grad.abs().sum() > 0


def test_residual_needs_matching_channels() -> None:
    with pytest.raises(InputError, match="in_channels must be 1 or out_channels"):
        UNet(in_channels=2, residual=True)
