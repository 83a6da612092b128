"""A diverging run stops with TrainingDivergedError that says what went non-finite, on the paths real failures take.

Nothing here patches the loss: the weights are poisoned on disk, or the learning rate or a
term's weight is absurd, and the error must come from the trainer (never the loss's input
check, ``InputError``), with the last checkpoint on disk left intact.
"""

from __future__ import annotations

import pytest
import torch

from lossnet.checkpoint import load_checkpoint, save_checkpoint
from lossnet.errors import TrainingDivergedError
from lossnet.losses import PerceptualLoss
from lossnet.models import UNet
from lossnet.runtime import resolve
from lossnet.train import train
from lossnet.train.step import check_weights, train_step


def finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


@pytest.mark.slow
def test_poisoned_weights_stop_the_resumed_run_at_the_networks_output(tiny, tmp_path):
    first = train(tiny("superres", steps=4, stop_after=2, loss="pixel"))
    ckpt = load_checkpoint(first.checkpoint)
    state = dict(ckpt.model_state)
    name = next(k for k, v in state.items() if k.endswith("weight") and v.ndim == 4)
    state[name] = torch.full_like(state[name], float("nan"))  # what an exploded update leaves behind
    save_checkpoint(first.checkpoint, state, ckpt.meta, ckpt.train_state)

    expected = r"network's output became NaN or infinite at step 3, before the loss"
    with pytest.raises(TrainingDivergedError, match=expected):
        train(tiny("superres", steps=4, loss="pixel"), resume=first.checkpoint)
    assert load_checkpoint(first.checkpoint).meta["step"] == 2  # not overwritten


@pytest.mark.slow
def test_a_huge_learning_rate_stops_with_the_divergence_named(tiny, tmp_path):
    """lr 1e6: the batch-norm statistics and weights blow up after step 2; no checkpoint of them is written."""
    config = tiny("superres", steps=6, lr=1e6, checkpoint_every=1, val_every=2, loss="pixel")
    with pytest.raises(TrainingDivergedError, match=r"(NaN or infinite).*(step 2).*Lower --lr") as info:
        train(config)
    assert "InputError" not in type(info.value).__name__
    ckpt = load_checkpoint(f"{config.out_dir}/checkpoint.safetensors")
    assert ckpt.meta["step"] == 1 and finite(ckpt.model_state)  # the last good step, intact


@pytest.mark.slow
def test_an_exploding_style_network_stops_before_its_loss(tiny):
    with pytest.raises(TrainingDivergedError, match=r"network's output became NaN or infinite at step 2"):
        train(tiny("style", steps=4, lr=1e12, val_every=100))


def test_an_infinite_term_is_named(tiny):
    """A finite network whose weighted feature term overflows: the error names the term, not the input."""
    config = tiny("superres", steps=2, feature_layers={"relu2_2": 1e308})
    with pytest.raises(TrainingDivergedError, match=r"loss term 'feature.relu2_2' became inf at step 1"):
        train(config)


def test_train_step_leaves_the_weights_alone_when_the_output_is_not_finite():
    torch.manual_seed(0)
    net = UNet(depth=1, base_channels=4)
    loss = PerceptualLoss(feature_layers={}, pixel_weight=1.0, weights=None)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 16, 16)
    terms = train_step(net, loss, opt, (x, x), resolve("fp32", "cpu"), step=1)
    assert set(terms) == {"pixel", "total"} and all(not t.requires_grad for t in terms.values())
    with torch.no_grad():
        next(net.parameters())[0] = float("inf")
    before = {k: v.clone() for k, v in net.named_parameters()}
    with pytest.raises(TrainingDivergedError, match="at step 7"):
        train_step(net, loss, opt, (x, x), resolve("fp32", "cpu"), step=7)
    assert all(torch.equal(before[k], v) for k, v in net.named_parameters())  # the step was not applied
    with pytest.raises(TrainingDivergedError, match=r"weights became NaN or infinite at step 7 \(first: "):
        check_weights(net, 7)


def test_a_non_finite_gradient_of_a_finite_loss_is_refused_naming_the_parameter():
    """What a style_multi run met in bf16 (seed 1, step 52): a near-black crop (std 0.003) drove the gradient through
    its instance norms to inf while every loss term was finite; Adam applied it, and the run failed a step later at
    the output. The step now stops first, names the parameter and applies nothing."""
    torch.manual_seed(0)
    net = UNet(depth=1, base_channels=4)
    loss = PerceptualLoss(feature_layers={}, pixel_weight=1.0, weights=None)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 16, 16)
    name, param = next((n, p) for n, p in net.named_parameters() if p.ndim == 4)
    param.register_hook(lambda g: g * float("inf"))  # an exploding backward, the loss itself finite
    before = {k: v.clone() for k, v in net.named_parameters()}
    with pytest.raises(TrainingDivergedError, match=rf"gradient of {name} became (infinite|NaN) at step 3 while"):
        train_step(net, loss, opt, (x, x.flip(0)), resolve("fp32", "cpu"), step=3)
    assert all(torch.equal(before[k], v) for k, v in net.named_parameters())
    assert not opt.state  # Adam never saw it
