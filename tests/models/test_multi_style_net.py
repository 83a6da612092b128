"""MultiStyleNet: conditional instance norm over N styles (Dumoulin et al. 2017)."""

from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError
from lossnet.models import MODELS, MultiStyleNet, StyleChoice, TransformerNet, build_model, model_spec
from lossnet.models.multi_style_net import ConditionalInstanceNorm
from lossnet.inference.norm_stats import per_image_norms


def _net(num_styles: int = 3, seed: int = 0) -> MultiStyleNet:
    """A small network whose per-style scales and shifts differ (at init they are all 1 and 0)."""
    torch.manual_seed(seed)
    net = MultiStyleNet(num_styles=num_styles, channels=4, num_residual=1).eval()
    with torch.no_grad():
        for norm in net.conditional_norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    return net


def test_one_hot_mix_is_the_index_path_bitwise() -> None:
    net, x = _net(), torch.rand(3, 3, 16, 20)
    index = torch.tensor([2, 0, 1])
    by_index = net(x, index)
    by_mix = net(x, torch.nn.functional.one_hot(index, 3).float())
    assert torch.equal(by_index, by_mix)
    assert torch.equal(net(x, 1), net(x, torch.tensor([0.0, 1.0, 0.0])))  # one mix for the whole batch


def test_batched_styles_equal_each_image_alone() -> None:
    net, x = _net(), torch.rand(3, 3, 16, 16)
    out = net(x, torch.tensor([2, 0, 1]))
    for i, k in enumerate([2, 0, 1]):
        assert torch.allclose(out[i : i + 1], net(x[i : i + 1], k), atol=1e-6)
    assert not torch.allclose(net(x, 0), net(x, 2), atol=1e-3)  # the styles do differ


def test_each_style_is_the_plain_style_network_with_its_affine_parameters() -> None:
    """A style of a multi-style network is a TransformerNet whose instance norms hold that style's pair."""
    net, x = _net(), torch.rand(2, 3, 16, 16)
    plain = TransformerNet(channels=4, num_residual=1).eval()
    state = plain.state_dict()
    for k in range(net.num_styles):
        for key, value in net.state_dict().items():
            if key.endswith(("weight", "bias")) and value.ndim == 2 and value.shape[0] == net.num_styles:
                state[key] = value[k]  # the norm's affine pair of style k (same name in both networks)
            else:
                state[key] = value
        plain.load_state_dict(state)
        assert torch.allclose(net(x, k), plain(x), atol=1e-6), k


def test_a_one_style_network_needs_no_style_and_starts_as_transformernet() -> None:
    torch.manual_seed(0)
    one = MultiStyleNet(num_styles=1, channels=4, num_residual=1).eval()
    torch.manual_seed(0)
    plain = TransformerNet(channels=4, num_residual=1).eval()  # the same draws: norms start at (1, 0) in both
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(one(x), plain(x), atol=1e-6) and torch.equal(one(x), one(x, 0))


def test_a_mix_blends_the_affine_parameters() -> None:
    net, x = _net(num_styles=2), torch.rand(1, 3, 16, 16)
    blended = _net(num_styles=2)
    with torch.no_grad():
        for norm in blended.conditional_norms:
            for p in (norm.weight, norm.bias):
                p[0] = 0.3 * p[0] + 0.7 * p[1]
    assert torch.allclose(net(x, torch.tensor([0.3, 0.7])), blended(x, 0), atol=1e-6)


@pytest.mark.parametrize(
    ("style", "message"),
    [
        (3, "style 3 is out of range: this network holds 3 styles, 0 to 2"),
        (-1, "style -1 is out of range"),
        (torch.tensor([0, 5]), "style 5 is out of range"),
        (torch.tensor([0, 1, 2]), r"one per image, \(2,\)"),
        (torch.tensor([0.5, 0.6, 0.0]), "sum to 1; got .* \\(sum 1.1\\)"),
        (torch.tensor([1.5, -0.5, 0.0]), ">= 0 and sum to 1"),
        (torch.tensor([0.5, 0.5]), r"one weight per style, \(3,\) or \(2, 3\)"),
        (None, "holds 3 styles; pass style="),
    ],
)
def test_bad_styles_are_refused(style, message) -> None:
    with pytest.raises(InputError, match=message):
        _net()(torch.rand(2, 3, 16, 16), style)


def test_style_choice_fixes_a_style_and_declares_the_size_rule() -> None:
    net, x = _net(), torch.rand(1, 3, 16, 16)
    chosen = StyleChoice(net, 2)
    assert torch.equal(chosen(x), net(x, 2)) and not chosen.training
    assert (chosen.size_multiple, chosen.min_size, chosen.scale, chosen.in_channels) == (4, 8, 1, 3)
    assert torch.equal(StyleChoice(net, [0.2, 0.0, 0.8])(x), net(x, torch.tensor([0.2, 0.0, 0.8])))
    with pytest.raises(InputError, match="sum to 1"):
        StyleChoice(net, [0.2, 0.2, 0.2])


def test_registry_builds_it_and_the_tiler_sees_its_instance_norms() -> None:
    net = build_model(model_spec("MultiStyleNet", num_styles=2, channels=4, num_residual=1))
    assert MODELS["MultiStyleNet"] is MultiStyleNet and net.num_styles == 2
    norms = [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm)]
    assert len(norms) == len(per_image_norms(net)) == 7  # each conditional norm normalises with a plain one
    assert norms[0].weight.shape == (2, 4)


def test_gradients_reach_only_the_styles_used() -> None:
    net = _net().train()
    net(torch.rand(2, 3, 16, 16), torch.tensor([0, 2])).mean().backward()
    grad = net.conditional_norms[0].weight.grad
    assert grad[0].abs().sum() > 0 and grad[2].abs().sum() > 0 and grad[1].abs().sum() == 0
