"""CollapseWatch: flat and frozen validation outputs are reported; healthy ones are not."""

from __future__ import annotations

import torch

from lossnet.train.health import CollapseWatch, spatial_std


def test_spatial_std_is_the_largest_channel_std() -> None:
    x = torch.zeros(2, 3, 4, 4)
    x[1, 2, 0, 0] = 1.0  # one bright pixel in one channel of the second image
    expected = torch.tensor([0.0, torch.tensor([1.0] + [0.0] * 15).std().item()])
    torch.testing.assert_close(spatial_std(x), expected)


def test_flat_output_is_reported_but_a_flat_target_is_not_a_collapse() -> None:
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert "flat" in CollapseWatch().check(flat, torch.rand(2, 3, 16, 16), lr=1e-3, step=5)
    assert CollapseWatch().check(flat, flat.clone(), lr=1e-3, step=5) is None


def test_frozen_outputs_are_reported_after_patience() -> None:
    watch = CollapseWatch(patience=2)
    out, target = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert watch.check(out, target, lr=1e-3, step=1) is None
    assert watch.check(out.clone(), target, lr=1e-3, step=2) is None  # one unchanged validation: patience
    message = watch.check(out.clone(), target, lr=1e-3, step=3)
    assert message is not None and "not changed" in message and "step 3" in message


def test_moving_outputs_or_a_zero_learning_rate_are_not_frozen() -> None:
    watch = CollapseWatch(patience=1)
    target = torch.rand(1, 3, 8, 8)
    out = torch.rand(1, 3, 8, 8)
    for step in range(1, 5):
        out = out + 1e-3
        assert watch.check(out, target, lr=1e-3, step=step) is None
    still = CollapseWatch(patience=1)
    for step in range(1, 4):
        assert still.check(out, target, lr=0.0, step=step) is None  # a finished schedule may stand still
