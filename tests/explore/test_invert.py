from __future__ import annotations

import pytest
import torch

from lossnet.data import load_default_image
from lossnet.explore.invert import InvertConfig, inversion_sheet, invert
from lossnet.explore.optimize import OptimizeConfig


@pytest.mark.slow
def test_relu2_2_inversion_with_hed_recovers_the_image(hed_weights) -> None:
    # Measured at 64 px, 300 L-BFGS steps over 3 levels, seed 0: the feature MSE falls from 2377 to 5.1
    # (465x) and the PSNR rises from 7.5 dB (the noise start) to 22.3 dB.
    image = load_default_image("astronaut", size=64)
    result = invert(image, hed_weights, InvertConfig(layers=("relu2_2",), style=False))
    (rec,) = result.feature
    assert rec.loss_start / rec.loss_end >= 100
    assert rec.psnr >= result.start_psnr + 8.0
    assert result.weights.startswith("hed")


def test_every_layer_and_growing_gram_set_is_reconstructed_and_drawn() -> None:
    config = InvertConfig(arch="vgg11", layers=("relu2_1", "relu1_1"), optimize=OptimizeConfig(steps=6))
    source = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(1))  # not the seed-0 noise start
    result = invert(source, weights=None, config=config)
    assert config.layers == ("relu1_1", "relu2_1")  # forward order
    assert [r.layers for r in result.style] == [("relu1_1",), ("relu1_1", "relu2_1")]
    for r in result.feature + result.style:
        assert r.image.shape == (1, 3, 24, 32) and 0 <= float(r.image.min()) and float(r.image.max()) <= 1
        assert len(r.curve) == 6 and r.loss_end < r.loss_start
    sheet = inversion_sheet(result, cell_size=140)  # wide enough for "style relu1_1..relu2_1" on one line
    assert sheet.size == (3 * 146 + 6, 24 + 2 * (24 + 32 + 6) + 6)  # 3 columns; 2 rows of 24 px, 2-line captions


def test_unknown_layer_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="no layer 'relu2_3'. Did you mean 'relu2_1', 'relu2_2'"):
        InvertConfig(layers=("relu2_3",))
