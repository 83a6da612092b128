"""Presets: the published recipes build, with the documented layers, weights and criteria."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lossnet.backbones.vgg import get_layer
from lossnet.errors import InputError
from lossnet.losses import PRESETS, PerceptualLoss, Preset, get_preset, perceptual_loss_from_preset
from lossnet.terms.registry import FAMILIES, term_layers

NAMES = [
    "adain_style",
    "contextual_superres",
    "dists",
    "esrgan",
    "fastai_feature_loss",
    "gatys2016",
    "johnson2016_style",
    "johnson2016_superres",
    "lossnet_colorize",
    "lossnet_style",
    "lossnet_superres",
    "lpips_vgg",
    "random_net_style",
    "sliced_wasserstein_style",
]


def expected_keys(preset: Preset) -> list[str]:
    keys = ["pixel"] if preset.pixel_weight else []
    keys += [f"feature.{n}" for n in preset.feature_layers]
    keys += [f"style.{n}" for n in preset.style_layers]
    keys += [f"contextual.{n}" for n in preset.contextual_layers]
    keys += ["tv"] if preset.tv_weight else []
    keys += ["lpips_like"] if preset.lpips_weight else []  # random trunks: not the published metrics
    keys += ["dists_like"] if preset.dists_weight else []
    for family in FAMILIES.values():  # the later families, each named by its entry in the table
        if family.name not in _FIRST:
            value = getattr(preset, family.keyword)
            keys += [f"{family.name}.{n}" for n in value] if family.layered else [family.name] * bool(value)
    return sorted(keys + ["total"])


_FIRST = ("pixel", "feature", "style", "contextual", "mrf", "tv", "focal_frequency", "lpips", "dists")


def test_preset_names() -> None:
    assert sorted(PRESETS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_builds_and_reports_its_terms(name: str) -> None:
    preset = get_preset(name)
    loss = perceptual_loss_from_preset(name, weights=None, strict=False)
    assert isinstance(loss, PerceptualLoss)
    if term_layers(preset.arch, preset.kwargs()):
        assert loss.extractor is not None and loss.extractor.arch == preset.arch
    else:  # a weight-free recipe (random_net_style) loads no trunk at all
        assert loss.extractor is None
    assert loss.feature_layers == preset.feature_layers
    assert loss.style_layers == preset.style_layers
    assert loss.pixel_weight == preset.pixel_weight
    assert loss.tv_weight == preset.tv_weight
    assert loss.criterion == preset.criterion
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    terms = loss.terms(pred, torch.rand(1, 3, 32, 32))
    assert sorted(terms) == expected_keys(preset)
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_fastai_feature_loss() -> None:
    p = get_preset("fastai_feature_loss")
    assert p.arch == "vgg16_bn"
    assert p.feature_layers == {"relu3_3": 5.0, "relu4_3": 15.0, "relu5_3": 2.0}
    assert p.style_layers == pytest.approx({"relu3_3": 5**2 * 5e3, "relu4_3": 15**2 * 5e3, "relu5_3": 2**2 * 5e3})
    assert p.style_layers["relu4_3"] == pytest.approx(1.125e6)
    assert p.criterion == "l1"
    assert p.pixel_weight == 1.0
    # relu3_3 / relu4_3 / relu5_3 are the ReLUs right before pools 3, 4 and 5.
    for block in (3, 4, 5):
        relu, pool = get_layer("vgg16_bn", f"relu{block}_3"), get_layer("vgg16_bn", f"pool{block}")
        assert pool.index == relu.index + 1


def test_esrgan_uses_conv5_4_before_activation() -> None:
    p = get_preset("esrgan")
    assert (p.arch, p.feature_layers, p.criterion, p.pixel_weight) == ("vgg19", {"conv5_4": 1.0}, "l1", 1e-2)
    assert p.style_layers == {} and p.tv_weight == 0.0
    loss = perceptual_loss_from_preset("esrgan", weights=None)
    assert isinstance(loss.extractor.features[-1], nn.Conv2d)
    feats = loss.extractor(torch.rand(1, 3, 32, 32))["conv5_4"]
    assert feats.shape == (1, 512, 2, 2)
    assert (feats < 0).any()  # pre-activation features are not clipped at 0


def test_johnson2016_presets() -> None:
    style = get_preset("johnson2016_style")
    assert style.arch == "vgg16"
    assert style.feature_layers == {"relu2_2": 1.0}
    assert style.style_layers == {"relu1_2": 5.0, "relu2_2": 5.0, "relu3_3": 5.0, "relu4_3": 5.0}
    assert style.tv_weight == 1e-6
    superres = get_preset("johnson2016_superres")
    assert (superres.arch, superres.feature_layers, superres.style_layers) == ("vgg16", {"relu2_2": 1.0}, {})
    assert superres.pixel_weight == 0.0 and superres.tv_weight == 0.0


def test_gatys2016() -> None:
    p = get_preset("gatys2016")
    assert p.arch == "vgg19"
    assert p.feature_layers == {"conv4_2": 1.0}
    assert p.style_layers == pytest.approx({f"relu{b}_1": 200.0 for b in range(1, 6)})


def test_overrides_replace_preset_fields() -> None:
    loss = perceptual_loss_from_preset("johnson2016_superres", weights=None, tv_weight=1e-4, criterion="charbonnier")
    assert loss.tv_weight == 1e-4
    assert loss.criterion == "charbonnier"
    assert loss.feature_layers == {"relu2_2": 1.0}


def test_kwargs_are_copies() -> None:
    preset = get_preset("fastai_feature_loss")
    kwargs = preset.kwargs()
    kwargs["feature_layers"]["relu3_3"] = 999.0
    assert preset.feature_layers["relu3_3"] == 5.0
    assert set(kwargs) == {"arch", "feature_layers", "style_layers", "pixel_weight", "tv_weight", "criterion"}


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_cites_a_source(name: str) -> None:
    assert get_preset(name).source.strip()


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown preset 'esrgan2'.*'johnson2016_style'.*Did you mean 'esrgan'"):
        get_preset("esrgan2")
    with pytest.raises(InputError, match="unknown preset"):
        perceptual_loss_from_preset("johnson", weights=None)


def test_lpips_dists_and_contextual_presets() -> None:
    lpips = get_preset("lpips_vgg")
    assert (lpips.arch, lpips.lpips_weight, lpips.pixel_weight, lpips.criterion) == ("vgg16", 1.0, 2.0, "l1")
    assert lpips.feature_layers == {} and lpips.style_layers == {}
    dists = get_preset("dists")
    assert dists.kwargs() == {
        "arch": "vgg16", "feature_layers": {}, "style_layers": {}, "pixel_weight": 0.0, "tv_weight": 0.0,
        "criterion": "mse", "dists_weight": 1.0, "pooling": "l2",
    }
    cx = get_preset("contextual_superres")
    assert (cx.arch, cx.contextual_layers, cx.pixel_weight) == ("vgg19", {"relu3_4": 0.1}, 1.0)
    # The older presets' arguments are unchanged (no new keys).
    assert set(get_preset("johnson2016_style").kwargs()) == {
        "arch", "feature_layers", "style_layers", "pixel_weight", "tv_weight", "criterion"
    }
    # Strict by default: a random trunk is not LPIPS.
    from lossnet.errors import LpipsUnavailableError

    with pytest.raises(LpipsUnavailableError):
        perceptual_loss_from_preset("lpips_vgg", weights=None)


def test_lossnet_colorize_keeps_fastais_layers_and_states_the_shares_its_weights_give_on_hed(hed_weights) -> None:
    """Its weights are fastai's ratios rebalanced, and ``shares`` says what they give where the presets' shares are
    measured (HED's VGG16, a x4-blurred astronaut against the original at 128 px): each family about a third,
    where fastai's own weights leave the pixel and feature terms under 1% of the gradient."""
    import torch.nn.functional as F

    from lossnet.data.defaults import load_default_image

    p, fastai = get_preset("lossnet_colorize"), get_preset("fastai_feature_loss")
    assert (p.arch, p.criterion) == ("vgg16", "l1")
    ratios = {k: p.feature_layers[k] / w for k, w in fastai.feature_layers.items()}
    assert set(p.feature_layers) == set(fastai.feature_layers) and len(set(ratios.values())) == 1
    assert len({p.style_layers[k] / w for k, w in fastai.style_layers.items()}) == 1
    truth = load_default_image("astronaut", size=128)
    blurred = F.interpolate(F.interpolate(truth, scale_factor=0.25, mode="bicubic", antialias=True), scale_factor=4.0,
                            mode="bicubic").clamp(0, 1)

    def families(name: str) -> dict[str, float]:
        loss = perceptual_loss_from_preset(name, weights=hed_weights, arch="vgg16")
        out: dict[str, float] = {}
        for key, share in loss.shares(blurred, truth)["gradient"].items():
            out[key.split(".")[0]] = out.get(key.split(".")[0], 0.0) + share
        return out

    measured = families("lossnet_colorize")
    assert measured == pytest.approx(p.shares, abs=0.02), measured
    assert families("fastai_feature_loss")["style"] > 0.99
