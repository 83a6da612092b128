"""The weight-free random-network term: seeded and machine-independent, no file read, a texture distance."""

from __future__ import annotations

import pytest
import torch

import lossnet
from lossnet.data import load_default_image
from lossnet.errors import InputError
from lossnet.functional import gram_matrix
from lossnet.terms.random_net import RandomNet, RandomNetLoss, random_net_loss, random_net_weights


def test_weights_are_a_function_of_the_seed_alone() -> None:
    w = random_net_weights(0, dtype=torch.float64)
    # drawn in float64 on the CPU from torch.Generator().manual_seed(0): these numbers are the same everywhere
    assert w[0].flatten()[:3].tolist() == pytest.approx([-0.6288144451420924, -0.1015860173484312, -0.2887177303413831])
    assert float(w[0].sum()) == pytest.approx(5.634520141702962, rel=1e-12)
    assert torch.equal(random_net_weights(0)[2], w[2].float())  # float32 is the cast of the float64 draw
    assert not torch.equal(random_net_weights(1)[0], random_net_weights(0)[0])
    # He initialisation: std sqrt(2 / fan_in)
    assert float(w[1].std()) == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)


def test_reads_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the random-network term must not read a file")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("builtins.open", refuse)
    loss = lossnet.PerceptualLoss(weights="auto", random_net_weight=1.0)  # no layer read: no trunk, no weights
    assert loss.extractor is None
    x = torch.rand(1, 3, 16, 16)
    assert float(loss(x, x)) == 0.0


def test_known_value_from_the_network_written_out() -> None:
    x, y = torch.rand(2, 3, 12, 12), torch.rand(1, 3, 10, 14)
    ws = random_net_weights(3, channels=8, stages=2)
    total = 0.0
    hx, hy = x * 2 - 1, y * 2 - 1
    for i, w in enumerate(ws):
        if i:
            hx, hy = torch.nn.functional.avg_pool2d(hx, 2), torch.nn.functional.avg_pool2d(hy, 2)
        hx = torch.relu(torch.nn.functional.conv2d(hx, w, padding=1))
        hy = torch.relu(torch.nn.functional.conv2d(hy, w, padding=1))
        total = total + (gram_matrix(hx) - gram_matrix(hy)).pow(2).mean((1, 2))
    got = random_net_loss(x, y, seed=3, channels=8, stages=2, reduction="none")
    torch.testing.assert_close(got, total)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_texture_distance_same_texture_near_other_texture_far(seed: int) -> None:
    grass, brick, chelsea = (load_default_image(n, 128) for n in ("grass", "brick", "chelsea"))
    top, bottom = (slice(None), slice(None), slice(0, 64), slice(0, 64)), (..., slice(64, None), slice(64, None))
    loss = RandomNetLoss(seed=seed)
    grass_grass = float(loss(grass[top], grass[bottom]))  # two disjoint crops of one texture
    brick_brick = float(loss(brick[top], brick[bottom]))
    grass_brick = float(loss(grass[top], brick[top]))
    assert max(grass_grass, brick_brick) < grass_brick / 1.5
    assert grass_brick < float(loss(grass[top], chelsea[top])) / 10  # a photo is farther still


def test_input_range_grey_images_and_gradients() -> None:
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(
        random_net_loss(x * 255, x.flip(-1) * 255, input_range=(0, 255)), random_net_loss(x, x.flip(-1))
    )
    grey = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(random_net_loss(grey, x[:1]), random_net_loss(grey.expand(-1, 3, -1, -1), x[:1]))
    p = torch.rand(2, 3, 16, 16, requires_grad=True)
    random_net_loss(p, torch.rand(1, 3, 20, 20)).backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_batched_equals_per_sample_and_module_equals_function() -> None:
    x, y = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    per = torch.stack([random_net_loss(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(random_net_loss(x, y, reduction="none"), per)
    torch.testing.assert_close(RandomNetLoss(reduction="sum")(x, y), random_net_loss(x, y, reduction="sum"))


def test_bad_input_says_what_was_expected() -> None:
    with pytest.raises(InputError, match=r"at least 4x4 pixels; got \(2, 2\).*random_net_stages"):
        RandomNet()(torch.rand(1, 3, 2, 2))
    with pytest.raises(InputError, match="one style image or one per prediction"):
        random_net_loss(torch.rand(3, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(InputError, match="channels must be an int >= 1"):
        random_net_weights(0, channels=0)


def test_in_perceptual_loss_as_a_fixed_style_and_the_preset() -> None:
    loss = lossnet.perceptual_loss_from_preset("random_net_style", weights=None, random_net_seed=2)
    style = torch.rand(1, 3, 24, 20)
    loss.set_style_target(style)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    terms = loss.terms(x)
    assert sorted(terms) == ["random_net", "total"]
    torch.testing.assert_close(terms["random_net"], 1e6 * random_net_loss(x, style, seed=2))
    terms["total"].backward()
    assert torch.isfinite(x.grad).all()
    preset = lossnet.losses.get_preset("random_net_style")
    assert "Ustyuzhaninov" in preset.source and "Amir & Weiss" in preset.source and preset.notes
