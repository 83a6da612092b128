"""Real-ESRGAN's Compact network: the published keys and shapes, its forward pass, and its sizes read from shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lossnet.errors import InputError
from lossnet.models import MODELS, Compact, build_model, compact_hyperparameters, model_spec

# The published SRVGGNetCompact (xinntao/Real-ESRGAN, realesrgan/archs/srvgg_arch.py), typed out: a ModuleList
# `body` of conv 3x3 (num_in_ch -> num_feat), activation, then num_conv x (conv 3x3 num_feat -> num_feat,
# activation), then conv 3x3 (num_feat -> num_out_ch * upscale**2); a PReLU has num_feat slopes, a ReLU none.
PUBLISHED_X2_F16_C2_PRELU = [
    ("body.0.weight", (16, 3, 3, 3)),
    ("body.0.bias", (16,)),
    ("body.1.weight", (16,)),
    ("body.2.weight", (16, 16, 3, 3)),
    ("body.2.bias", (16,)),
    ("body.3.weight", (16,)),
    ("body.4.weight", (16, 16, 3, 3)),
    ("body.4.bias", (16,)),
    ("body.5.weight", (16,)),
    ("body.6.weight", (12, 16, 3, 3)),
    ("body.6.bias", (12,)),
]
PUBLISHED_X3_F8_C1_RELU = [  # relu: no weights at body.1 and body.3
    ("body.0.weight", (8, 3, 3, 3)),
    ("body.0.bias", (8,)),
    ("body.2.weight", (8, 8, 3, 3)),
    ("body.2.bias", (8,)),
    ("body.4.weight", (27, 8, 3, 3)),
    ("body.4.bias", (27,)),
]


def published_default() -> list[tuple[str, tuple[int, ...]]]:
    """num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type='prelu' (realesr-animevideov3)."""
    keys = [("body.0.weight", (64, 3, 3, 3)), ("body.0.bias", (64,)), ("body.1.weight", (64,))]
    for i in range(1, 17):
        keys += [(f"body.{2 * i}.weight", (64, 64, 3, 3)), (f"body.{2 * i}.bias", (64,))]
        keys += [(f"body.{2 * i + 1}.weight", (64,))]
    return keys + [("body.34.weight", (48, 64, 3, 3)), ("body.34.bias", (48,))]


def layout(net: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


@pytest.mark.parametrize(
    ("kwargs", "published"),
    [
        ({}, published_default()),
        ({"scale": 2, "num_feat": 16, "num_conv": 2}, PUBLISHED_X2_F16_C2_PRELU),
        ({"scale": 3, "num_feat": 8, "num_conv": 1, "act_type": "relu"}, PUBLISHED_X3_F8_C1_RELU),
    ],
    ids=["default-x4-64f-16c", "x2-16f-2c", "x3-8f-1c-relu"],
)
def test_keys_and_shapes_are_the_published_ones_in_order(kwargs, published) -> None:
    net = Compact(**kwargs)
    assert layout(net) == published
    assert len(published_default()) == 3 + 16 * 3 + 2 and sum(v.numel() for v in net.parameters()) == sum(
        torch.Size(s).numel() for _, s in published
    )


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (published_default(), dict(scale=4, in_channels=3, out_channels=3, num_feat=64, num_conv=16, act_type="prelu")),
        (PUBLISHED_X2_F16_C2_PRELU, dict(scale=2, in_channels=3, out_channels=3, num_feat=16, num_conv=2,
                                         act_type="prelu")),
    ],
)
def test_hyperparameters_are_read_from_shapes_alone(published, expected) -> None:
    shapes_only = {k: torch.empty(s, device="meta") for k, s in published}  # no values, no metadata
    assert compact_hyperparameters(shapes_only) == expected
    assert layout(Compact(**expected)) == published


def test_relu_and_leakyrelu_cannot_be_told_apart_so_act_type_is_asked_for() -> None:
    shapes_only = {k: torch.empty(s, device="meta") for k, s in PUBLISHED_X3_F8_C1_RELU}
    with pytest.raises(InputError, match="act_type='relu' or act_type='leakyrelu'"):
        compact_hyperparameters(shapes_only)
    params = compact_hyperparameters(shapes_only, act_type="leakyrelu")
    assert params == dict(scale=3, in_channels=3, out_channels=3, num_feat=8, num_conv=1, act_type="leakyrelu")
    with pytest.raises(InputError, match="PReLU"):
        compact_hyperparameters(Compact(scale=2, num_feat=4, num_conv=1).state_dict(), act_type="relu")


def test_grey_in_colour_out_reads_back() -> None:
    sd = Compact(scale=4, in_channels=1, out_channels=3, num_feat=4, num_conv=1).state_dict()
    assert compact_hyperparameters(sd)["in_channels"] == 1 and compact_hyperparameters(sd)["out_channels"] == 3


@pytest.mark.parametrize(
    "state",
    [
        {"model/body.0.weight": torch.zeros(4, 3, 3, 3)},  # a lossnet checkpoint's prefixed keys
        {"body.0.weight": torch.zeros(4, 3, 3, 3), "head.weight": torch.zeros(3)},
        {"body.0.weight": torch.zeros(4, 3, 3, 3), "body.1.weight": torch.zeros(4)},  # no last conv
    ],
)
def test_other_state_dicts_are_refused(state) -> None:
    with pytest.raises(InputError):
        compact_hyperparameters(state)


def published_forward(state: dict[str, torch.Tensor], x: torch.Tensor, scale: int, act: str) -> torch.Tensor:
    """The published forward pass written out with torch.nn.functional, from the weights alone."""
    last = max(int(k.split(".")[1]) for k in state)
    y = x
    for i in range(0, last + 1, 2):
        y = F.conv2d(y, state[f"body.{i}.weight"], state[f"body.{i}.bias"], padding=1)
        if i < last:
            y = F.prelu(y, state[f"body.{i + 1}.weight"]) if act == "prelu" else F.leaky_relu(y, 0.1)
    return F.pixel_shuffle(y, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


@pytest.mark.parametrize(("scale", "act"), [(4, "prelu"), (2, "leakyrelu")])
def test_forward_is_the_published_one(scale, act) -> None:
    torch.manual_seed(0)
    net = Compact(scale=scale, num_feat=8, num_conv=3, act_type=act).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.rand(2, 3, 11, 13)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, 11 * scale, 13 * scale)
    torch.testing.assert_close(y, published_forward(net.state_dict(), x, scale, act), rtol=0, atol=1e-6)
    assert (y - F.interpolate(x, scale_factor=scale)).abs().mean() > 1e-3  # the body really contributes


def test_untrained_is_nearest_upscaling_and_trains_through_the_last_conv() -> None:
    net = Compact(scale=2, num_feat=4, num_conv=1)
    x = torch.rand(1, 3, 6, 6)
    y = net(x)
    assert torch.equal(y, F.interpolate(x, scale_factor=2, mode="nearest"))
    y.square().sum().backward()
    assert net.body[-1].weight.grad.abs().sum() > 0  # the zero conv still receives a gradient


def test_registered_for_superres_with_the_task_fixing_the_scale() -> None:
    from lossnet.tasks import TASKS

    assert MODELS["Compact"] is Compact
    assert TASKS["superres"].network_kwargs("Compact", {"scale": 2}) == {"scale": 2, "in_channels": 3}
    with pytest.raises(InputError, match="upscales"):
        TASKS["style"].network_kwargs("Compact")
    net = build_model(model_spec("Compact", scale=2, num_feat=4, num_conv=1))
    assert (net.size_multiple, net.min_size, net.in_channels, net.scale) == (1, 1, 3, 2)
    assert net(torch.rand(1, 3, 1, 1)).shape == (1, 3, 2, 2)  # zero padding: any size down to 1x1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0}, "scale"),
        ({"act_type": "gelu"}, "act_type"),
        ({"in_channels": 4, "out_channels": 3}, "in_channels must be 1 or out_channels"),
        ({"num_conv": -1}, "num_conv"),
    ],
)
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        Compact(**kwargs)
