"""``recolour_target``: a style network's content terms compare with the content in the style's colours."""

import numpy as np
import pytest
import torch
from PIL import Image

from lossnet.data.defaults import load_default_image
from lossnet.errors import InputError, InputTypeError
from lossnet.functional.adain import channel_statistics
from lossnet.inference import load_model
from lossnet.train.config import task_config
from lossnet.train.loop import train
from lossnet.train.styles import StylePalette


def test_each_item_takes_its_own_styles_channel_mean_and_std() -> None:
    styles = [torch.rand(1, 3, 20, 30) * 0.2 + 0.3, torch.rand(1, 3, 10, 10) * 0.1 + 0.6]  # narrow: nothing clamps
    content = load_default_image("chelsea", 48)
    target = torch.cat([content, content.flip(-1), content])
    out = StylePalette(styles).recolour(target, torch.tensor([1, 0, 0]))
    assert out.shape == target.shape and out.dtype == torch.float32
    assert 0 < float(out.min()) and float(out.max()) < 1
    for item, k in enumerate([1, 0, 0]):
        got, want = channel_statistics(out[item : item + 1]), channel_statistics(styles[k])
        torch.testing.assert_close(got, want, atol=1e-3, rtol=0)  # eps (1e-5) in both variances
    # a per-channel affine map: the layout is the content's (each channel correlates 1 with its own)
    flat = lambda x: x.flatten(1)  # noqa: E731
    for c in range(3):
        corr = np.corrcoef(flat(out[0, c : c + 1]).numpy()[0], flat(target[0, c : c + 1]).numpy()[0])[0, 1]
        assert corr > 0.999
    first = StylePalette(styles).recolour(target, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(StylePalette(styles).recolour(target), first)  # no index: the first style


def test_a_task_without_a_style_image_refuses_it() -> None:
    with pytest.raises(InputError, match="has no style image.*--recolour-target"):
        task_config("superres", recolour_target=True)
    with pytest.raises(InputTypeError, match="true or false"):
        task_config("style", recolour_target="yes")


def test_the_style_recipe_recolours_and_the_network_learns_the_styles_colours(tiny, tmp_path) -> None:
    assert task_config("style").recolour_target is True
    red = np.clip(np.random.default_rng(0).normal((0.85, 0.15, 0.1), 0.05, (40, 40, 3)), 0, 1)
    path = tmp_path / "red.png"
    Image.fromarray((red * 255).round().astype(np.uint8)).save(path)
    # The content terms only (a vanishing style term): what the network learns is the target's colours.
    means = {}
    for recolour in (False, True):
        config = tiny(
            "style", style_image=str(path), recolour_target=recolour, steps=40, lr=1e-2, feature_layers={},
            pixel_weight=1.0, tv_weight=0.0, sliced_wasserstein_layers={"relu1_2": 1e-12},
            out_dir=str(tmp_path / f"run_{recolour}"), val_every=40, checkpoint_every=40,
        )  # fmt: skip
        net = load_model(train(config).model)
        with torch.no_grad():
            means[recolour] = net(load_default_image("astronaut", 64)).mean((0, 2, 3))
    content = load_default_image("astronaut", 64).mean((0, 2, 3))
    red_mean = torch.tensor(red.mean((0, 1)), dtype=torch.float32)
    assert (means[True] - red_mean).abs().max() < 0.12, (means[True], red_mean)
    # red (red minus green: 0.7 in the style), where without it the network keeps the content's balance (0.14)
    assert float(means[True][0] - means[True][1]) > 0.4, means[True]
    assert float(means[False][0] - means[False][1]) < 0.25, (means[False], content)
