"""The mean/std (AdaIN statistics) style term: known values, invariances, gradients, the loss and the preset."""

from __future__ import annotations

import pytest
import torch

import lossnet
from lossnet.errors import InputError
from lossnet.terms.mean_std import MEAN_STD_EPS, MeanStdLoss, channel_mean_std, mean_std_loss


def test_known_value_written_out() -> None:
    x = torch.tensor([[[[1.0, 3.0]], [[0.0, 0.0]]]])  # channel 0: mean 2, std 1; channel 1: mean 0, std 0
    y = torch.tensor([[[[0.0, 0.0]], [[5.0, 9.0]]]])  # channel 0: mean 0, std 0; channel 1: mean 7, std 2
    # mean_c (dmu)^2 = (4 + 49) / 2; mean_c (dsigma)^2 = (1 + 4) / 2
    assert float(mean_std_loss(x, y, eps=0.0)) == pytest.approx((4 + 49) / 2 + (1 + 4) / 2)


def test_zero_for_identical_statistics_and_blind_to_positions() -> None:
    x = torch.rand(2, 5, 6, 6)
    assert float(mean_std_loss(x, x)) == 0.0
    shuffled = x.flatten(2)[:, :, torch.randperm(36)].view_as(x)
    assert float(mean_std_loss(x, shuffled)) == pytest.approx(0.0, abs=1e-12)
    # a change of contrast is seen (the test could fail)
    assert float(mean_std_loss(x, 2 * x)) > 0.01


def test_statistics_match_torch_and_sizes_may_differ() -> None:
    x = torch.rand(3, 4, 7, 5, dtype=torch.float64)
    mean, std = channel_mean_std(x)
    torch.testing.assert_close(mean, x.mean((2, 3)))
    torch.testing.assert_close(std, (x.var((2, 3), unbiased=False) + MEAN_STD_EPS).sqrt())
    assert mean_std_loss(torch.rand(3, 4, 8, 8), torch.rand(1, 4, 3, 11), reduction="none").shape == (3,)


def test_gradcheck_and_finite_gradient_at_agreement() -> None:
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, 5, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: mean_std_loss(a, y), (x,))
    z = torch.rand(1, 3, 4, 4, requires_grad=True)
    mean_std_loss(z, z.detach()).backward()  # an L2 norm would give NaN here
    assert torch.isfinite(z.grad).all()


def test_batched_equals_per_sample_and_module_equals_function() -> None:
    x, y = torch.rand(3, 4, 5, 5), torch.rand(3, 4, 6, 6)
    per = torch.stack([mean_std_loss(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(mean_std_loss(x, y, reduction="none"), per)
    torch.testing.assert_close(MeanStdLoss(reduction="sum")(x, y), mean_std_loss(x, y, reduction="sum"))


def test_bad_input_says_what_was_expected() -> None:
    with pytest.raises(InputError, match=r"\(1, 4\) and \(1, 3\).*same layer"):
        mean_std_loss(torch.rand(1, 4, 5, 5), torch.rand(1, 3, 5, 5))
    with pytest.raises(InputError, match="4 dimensions"):
        mean_std_loss(torch.rand(4, 5, 5), torch.rand(1, 4, 5, 5))


def test_in_perceptual_loss_with_a_fixed_style_image_and_the_preset() -> None:
    loss = lossnet.PerceptualLoss("vgg11", None, mean_std_layers={"relu1_1": 2.0, "relu2_1": 1.0})
    style = torch.rand(1, 3, 40, 24)
    loss.set_style_target(style)
    assert loss.engine.term("mean_std.relu1_1").fixed["mean"].shape == (1, 64)  # 2C numbers kept, not the image
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    terms = loss.terms(x)
    fx = loss.extractor(x)
    fs = loss.extractor(style)
    expected = 2.0 * mean_std_loss(fx["relu1_1"], fs["relu1_1"]) + mean_std_loss(fx["relu2_1"], fs["relu2_1"])
    torch.testing.assert_close(terms["total"], expected)
    terms["total"].backward()
    assert torch.isfinite(x.grad).all()
    preset = lossnet.losses.get_preset("adain_style")
    assert preset.arch == "vgg19" and preset.mean_std_layers == {f"relu{i}_1": 10.0 for i in range(1, 5)}
    assert "Huang & Belongie" in preset.source and preset.notes
