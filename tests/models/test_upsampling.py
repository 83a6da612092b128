"""icnr_, PixelShuffleICNR and ResizeConv."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lossnet.errors import InputError
from lossnet.models import PixelShuffleICNR, ResizeConv, icnr_


@pytest.mark.parametrize(("scale", "out", "k"), [(2, 3, 1), (2, 5, 3), (3, 2, 3)])
def test_icnr_repeats_one_kernel_per_group_of_scale_squared_channels(scale: int, out: int, k: int) -> None:
    w = icnr_(torch.empty(out * scale**2, 4, k, k), scale)
    groups = w.view(out, scale**2, 4, k, k)
    assert (groups == groups[:, :1]).all()
    assert not (groups[0, 0] == groups[1, 0]).all()  # different output channels get different kernels


@pytest.mark.parametrize(("scale", "k"), [(2, 1), (2, 3), (3, 3)])
def test_icnr_conv_then_shuffle_is_nearest_upsampling(scale: int, k: int) -> None:
    conv = nn.Conv2d(4, 3 * scale**2, k, padding=k // 2, bias=False)
    icnr_(conv.weight, scale)
    x = torch.rand(2, 4, 5, 6)
    with torch.no_grad():
        shuffled = F.pixel_shuffle(conv(x), scale)
        sub = conv.weight[:: scale**2]  # the shared kernel of each group
        expected = F.interpolate(F.conv2d(x, sub, padding=k // 2), scale_factor=scale, mode="nearest")
    torch.testing.assert_close(shuffled, expected)
    for i in range(scale):
        for j in range(scale):
            block = shuffled[..., i::scale, j::scale]
            torch.testing.assert_close(block, shuffled[..., ::scale, ::scale], rtol=0, atol=0)


def test_icnr_uses_the_given_init_and_returns_the_weight() -> None:
    w = torch.empty(8, 2, 3, 3)
    assert icnr_(w, 2, init=nn.init.ones_) is w
    assert (w == 1).all()


def test_icnr_keeps_kaiming_scale() -> None:
    w = icnr_(torch.empty(4 * 64, 64, 3, 3), 2)
    std_expected = (2.0 / (64 * 9)) ** 0.5
    assert w.std().item() == pytest.approx(std_expected, rel=0.1)


def test_icnr_rejects_bad_shapes() -> None:
    with pytest.raises(InputError, match=r"multiple of scale\*\*2 = 4"):
        icnr_(torch.empty(6, 2, 1, 1), 2)
    with pytest.raises(InputError, match=r"\(C_out, C_in, kH, kW\)"):
        icnr_(torch.empty(8, 2), 2)


def test_pixel_shuffle_icnr_initial_state_and_blur() -> None:
    up = PixelShuffleICNR(6, 4)
    assert (up.conv.bias == 0).all()
    x = torch.rand(2, 6, 5, 7)
    with torch.no_grad():
        unblurred = up.shuffle(up.relu(up.conv(x)))
        y = up(x)
    assert y.shape == (2, 4, 10, 14)
    # The blur is the mean of each pixel with its up, left and up-left neighbours (edges replicated).
    padded = F.pad(unblurred, (1, 0, 1, 0), mode="replicate")
    expected = (padded[..., 1:, 1:] + padded[..., :-1, 1:] + padded[..., 1:, :-1] + padded[..., :-1, :-1]) / 4
    torch.testing.assert_close(y, expected)
    assert isinstance(PixelShuffleICNR(6, 4, blur=False).blur, nn.Identity)


def test_pixel_shuffle_icnr_reflect_padding_and_kernel() -> None:
    up = PixelShuffleICNR(2, 2, scale=2, kernel_size=3, padding_mode="reflect")
    assert up.conv.kernel_size == (3, 3) and up.conv.padding_mode == "reflect"
    assert up(torch.rand(1, 2, 4, 4)).shape == (1, 2, 8, 8)


def test_resize_conv_is_conv_of_nearest_resize() -> None:
    layer = ResizeConv(3, 2, 3)
    x = torch.rand(1, 3, 4, 5)
    expected = layer.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    torch.testing.assert_close(layer(x), expected)
    assert layer(x).shape == (1, 2, 8, 10)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_blur_equals_fastai_replicate_pad_then_2x2_average_with_its_gradient(memory_format) -> None:
    """The depthwise form is the AvgPool2d(2, 1) after ReplicationPad2d((1, 0, 1, 0)) it replaced, in value and grad."""
    from lossnet.models.upsampling import Blur2x2

    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64).to(memory_format=memory_format).requires_grad_()
    g = torch.randn(2, 5, 7, 9, dtype=torch.float64)
    ref_x = x.detach().clone().requires_grad_()
    out = Blur2x2(5)(x)
    ref = nn.AvgPool2d(2, stride=1)(nn.ReplicationPad2d((1, 0, 1, 0))(ref_x))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    out.backward(g)
    ref.backward(g)
    torch.testing.assert_close(x.grad, ref_x.grad, rtol=0, atol=1e-12)
    # the top-left pixel averages itself four times; an interior one its 2x2 up-left neighbourhood
    out, x = out.detach(), x.detach()
    assert float(out[0, 0, 0, 0]) == pytest.approx(float(x[0, 0, 0, 0]))
    assert float(out[0, 0, 3, 4]) == pytest.approx(float(x[0, 0, 2:4, 3:5].mean()))
    assert Blur2x2(5).state_dict() == {}  # checkpoints written before it load unchanged
