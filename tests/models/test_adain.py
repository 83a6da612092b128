"""AdaINNet: the paper's maths through the network, its size rules, what its state holds, and its bound form."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from lossnet.backbones.vgg import VGG
from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.errors import CheckpointError, InputError
from lossnet.functional.adain import channel_statistics
from lossnet.inference import apply_model, load_model
from lossnet.models import MODELS, AdaINNet, StyledAdaIN, build_model, model_spec


def tiny(**kwargs) -> AdaINNet:
    torch.manual_seed(0)
    return AdaINNet(**{"arch": "vgg11", "weights": None, "layer": "relu2_1", **kwargs}).eval()


def images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def trunk_file(tmp_path):
    """A random VGG11 as a weight file: a named trunk that no test has to download."""
    torch.manual_seed(1)
    path = tmp_path / "vgg11.safetensors"
    save_file({k: v.contiguous() for k, v in VGG("vgg11").state_dict().items()}, str(path))
    return str(path)


def test_alpha_0_gives_the_decoded_content_features() -> None:
    net = tiny()
    content, style = images(2, 3, 16, 24), images(1, 3, 20, 20, seed=1)
    with torch.no_grad():
        assert torch.equal(net(content, style, alpha=0.0), net.decode(net.encode(content)))
        assert torch.allclose(net(content, style, alpha=1e-7), net(content, style, alpha=0.0), atol=1e-5)  # continuous
        assert not torch.allclose(net(content, style, alpha=1.0), net(content, style, alpha=0.0), atol=1e-3)


def test_adains_output_takes_the_styles_statistics_at_the_encoder_layer() -> None:
    net = tiny()
    content, style = images(1, 3, 16, 16), images(1, 3, 16, 16, seed=2) * 0.3 + 0.6
    seen = {}
    net.decoder.register_forward_pre_hook(lambda m, args: seen.setdefault("t", args[0]))
    with torch.no_grad():
        net(content, style)
        before, after, want = (channel_statistics(f) for f in (net.encode(content), seen["t"], net.encode(style)))
    assert torch.allclose(after[0], want[0], atol=1e-4)
    # where the content or the style channel is (nearly) dead, eps decides the spread: AdaIN cannot spread a constant
    live = (want[1][0] > 0.03) & (before[1][0] > 0.03)
    assert live.sum() > 10 and torch.allclose(after[1][0, live], want[1][0, live], rtol=1e-2)
    assert (before[0] - want[0]).abs().max() > 100 * (after[0] - want[0]).abs().max()


def test_packed_input_equals_two_inputs_and_one_input_is_refused() -> None:
    net = tiny()
    content, style = images(2, 3, 16, 16), images(2, 3, 16, 16, seed=3)
    with torch.no_grad():
        assert torch.allclose(net(torch.cat([content, style], 1)), net(content, style), atol=1e-6)
    with pytest.raises(InputError, match="lossnet train style_any"):
        net(content)
    with pytest.raises(InputError, match="at least"):
        net(content, images(1, 3, 1, 1))


def test_size_rules_follow_the_encoder_layer() -> None:
    assert (tiny().size_multiple, tiny().min_size) == (2, 4)
    deep = tiny(layer="relu4_1")
    assert (deep.size_multiple, deep.min_size, deep.in_channels, deep.scale) == (8, 16, 3, 1)
    style = images(1, 3, 16, 16)
    with torch.no_grad():
        assert deep(images(1, 3, 16, 24), style).shape == (1, 3, 16, 24)
        with pytest.raises(InputError, match="multiples of 8"):
            deep(images(1, 3, 20, 24), style)
        with pytest.raises(InputError, match="at least 16x16"):
            deep(images(1, 3, 8, 16), style)


def test_the_decoder_mirrors_the_encoder_and_only_it_learns() -> None:
    net = tiny(layer="relu4_1")
    convs = [m for m in net.decoder if isinstance(m, torch.nn.Conv2d)]
    enc = [m for m in net.encoder.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(e.out_channels, e.in_channels) for e in reversed(enc)]
    assert all(c.padding_mode == "reflect" for c in convs)
    assert sum(isinstance(m, torch.nn.Upsample) for m in net.decoder) == 3
    trainable = {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"decoder"}


def test_a_named_trunk_stays_out_of_the_state_and_a_checkpoint_rebuilds_it(tmp_path, trunk_file) -> None:
    net = tiny(weights=trunk_file)
    state = net.state_dict()
    assert state and all(k.startswith("decoder.") for k in state)
    assert any(k.startswith("encoder.") for k in tiny().state_dict())  # a random trunk is kept: nothing rebuilds it
    spec = model_spec("AdaINNet", arch="vgg11", weights=trunk_file, layer="relu2_1")
    save_checkpoint(tmp_path / "m.safetensors", state, model_meta(spec, task="style_any", step=1))
    loaded = load_model(tmp_path / "m.safetensors")
    content, style = images(1, 3, 16, 16), images(1, 3, 16, 16, seed=4)
    with torch.no_grad():
        assert torch.equal(loaded(content, style), net(content, style))


def test_a_checkpoint_whose_trunk_is_missing_is_refused_clearly(tmp_path, trunk_file) -> None:
    net = tiny(weights=trunk_file)
    spec = model_spec("AdaINNet", arch="vgg11", weights=str(tmp_path / "gone.safetensors"), layer="relu2_1")
    save_checkpoint(tmp_path / "m.safetensors", net.state_dict(), model_meta(spec, task="style_any", step=1))
    with pytest.raises(CheckpointError, match=r"AdaINNet's encoder is vgg11 with weights .*gone.safetensors.* cannot be loaded here"):
        load_model(tmp_path / "m.safetensors")


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="ReLU output"):
        tiny(layer="conv2_1")
    with pytest.raises(InputError, match="Did you mean"):
        tiny(arch="vgg1")
    assert MODELS["AdaINNet"] is AdaINNet and build_model(model_spec("AdaINNet", arch="vgg11", weights=None)).layer == "relu4_1"


def test_the_bound_network_is_the_network_with_its_style() -> None:
    net = tiny()
    content, style = images(1, 3, 16, 24), images(1, 3, 20, 20, seed=5)
    with torch.no_grad():
        assert torch.allclose(StyledAdaIN(net, [style])(content), net(content, style), atol=1e-5)
        assert torch.allclose(StyledAdaIN(net, [style], alpha=0.3)(content), net(content, style, alpha=0.3), atol=1e-5)
        whole = torch.ones(1, 1, 32, 48)
        # a mask that is all white is the one style everywhere; all black (one style) the content decoded
        assert torch.allclose(StyledAdaIN(net, [style], mask=whole)(content), net(content, style), atol=1e-5)
        assert torch.allclose(StyledAdaIN(net, [style], mask=0 * whole)(content), net(content, style, alpha=0.0), atol=1e-5)
        other = images(1, 3, 20, 20, seed=6) * 0.2
        assert torch.allclose(StyledAdaIN(net, [style, other], mask=whole)(content), net(content, style), atol=1e-5)
        assert torch.allclose(StyledAdaIN(net, [style, other], mask=0 * whole)(content), net(content, other), atol=1e-5)
    with pytest.raises(InputError, match="two with a mask"):
        StyledAdaIN(net, [style, other])
    with pytest.raises(InputError, match="aspect ratio"):
        StyledAdaIN(net, [style], mask=torch.ones(1, 1, 40, 40))(content)


def test_a_tiled_image_is_normalised_by_the_whole_images_statistics() -> None:
    """AdaIN's content normalisation is an InstanceNorm2d, so the tiler measures it over the whole image."""
    styled = StyledAdaIN(tiny(), [images(1, 3, 16, 16, seed=7)])
    x = images(1, 3, 64, 96, seed=8)
    x[..., :, 48:] = x[..., :, 48:] * 0.2 + 0.8  # two halves of very different statistics
    whole = apply_model(styled, x, tile=None)
    tiled = apply_model(styled, x, tile=48, overlap=16)
    own = apply_model(styled, x, tile=48, overlap=16, norm_stats="tile")
    assert (tiled - whole).abs().mean() < 0.25 * (own - whole).abs().mean()
