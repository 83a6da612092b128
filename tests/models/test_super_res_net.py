"""SuperResNet: x2/x4/x8 super-resolution, residual over bicubic."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lossnet.errors import InputError, InputTypeError
from lossnet.models import PixelShuffleICNR, ResizeConv, SuperResNet
from lossnet.validation import INPUT_RANGES


def tiny(**kwargs: object) -> SuperResNet:
    kwargs.setdefault("channels", 4)
    kwargs.setdefault("num_residual", 1)
    kwargs.setdefault("head_kernel_size", 3)
    return SuperResNet(**kwargs)  # type: ignore[arg-type]


def perturb_head(net: SuperResNet) -> None:
    """Give the last conv random weights and the residual gain 1, as training would."""
    with torch.no_grad():
        nn.init.normal_(net.head.weight, std=0.5)
        if net.residual_bicubic:
            net.residual_gain.fill_(1.0)


@pytest.mark.parametrize("upsample", ["pixel_shuffle", "resize"])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_output_shape(scale: int, upsample: str) -> None:
    net = tiny(scale=scale, upsample=upsample)
    for b, h, w in [(1, 4, 4), (2, 5, 7)]:
        assert net(torch.rand(b, 3, h, w)).shape == (b, 3, h * scale, w * scale)


@pytest.mark.parametrize(("upsample", "kind"), [("pixel_shuffle", PixelShuffleICNR), ("resize", ResizeConv)])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_one_upsampling_stage_per_octave(scale: int, upsample: str, kind: type) -> None:
    net = tiny(scale=scale, upsample=upsample)
    assert sum(isinstance(m, kind) for m in net.modules()) == {2: 1, 4: 2, 8: 3}[scale]


def test_default_layout() -> None:
    net = SuperResNet()
    assert (net.scale, net.channels, net.num_residual, net.upsample) == (4, 64, 4, "pixel_shuffle")
    assert net.stem[0].kernel_size == (9, 9) and net.head.kernel_size == (9, 9)
    assert len(net.residuals) == 4
    assert tiny(head_kernel_size=3).stem[0].kernel_size == (3, 3)


@pytest.mark.parametrize("output_range", INPUT_RANGES)
@pytest.mark.parametrize("scale", [2, 4])
def test_output_at_init_is_bicubic(scale: int, output_range: tuple[float, float]) -> None:
    lo, hi = output_range
    net = tiny(scale=scale, output_range=output_range)
    assert net.residual_gain.item() == 0.0 and net.head.weight.abs().sum() > 0
    x = lo + (hi - lo) * torch.rand(2, 3, 6, 5)
    expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(lo, hi)
    torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-5 * (hi - lo))


def test_without_residual_the_last_conv_is_not_zero() -> None:
    net = tiny(residual_bicubic=False)
    assert net.head.weight.abs().sum() > 0
    x = torch.rand(1, 3, 6, 6)
    bicubic = F.interpolate(x, scale_factor=4, mode="bicubic").clamp(0, 1)
    assert not torch.allclose(net(x), bicubic, atol=1e-3)


@pytest.mark.parametrize("residual_bicubic", [True, False])
@pytest.mark.parametrize("output_range", INPUT_RANGES)
def test_output_stays_in_range_for_extreme_inputs(output_range: tuple[float, float], residual_bicubic: bool) -> None:
    lo, hi = output_range
    net = tiny(scale=2, output_range=output_range, residual_bicubic=residual_bicubic)
    with torch.no_grad():
        nn.init.normal_(net.head.weight, std=100.0)  # a residual far beyond the range
        if residual_bicubic:
            net.residual_gain.fill_(1.0)
    checkerboard = lo + (hi - lo) * (torch.arange(36).view(1, 1, 6, 6) % 2).float().expand(1, 3, 6, 6)
    for x in (torch.full((1, 3, 6, 6), lo), torch.full((1, 3, 6, 6), hi), checkerboard):
        y = net(x)
        assert y.min() >= lo and y.max() <= hi
    assert (y == lo).any() and (y == hi).any()


def test_bicubic_overshoot_is_clamped() -> None:
    """Bicubic rings past [0, 1] at a sharp edge; the output does not."""
    x = torch.zeros(1, 3, 6, 6)
    x[..., 3:] = 1.0
    raw = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert raw.min() < 0 and raw.max() > 1
    y = tiny(scale=2)(x)
    assert y.min() == 0 and y.max() == 1


@pytest.mark.parametrize("residual_bicubic", [True, False])
@pytest.mark.parametrize("upsample", ["pixel_shuffle", "resize"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_gradients_reach_every_parameter(norm: str, upsample: str, residual_bicubic: bool) -> None:
    net = tiny(scale=4, norm=norm, upsample=upsample, residual_bicubic=residual_bicubic)
    x = torch.rand(2, 3, 5, 5)
    net(x).mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    if residual_bicubic:  # at init only the gain learns; the rest follows once it is non-zero
        assert net.residual_gain.grad.abs() > 0
    else:
        assert net.head.weight.grad.abs().sum() > 0
    net.zero_grad()
    perturb_head(net)
    net(x).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_norm_selects_module_type(norm: str) -> None:
    kinds = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}
    net = tiny(norm=norm)
    for name, kind in kinds.items():
        assert any(isinstance(m, kind) for m in net.modules()) == (name == norm)


@pytest.mark.parametrize("scale", [1, 3, 16])
def test_invalid_scale_lists_valid_ones(scale: int) -> None:
    with pytest.raises(InputError, match=r"scale must be one of \[2, 4, 8\]; got " + str(scale)):
        SuperResNet(scale=scale)


def test_non_int_scale_raises_type_error() -> None:
    with pytest.raises(InputTypeError, match=r"\[2, 4, 8\]"):
        SuperResNet(scale=4.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upsample": "pixelshuffle"}, r"\['pixel_shuffle', 'resize'\].*Did you mean 'pixel_shuffle'"),
        ({"norm": "group"}, r"unknown norm 'group'"),
        ({"head_kernel_size": 4}, r"head_kernel_size must be odd"),
        ({"num_residual": 0}, r"num_residual must be an int >= 1"),
        ({"output_range": (0, 10)}, r"output_range must be one of"),
    ],
)
def test_invalid_options_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        SuperResNet(**kwargs)  # type: ignore[arg-type]


def test_too_small_and_wrong_channels_raise() -> None:
    with pytest.raises(InputError, match="at least 5x5"):
        SuperResNet(channels=4, num_residual=1)(torch.rand(1, 3, 4, 8))
    with pytest.raises(InputError, match=r"3 channels"):
        tiny()(torch.rand(1, 1, 8, 8))


def test_state_dict_round_trip() -> None:
    a = tiny()
    perturb_head(a)
    a(torch.rand(2, 3, 6, 6))  # update batch-norm running statistics
    b = tiny()
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    x = torch.rand(2, 3, 7, 6)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_eval_mode_is_deterministic_and_batch_independent() -> None:
    net = tiny()
    perturb_head(net)
    net.eval()
    x = torch.rand(3, 3, 6, 6)
    with torch.no_grad():
        y = net(x)
        torch.testing.assert_close(net(x), y, rtol=0, atol=0)
        torch.testing.assert_close(net(x[2:]), y[2:])


def test_gradcheck_float64() -> None:
    net = tiny(scale=2, channels=2, norm="none", residual_bicubic=False).double()
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))


def test_clamp_passes_gradient_where_saturated() -> None:
    """A pixel pushed past the range keeps a gradient back towards the target (no dead output)."""
    net = tiny(scale=2)
    perturb_head(net)
    with torch.no_grad():
        net.head.bias.fill_(50.0)  # every pixel far above the range: the output is flat white
    x = torch.rand(1, 3, 6, 6)
    y = net(x)
    assert (y == 1).all()
    F.mse_loss(y, torch.zeros_like(y)).backward()
    assert net.head.bias.grad.gt(0).all()  # gradient descent lowers the bias: the way back


def test_first_adam_step_stays_near_bicubic() -> None:
    """The default network under Adam 1e-3 (the recipe): one step must not saturate the output.

    Before residual_gain the first step shifted whole channels by ~2.6 and the output went flat.
    """
    torch.manual_seed(0)
    net = SuperResNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 16, 16) * 0.5 + 0.25
    target = F.interpolate(x, scale_factor=4, mode="bicubic").clamp(0, 1) + 0.05 * torch.randn(2, 3, 64, 64)
    for _ in range(3):
        opt.zero_grad()
        F.mse_loss(net(x), target).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        drift = (net(x) - F.interpolate(x, scale_factor=4, mode="bicubic").clamp(0, 1)).abs().mean()
    assert drift < 0.05


def test_old_checkpoints_load_with_unit_gain() -> None:
    net = tiny(scale=2)
    state = {k: v for k, v in net.state_dict().items() if k != "residual_gain"}
    fresh = tiny(scale=2)
    fresh.load_state_dict(state)
    assert fresh.residual_gain.item() == 1.0
