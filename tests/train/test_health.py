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


def _beige_with_blobs(h: int, w: int) -> torch.Tensor:
    """The issue's collapsed style output: a flat beige wash with a few soft dark blobs."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    blobs = sum(torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.004) for cy, cx in ((0.3, 0.7), (0.75, 0.2), (0.5, 0.5)))
    beige = torch.tensor([0.82, 0.74, 0.58]).view(3, 1, 1)
    return (beige * (1 - 0.8 * blobs.clamp(0, 1)))[None]


def test_a_style_output_that_follows_neither_content_nor_style_is_lost() -> None:
    from lossnet.data.defaults import default_image_path
    from lossnet.data.io import load_image
    from lossnet.metrics.style import style_measures

    content = load_image(default_image_path("chelsea"), size=64)
    style = load_image(default_image_path("brick"), size=64)
    lost = _beige_with_blobs(*content.shape[-2:])
    m = style_measures(lost, content, style)
    assert m.layout < 0.2 and max(m.colour, m.texture) >= 1.0, m  # the case the check is for
    watch = CollapseWatch()  # patience 2: lost at two validations in a row
    assert watch.check(lost, content, lr=1e-3, step=100, styles=[style]) is None  # an untrained network is lost too
    warning = watch.check(lost.flip(-1), content, lr=1e-3, step=150, styles=[style])
    assert warning is not None and "follow neither their content" in warning and warning.startswith("step 150")
    # A validation that keeps the content in between starts the count again.
    again = CollapseWatch()
    for step, out in ((100, lost), (150, content), (200, lost)):
        assert again.check(out, content, lr=1e-3, step=step, styles=[style]) is None, step
    assert again.check(lost, content, lr=1e-3, step=250, styles=[style]) is not None

    # A kept content, stylised or not, is not lost; nor is the lost output without the style image given.
    tinted = (0.6 * content + 0.4 * style.mean((2, 3), keepdim=True)).clamp(0, 1)
    for fine in (content, tinted):
        assert CollapseWatch().check(fine, content, lr=1e-3, step=150, styles=[style]) is None
    assert CollapseWatch().check(lost, content, lr=1e-3, step=150) is None
    # Every output must be lost: one that kept its content clears the run.
    both = torch.cat([lost, content])
    assert CollapseWatch().check(both, torch.cat([content, content]), 1e-3, 150, styles=[style, style]) is None
