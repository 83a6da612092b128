from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError
from lossnet.explore.optimize import OptimizeConfig, optimize_image, pyramid_sizes, resize, start_image


def _quadratic(target: torch.Tensor):
    return lambda size: lambda x: {"total": (x - resize(target, size)).square().mean()}


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_reaches_a_known_minimum_within_the_steps_asked(optimizer: str) -> None:
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    config = OptimizeConfig(steps=60, optimizer=optimizer, lr=None if optimizer == "lbfgs" else 0.05)
    result = optimize_image(_quadratic(target), torch.zeros(1, 3, 16, 16), config)
    # Adam takes every step; L-BFGS stops early only where the gradient is exactly zero.
    n = len(result.history)
    assert (n == 60 if optimizer == "adam" else 1 < n <= 60) and [h["step"] for h in result.history] == list(
        range(1, n + 1)
    )
    assert result.final["total"] < 1e-3 * result.initial["total"]
    torch.testing.assert_close(result.image, target, atol=0.05, rtol=0)


def test_pyramid_runs_coarse_to_fine_within_the_step_budget() -> None:
    target = torch.rand(1, 3, 32, 32)
    result = optimize_image(_quadratic(target), torch.zeros(1, 3, 32, 32), OptimizeConfig(steps=9, levels=3))
    assert [int(h["level"]) for h in result.history] == [0] * 3 + [1] * 3 + [2] * 3
    assert result.image.shape == (1, 3, 32, 32)
    # Levels smaller than the network needs are dropped, the full size is always kept.
    assert pyramid_sizes((32, 32), 3, min_size=10) == [(16, 16), (32, 32)]
    assert pyramid_sizes((8, 8), 3, min_size=16) == [(8, 8)]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_result_is_a_valid_image_even_when_the_target_is_not(optimizer: str) -> None:
    target = torch.full((1, 3, 8, 8), 3.0)  # out of [0, 1]: the best valid image is all ones
    result = optimize_image(_quadratic(target), torch.rand(1, 3, 8, 8), OptimizeConfig(steps=20, optimizer=optimizer))
    assert float(result.image.min()) >= 0.0 and float(result.image.max()) == 1.0
    # The optimiser minimised the loss of the clamped image: the last step's loss is the result's, not the
    # unclamped pixels' (which L-BFGS once drove to 0, and the final clamp then undid: 4.0, from 1 to 3).
    assert result.history[-1]["total"] == pytest.approx(result.final["total"], rel=1e-6)
    if optimizer == "lbfgs":
        assert result.final["total"] == pytest.approx(4.0)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("levels", [1, 2])
def test_the_last_step_is_the_result(optimizer: str, levels: int) -> None:
    # One number for a progress bar's last value, the loss curve's last point and the printed result.
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    config = OptimizeConfig(steps=12, optimizer=optimizer, levels=levels)
    result = optimize_image(_quadratic(target), torch.zeros(1, 3, 16, 16), config)
    assert result.history[-1]["level"] == levels - 1
    assert result.history[-1]["total"] == pytest.approx(result.final["total"], rel=1e-6)
    assert result.final["total"] < result.initial["total"]


def test_noise_start_is_seeded_and_content_start_is_a_copy() -> None:
    content = torch.rand(1, 3, 8, 8)
    assert torch.equal(start_image("noise", content, 3), start_image("noise", content, 3))
    assert not torch.equal(start_image("noise", content, 3), start_image("noise", content, 4))
    copy = start_image("content", content)
    assert torch.equal(copy, content) and copy.data_ptr() != content.data_ptr()


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(InputError, match="steps must be an int >= 1"):
        OptimizeConfig(steps=0)
    with pytest.raises(InputError, match="unknown optimizer 'lbgfs'.*Did you mean 'lbfgs'"):
        OptimizeConfig(optimizer="lbgfs")
    with pytest.raises(InputError, match="lr must be a positive number"):
        OptimizeConfig(lr=-1.0)
    with pytest.raises(InputError, match="unknown init"):
        start_image("zeros", torch.rand(1, 3, 4, 4))


def test_a_diverging_loss_stops_with_advice() -> None:
    explode = lambda size: lambda x: {"total": (x * float("inf")).sum()}  # noqa: E731
    with pytest.raises(InputError, match="lower the step size"):
        optimize_image(explode, torch.rand(1, 3, 4, 4), OptimizeConfig(steps=2, optimizer="adam"))
