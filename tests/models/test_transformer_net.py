"""TransformerNet: Johnson et al.'s style-transfer network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lossnet.errors import InputError, InputTypeError
from lossnet.models import TransformerNet
from lossnet.validation import INPUT_RANGES


def tiny(**kwargs: object) -> TransformerNet:
    return TransformerNet(channels=4, num_residual=1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("upsample", ["resize", "transposed"])
@pytest.mark.parametrize(("b", "h", "w"), [(1, 8, 8), (2, 16, 24), (3, 20, 12)])
def test_output_shape_equals_input_shape(upsample: str, b: int, h: int, w: int) -> None:
    net = tiny(upsample=upsample)
    assert net(torch.rand(b, 3, h, w)).shape == (b, 3, h, w)


def test_upsample_layers_are_the_chosen_kind() -> None:
    resize, transposed = tiny(upsample="resize"), tiny(upsample="transposed")
    assert sum(isinstance(m, nn.Upsample) for m in resize.modules()) == 2
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in resize.modules())
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in transposed.modules()) == 2
    assert not any(isinstance(m, nn.Upsample) for m in transposed.modules())


def test_paper_layout_at_default_width() -> None:
    net = TransformerNet()
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [m.kernel_size for m in (convs[0], convs[-1])] == [(9, 9), (9, 9)]
    assert [m.out_channels for m in convs[:3]] == [32, 64, 128]
    assert [m.stride for m in convs[1:3]] == [(2, 2), (2, 2)]
    assert len(net.residuals) == 5
    assert all(m.padding_mode == "reflect" for m in convs if isinstance(m, nn.Conv2d))
    assert convs[-1].out_channels == 3


@pytest.mark.parametrize(
    ("norm", "kind", "absent"),
    [("instance", nn.InstanceNorm2d, nn.BatchNorm2d), ("batch", nn.BatchNorm2d, nn.InstanceNorm2d)],
)
def test_norm_selects_module_type(norm: str, kind: type, absent: type) -> None:
    net = tiny(norm=norm)
    norms = [m for m in net.modules() if isinstance(m, kind)]
    # 3 encoder + 2 per residual block + 2 decoder
    assert len(norms) == 3 + 2 * 1 + 2
    assert all(m.affine for m in norms)
    assert not any(isinstance(m, absent) for m in net.modules())


def test_default_is_instance_norm_and_resize() -> None:
    net = TransformerNet(channels=4, num_residual=1)
    assert (net.norm, net.upsample, net.output_range) == ("instance", "resize", (0.0, 1.0))
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


@pytest.mark.parametrize("output_range", INPUT_RANGES)
def test_output_stays_in_range_for_extreme_inputs(output_range: tuple[float, float]) -> None:
    lo, hi = output_range
    net = tiny(output_range=output_range)
    with torch.no_grad():
        net.head.weight.mul_(1000.0)  # push the tanh into saturation
    for x in (torch.full((1, 3, 8, 8), lo), torch.full((1, 3, 8, 8), hi), lo + (hi - lo) * torch.rand(2, 3, 8, 8)):
        y = net(x)
        assert y.min() >= lo and y.max() <= hi
    y = net(lo + (hi - lo) * torch.rand(2, 3, 8, 8))
    assert (y == lo).any() or (y == hi).any()  # saturation was really reached


def test_input_is_normalised_so_ranges_are_equivalent() -> None:
    """A (0, 255) net fed x*255 gives 255 times what the same (0, 1) net gives for x."""
    a, b = tiny(), tiny(output_range=(0, 255))
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 8, 12)
    torch.testing.assert_close(b(255 * x), 255 * a(x), rtol=1e-5, atol=1e-4)


def test_input_range_can_differ_from_output_range() -> None:
    a, b = tiny(), tiny(input_range=(-1, 1))
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(b(2 * x - 1), a(x))
    assert b.input_range == (-1.0, 1.0) and b.output_range == (0.0, 1.0)


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("upsample", ["resize", "transposed"])
def test_gradients_reach_every_parameter(norm: str, upsample: str) -> None:
    net = tiny(norm=norm, upsample=upsample)
    net(torch.rand(2, 3, 8, 8)).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("h", [6, 30])
def test_size_not_multiple_of_4_raises(h: int) -> None:
    with pytest.raises(InputError, match=r"multiples of 4.*Crop.*pad"):
        tiny()(torch.rand(1, 3, h, 16))


def test_too_small_raises() -> None:
    with pytest.raises(InputError, match="at least 8x8"):
        tiny()(torch.rand(1, 3, 4, 8))


def test_wrong_channels_and_types_raise() -> None:
    with pytest.raises(InputError, match="channels-last"):
        tiny()(torch.rand(1, 8, 8, 3))
    with pytest.raises(InputError, match="unsqueeze"):
        tiny()(torch.rand(3, 8, 8))
    with pytest.raises(InputTypeError, match="floating-point"):
        tiny()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "instanse"}, r"unknown norm 'instanse'.*\['instance', 'batch'\].*Did you mean 'instance'"),
        ({"norm": "none"}, r"\['instance', 'batch'\]"),
        ({"upsample": "transpose"}, r"\['resize', 'transposed'\].*Did you mean 'transposed'"),
        ({"output_range": (0, 2)}, r"output_range must be one of"),
        ({"input_range": (0, 2)}, r"input_range must be one of"),
        ({"channels": 0}, r"channels must be an int >= 1"),
    ],
)
def test_invalid_options_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        TransformerNet(**kwargs)  # type: ignore[arg-type]


def test_non_int_width_raises_type_error() -> None:
    with pytest.raises(InputTypeError, match="channels"):
        TransformerNet(channels=4.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_state_dict_round_trip(norm: str) -> None:
    a = tiny(norm=norm)
    a(torch.rand(2, 3, 8, 8))  # move batch-norm running statistics away from their init
    b = tiny(norm=norm)
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    x = torch.rand(2, 3, 12, 8)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_eval_mode_is_deterministic_and_batch_independent(norm: str) -> None:
    net = tiny(norm=norm).eval()
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        y = net(x)
        torch.testing.assert_close(net(x), y, rtol=0, atol=0)
        torch.testing.assert_close(net(x[1:2]), y[1:2])


def test_extra_repr_names_the_options() -> None:
    assert "upsample='transposed'" in repr(tiny(upsample="transposed"))
