"""Learning check of style_multi: the recipe's network, 2 styles (brick, ihc), 100 steps of 64 px crops.

Reuses tests/train/test_learning.py's layout correlation. The recipe trains the shared weights at 5e-4 and each
style's own norm parameters at 10x that (``style_lr_scale``), with each item's content target recoloured to its
own style's palette (``recolour_target``). Measured (session 15, 2-core Intel Xeon without native bf16: fp32
natively, bf16 emulated), seeds 0-5 in both precisions: both styles keep the content's layout (worst correlation
0.68 in fp32, 0.69 in bf16, both seed 5), and the two styles' outputs are RMS 0.19-0.23 apart (worst 0.193 in fp32, 0.200 in bf16), against the 0.1 asserted.

Before ``style_lr_scale`` (one rate for every parameter, 1e-3) the outputs were only RMS 0.037-0.083 apart (the
check then asked 0.02), and the layout failed for seed 4 in bf16 (0.22) and seed 5 in fp32 (-0.13): Adam moves a
parameter by about lr a step, so in 100 steps each style's scales and shifts barely left their shared start while
the shared convolutions learned the change common to both styles. At 5e-4 for all, the layouts held but the outputs
came nearer (RMS 0.022-0.032).

The issue's criterion, outputs farther from each other than from the content, still fails on astronaut, and is kept
below as a known gap: brick's output is 0.26-0.29 from the astronaut content and 0.20-0.23 from ihc's output (on
chelsea it held in 11 runs of 12: 0.19-0.23 apart, 0.11-0.21 from the content; bf16 seed 5 missed it, 0.200 apart
and 0.205 from the content). It is out of reach of the targets themselves: the
content recoloured to brick's palette and to ihc's are 0.225 apart on astronaut, but the brick one is 0.275 from
the content (chelsea: 0.221 apart, 0.186 from it). No pair of the embedded styles meets it on both held-out images
even as targets, since each palette moves every pixel, and two moves are farther apart than either is long only
where they point more than 60 degrees apart.
Session 18 asked the same of the style measures (lossnet.metrics.style; fp32, seeds 0-1, the Xeon), which
compare distributions and not pixels: by colour (sliced Wasserstein of the RGB pixels) the outputs are 0.19-0.20
apart while brick's is 0.24-0.25 from astronaut (chelsea held: ratio 1.22-1.26); by texture (7x7 patches) the two
outputs are nearer each other (0.012-0.013) than either is to its content (0.018-0.028) on both images. So the
criterion fails in those measures too; the two styles' outputs differ mainly in colour.

Before the trainer redrew style_multi's near-flat crops (as it does for style's), seed 1 diverged in bf16: a 64 px
crop of std 0.003 sent the gradient through the instance norms to inf at step 52 (tests/train/test_divergence.py).
"""

from __future__ import annotations

import pytest
import torch

from lossnet.data.folder import default_dataset
from lossnet.inference import load_model
from lossnet.train import train
from lossnet.train.config import task_config
from tests.train.test_learning import _layout_correlation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("style_multi")
    config = task_config("style_multi", steps=100, crop_size=64, batch_size=4, val_every=100, out_dir=str(out))
    net = load_model(train(config).model)
    val = default_dataset("val", crop_size=128, flip=False, seed=123)
    content = torch.stack([val[i] for i in range(len(val))])
    with torch.no_grad():
        return content, net(content, 0).float().clamp(0, 1), net(content, 1).float().clamp(0, 1)


def _rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).mean((1, 2, 3)).sqrt()


def test_each_style_keeps_the_content_and_the_styles_differ(outputs) -> None:
    content, a, b = outputs
    assert (_layout_correlation(a, content) >= 0.5).all() and (_layout_correlation(b, content) >= 0.5).all()
    assert (_rms(a, b) > 0.1).all(), _rms(a, b)  # two styles, two images (a one-style network gives 0)


@pytest.mark.xfail(
    strict=False,
    reason="known gap: on astronaut, brick's output stays farther from the content (RMS 0.26-0.29) than from ihc's "
    "output (0.20-0.23), seeds 0-5, fp32 and bf16, 2-core Xeon (chelsea meets it in 11 runs of 12); the recoloured targets themselves "
    "miss it there (0.225 apart, 0.275 from the content); see the module docstring",
)
def test_the_styles_are_farther_apart_than_from_the_content(outputs) -> None:
    content, a, b = outputs
    assert (_rms(a, b) > torch.maximum(_rms(a, content), _rms(b, content))).all()
