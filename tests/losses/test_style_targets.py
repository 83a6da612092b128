"""Several fixed style images in one loss: each item compared with its own style (multi-style training)."""

from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError
from lossnet.losses import PerceptualLoss


def _loss(**kwargs) -> PerceptualLoss:
    torch.manual_seed(0)
    base = dict(weights=None, style_layers=["relu1_1", "relu2_1"], feature_layers=["relu2_1"], reduction="none")
    return PerceptualLoss("vgg11", **{**base, **kwargs})


def test_each_item_is_compared_with_its_own_style() -> None:
    styles = [torch.rand(1, 3, 24, 32), torch.rand(1, 3, 40, 20)]  # any sizes
    pred, content = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    bank = _loss()
    bank.set_style_targets(styles)
    got = bank.terms(pred, content, target_index=torch.tensor([1, 0, 1]))
    for k, rows in ((0, [1]), (1, [0, 2])):
        single = _loss()
        single.set_style_target(styles[k])
        expected = single.terms(pred[rows], content[rows])
        for key, value in expected.items():
            assert torch.allclose(got[key][rows], value, rtol=1e-6, atol=0), key
    # without an index every item meets the first style, as with one style image
    first = _loss()
    first.set_style_target(styles[0])
    assert all(torch.equal(v, first.terms(pred, content)[k]) for k, v in bank.terms(pred, content).items())


def test_one_style_bank_is_the_single_style_path_exactly() -> None:
    style, pred, content = torch.rand(1, 3, 24, 24), torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    one, bank = _loss(reduction="mean"), _loss(reduction="mean")
    one.set_style_target(style)
    bank.set_style_targets([style])
    zeros = torch.zeros(2, dtype=torch.long)
    assert all(torch.equal(v, one.terms(pred, content)[k]) for k, v in bank.terms(pred, content, zeros).items())


def test_sliced_wasserstein_bank_keeps_each_styles_statistics() -> None:
    styles = [torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)]
    loss = PerceptualLoss("vgg11", weights=None, sliced_wasserstein_layers=["relu1_1"], reduction="none")
    loss.set_style_targets(styles)
    pred = torch.zeros(2, 3, 16, 16)  # the first style's image, smaller (only the borders' share differs)
    values = loss.terms(pred, target_index=torch.tensor([0, 1]))["sliced_wasserstein.relu1_1"]
    swapped = loss.terms(pred, target_index=torch.tensor([1, 0]))["sliced_wasserstein.relu1_1"]
    assert float(values[0]) < 0.1 * float(values[1]) and float(swapped[1]) < 0.1 * float(swapped[0])


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (torch.tensor([0, 2]), r"must lie in 0..1"),
        (torch.tensor([0]), r"int64 \(2,\), one style per item; got \(1,\)"),
        (torch.tensor([0.0, 1.0]), "int64"),
    ],
)
def test_bad_target_index_is_refused(index, message) -> None:
    loss = _loss()
    loss.set_style_targets([torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)])
    with pytest.raises(InputError, match=message):
        loss.terms(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), target_index=index)


def test_index_without_style_images_and_empty_bank_are_refused() -> None:
    with pytest.raises(InputError, match="call set_style_targets first"):
        _loss().terms(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), target_index=torch.tensor([0]))
    with pytest.raises(InputError, match="list of style images"):
        _loss().set_style_targets([])
