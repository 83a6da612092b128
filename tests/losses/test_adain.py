"""AdaIN's training loss: its terms, its zero, its gradient, its shares, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from lossnet.errors import InputError
from lossnet.functional.adain import adain
from lossnet.losses.adain import ADAIN_STYLE_LAYERS, AdaINLoss
from lossnet.terms.mean_std import mean_std_loss
from lossnet.terms.registry import is_style_key


def _loss(**kwargs) -> AdaINLoss:
    torch.manual_seed(0)
    return AdaINLoss(**{"arch": "vgg11", "weights": None, "layer": "relu2_1",
                        "mean_std_layers": {"relu1_1": 10.0, "relu2_1": 10.0}, **kwargs})


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g) * 0.5


def test_the_terms_are_the_families_and_the_paper_layers_by_default() -> None:
    loss = _loss()
    content, style = _pair()
    terms = loss.terms(torch.rand(2, 3, 16, 16), torch.cat([content, style], 1))
    assert list(terms) == ["feature.relu2_1", "mean_std.relu1_1", "mean_std.relu2_1", "total"]
    assert [is_style_key(k) for k in terms if k != "total"] == [False, True, True]
    assert torch.allclose(terms["total"], sum(v for k, v in terms.items() if k != "total"))
    assert ADAIN_STYLE_LAYERS == {"relu1_1": 10.0, "relu2_1": 10.0, "relu3_1": 10.0, "relu4_1": 10.0}


def test_the_content_term_compares_with_the_adain_target_and_the_style_terms_with_the_style() -> None:
    loss = _loss(content_weight=2.0)
    content, style = _pair(1)
    pred = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    terms = loss.terms(pred, torch.cat([content, style], 1))
    fx = loss.extractor
    with torch.no_grad():
        t = adain(fx(content)["relu2_1"], fx(style)["relu2_1"])
        fp, fs = fx(pred), fx(style)
    assert torch.allclose(terms["feature.relu2_1"], 2.0 * (fp["relu2_1"] - t).square().mean(), rtol=1e-4)
    for layer in ("relu1_1", "relu2_1"):
        want = 10.0 * mean_std_loss(fp[layer], fs[layer])
        assert torch.allclose(terms[f"mean_std.{layer}"], want, rtol=1e-4)


def test_the_loss_is_zero_when_the_style_is_the_content_and_the_prediction_too() -> None:
    loss = _loss()
    content, _ = _pair(3)
    terms = loss.terms(content, torch.cat([content, content], 1))
    assert all(abs(float(v)) < 1e-6 for v in terms.values()), terms


def test_the_gradient_reaches_the_prediction_only() -> None:
    loss = _loss()
    content, style = _pair(4)
    target = torch.cat([content, style], 1).requires_grad_()
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0 and target.grad is None
    assert all(p.grad is None for p in loss.parameters())


def test_shares_sum_to_one_by_term() -> None:
    loss = _loss()
    content, style = _pair(5)
    shares = loss.shares(torch.rand(2, 3, 16, 16), torch.cat([content, style], 1))
    for kind in ("value", "gradient"):
        assert set(shares[kind]) == {"feature.relu2_1", "mean_std.relu1_1", "mean_std.relu2_1"}
        assert abs(sum(shares[kind].values()) - 1.0) < 1e-6


def test_bad_inputs() -> None:
    loss = _loss()
    content, style = _pair(6)
    with pytest.raises(InputError, match=r"\(B, 6, H, W\)"):
        loss(content, content)
    with pytest.raises(InputError, match=r"prediction must be an image \(B, 3, H, W\)"):
        loss(torch.cat([content, style], 1), torch.cat([content, style], 1))
    with pytest.raises(InputError, match="2 targets for 1 predictions"):
        loss(content[:1], torch.cat([content, style], 1))
    with pytest.raises(InputError, match="vgg11 has no layer"):
        _loss(mean_std_layers={"relu9_1": 1.0})
