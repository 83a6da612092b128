from __future__ import annotations

import torch

from lossnet.data.tasks import luminance
from lossnet.explore.color import luminance_only, rgb_to_yiq, with_content_colour


def test_y_is_bt601_luma_and_chroma_comes_from_the_content() -> None:
    content, result = torch.rand(1, 3, 8, 8) * 0.5 + 0.25, torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    torch.testing.assert_close(rgb_to_yiq(content)[:, :1], luminance(content))
    out = with_content_colour(result, content)
    torch.testing.assert_close(rgb_to_yiq(out)[:, 1:], rgb_to_yiq(content)[:, 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(rgb_to_yiq(out)[:, :1], luminance(result), atol=1e-5, rtol=0)


def test_luminance_only_gives_grey_images_with_the_contents_statistics() -> None:
    content, style = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 12, 12) * 0.2
    c, s = luminance_only(content, style)
    assert torch.equal(c[:, 0], c[:, 1]) and torch.equal(s[:, 1], s[:, 2])
    assert abs(float(s.mean()) - float(c.mean())) < 0.02
    assert abs(float(s[:, :1].std()) - float(c[:, :1].std())) < 0.02
