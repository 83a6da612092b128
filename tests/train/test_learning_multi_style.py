"""Learning check of style_multi: the recipe's network, 2 styles (brick, ihc), 100 steps of 64 px crops.

Reuses tests/train/test_learning.py's layout correlation. What such a short run shows (2-core AMD EPYC, AVX-512 BF16;
seeds 0-2, bf16 natively and fp32 as an AVX2 CPU runs it), with the recipe's content terms comparing each item with
its content recoloured to its own style's palette (``recolour_target``): both styles keep the content's layout
(worst correlation 0.70 in bf16, 0.51 in fp32), and the two styles' outputs differ (worst RMS 0.057 in bf16, 0.037
in fp32, against the 0.02 asserted; before the recoloured target 0.0075-0.0305, against 0.005). Those are with the
sliced-Wasserstein sort in NumPy (session 14); before it, 0.68 / 0.75 and 0.050 / 0.042. The layout does not hold
for every seed: seed 4 in bf16 (0.22) and seed 5 in fp32 (-0.13; 0.17 before the change) lose it, so the check's
seed 0 is not a margin for all seeds, and the README says so. They
still differ less from each other than from the content (0.13-0.24): in 100 steps the shared convolutions learn the
change common to both styles, while each style's own parameters (its norms' scales and shifts, started equal) have
moved little. The issue's criterion, outputs farther from each other than from the content, is kept below as a
known gap.

That criterion, in pixel RMS, is out of reach of these targets themselves: the content recoloured to brick's palette
and to ihc's are 0.225 apart on astronaut, but the brick one is 0.275 from the content (chelsea: 0.221 apart, 0.186
from it). No pair of the embedded styles meets it on both held-out images even as targets, since each palette moves
every pixel, and two moves are farther apart than either is long only where they point more than 60 degrees apart.
A network that reached its targets exactly would fail it too. A measure that could stand in, each output's colour
distance (``lossnet.metrics.style.colour_distance``) to its own style below that to the other, held for ihc's
output in all 12 cases (2 images, seeds 0-2, both precisions) and for brick's in 10 of 12 (fp32, seeds 1 and 2,
astronaut: 0.129 against 0.125 and 0.130 against 0.127): not with margin, so it is not asserted either.

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
    assert (_rms(a, b) > 0.02).all(), _rms(a, b)  # two styles, two images (a one-style network gives 0)


@pytest.mark.xfail(
    strict=False,
    reason="known gap: after 100 steps the two styles' outputs are nearer each other (RMS 0.042-0.083) than the "
    "content (0.13-0.24), bf16 and fp32 (AVX2 path), seeds 0-2, 2-core AMD EPYC; the recoloured targets themselves "
    "miss it on astronaut (0.225 apart, 0.275 from the content); see the module docstring",
)
def test_the_styles_are_farther_apart_than_from_the_content(outputs) -> None:
    content, a, b = outputs
    assert (_rms(a, b) > torch.maximum(_rms(a, content), _rms(b, content))).all()
