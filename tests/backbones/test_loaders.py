"""Weight files: torchvision .pth/.safetensors, refused pickles, Keras 2 and Keras 3 .h5."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import lossnet
import lossnet.backbones.vgg
from lossnet import FeatureExtractor
from lossnet.backbones.loaders import load_into, read_h5
from lossnet.backbones.vgg import VGG
from lossnet.backbones.weights import load_weights
from tests.backbones.reference import (
    ALL_ARCHS,
    activations,
    normalise,
    randomised_features,
    relu_names,
    torchvision_state_dict,
)

# torchvision's vgg16 conv positions in ``features`` (conv1_1 ... conv5_3).
VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG16_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
VGG19_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


def assert_activations_equal(out: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    assert out.shape == ref.shape, what
    scale = max(1.0, float(ref.abs().max()))
    err = float((out - ref).abs().max())
    assert err <= 1e-6 * scale, f"{what}: max abs difference {err:.3g} (activation scale {scale:.3g})"


# --------------------------------------------------------------------------------------------
# torchvision layout, every architecture, .pth and .safetensors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_torchvision_layout_loads_for_every_arch(arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every weight is overwritten by the file: skip VGG's own (slow) initialisation to keep this test fast.
    monkeypatch.setattr(lossnet.backbones.vgg, "init_weights", lambda net: None)
    reference = randomised_features(arch, seed=ALL_ARCHS.index(arch))
    relus = relu_names(arch)  # {name: index}, counted independently of lossnet
    x = torch.rand(1, 3, 32, 32)

    pth = tmp_path / f"{arch}.pth"
    torch.save(torchvision_state_dict(reference), pth)
    # safetensors needs contiguous data: the 100M-element classifier as uint8 keeps the file small;
    # the bn file leaves out num_batches_tracked, as old torchvision files do.
    sd = torchvision_state_dict(reference, dtype=torch.uint8, expanded=False)
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    st = tmp_path / f"{arch}.safetensors"
    save_file(sd, str(st))

    for path in (pth, st):
        fx = FeatureExtractor(arch, list(relus), weights=path, input_range=(0, 1))
        assert fx.preprocess.preprocessing.name == "torch"
        assert fx.weights_id.startswith(f"file:{path.name}:")
        # torch preprocessing is ImageNet normalisation (checked against an independent formula) ...
        prepared = fx.preprocess(x)
        torch.testing.assert_close(prepared, normalise(x), rtol=0, atol=1e-6)
        # ... and the network computes what the reference computes on that input, layer by layer
        # (in the extractor's CPU layout, channels-last, so that the sums run in the same order)
        ref_outs = activations(reference, prepared.contiguous(memory_format=torch.channels_last))
        outs = fx(x)
        assert list(outs) == list(relus)
        for name, index in relus.items():
            assert_activations_equal(outs[name], ref_outs[index], f"{arch} {path.suffix} {name}")
        # the parameters themselves are the file's, batch-norm statistics included
        loaded = fx.features.state_dict()
        for key, value in reference.state_dict().items():
            if key.endswith("num_batches_tracked") and path is st:
                continue
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=f"{arch} {path.suffix} {key}")


@pytest.fixture(scope="module")
def vgg11_sd() -> dict[str, torch.Tensor]:
    return torchvision_state_dict(randomised_features("vgg11"))


def _save(sd: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(sd, path)
    return path


def test_missing_key_is_named(vgg11_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    sd = dict(vgg11_sd)
    del sd["features.3.weight"]
    with pytest.raises(lossnet.WeightsError, match=r"features\.3\.weight"):
        FeatureExtractor("vgg11", ["relu1_1"], weights=_save(sd, tmp_path / "m.pth"))


def test_unexpected_key_is_named(vgg11_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    for extra in ("features.21.weight", "head.fc.weight"):
        sd = {**vgg11_sd, extra: torch.zeros(3)}
        with pytest.raises(lossnet.WeightsError) as exc:
            FeatureExtractor("vgg11", ["relu1_1"], weights=_save(sd, tmp_path / "u.pth"))
        assert extra in str(exc.value)


@pytest.mark.parametrize(
    ("key", "shape"), [("features.8.weight", (256, 128, 3, 1)), ("classifier.6.weight", (10, 4096))]
)
def test_wrong_shape_is_named(
    vgg11_sd: dict[str, torch.Tensor], tmp_path: Path, key: str, shape: tuple[int, ...]
) -> None:
    sd = {**vgg11_sd, key: torch.zeros(shape)}
    with pytest.raises(lossnet.WeightsError) as exc:
        FeatureExtractor("vgg11", ["relu1_1"], weights=_save(sd, tmp_path / "s.pth"))
    assert key in str(exc.value) and str(shape) in str(exc.value)


def test_other_arch_checkpoint_is_refused(vgg11_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    with pytest.raises(lossnet.WeightsError, match="vgg13"):
        FeatureExtractor("vgg13", ["relu1_1"], weights=_save(vgg11_sd, tmp_path / "a.pth"))


def test_bn_state_dict_without_num_batches_tracked_loads() -> None:
    reference = randomised_features("vgg11_bn", seed=3)
    sd = {f"features.{k}": v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert not any("num_batches_tracked" in k for k in sd)
    net = VGG("vgg11_bn")
    load_into(net, sd, "test")
    for key, value in sd.items():
        assert torch.equal(net.state_dict()[key], value), key
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.eval().features(normalise(x)), reference(normalise(x)))


def test_bare_features_state_dict_and_wrappers_load(tmp_path: Path) -> None:
    reference = randomised_features("vgg11", seed=5)
    bare = {k: v.clone() for k, v in reference.state_dict().items()}  # "0.weight", ...
    for obj in (bare, {"state_dict": torchvision_state_dict(reference), "epoch": 3}):
        path = tmp_path / "w.pt"
        torch.save(obj, path)
        sd = load_weights("vgg11", path).state_dict
        assert sd is not None
        assert torch.equal(sd["features.0.weight"], reference[0].weight)


# --------------------------------------------------------------------------------------------
# malicious pickles
# --------------------------------------------------------------------------------------------


class _ShellPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


class _OpenPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
@pytest.mark.parametrize("payload", [_ShellPayload, _OpenPayload])
def test_malicious_pickle_is_refused(tmp_path: Path, writer: str, payload: type) -> None:
    marker = tmp_path / "pwned"
    obj = {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": payload(marker)}
    path = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save(obj, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f)
    # the payload really runs under a plain unpickler (proving the test file is armed) ...
    armed = tmp_path / "armed"
    with open(tmp_path / "armed.pkl", "wb") as f:
        pickle.dump(payload(armed), f)
    with open(tmp_path / "armed.pkl", "rb") as f:
        result = pickle.load(f)
    if hasattr(result, "close"):
        result.close()
    assert armed.exists()
    # ... but lossnet refuses it
    with pytest.raises(lossnet.WeightsError) as exc:
        load_weights("vgg11", path)
    msg = str(exc.value)
    assert "refused" in msg and "run code" in msg
    assert not marker.exists()


def test_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(lossnet.WeightsError, match="state dict"):
        load_weights("vgg11", path)


# --------------------------------------------------------------------------------------------
# Keras .h5 files
# --------------------------------------------------------------------------------------------


def _kernels(channels: list[int], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out, c_in = [], 3
    for i, c_out in enumerate(channels):
        kernel = rng.standard_normal((3, 3, c_in, c_out), dtype=np.float32) * 0.05 + i  # layer i's values ~ i
        bias = rng.standard_normal(c_out, dtype=np.float32) * 0.1 + i
        out.append((kernel, bias))
        c_in = c_out
    return out


def write_keras2(path: Path, kernels: list[tuple[np.ndarray, np.ndarray]], blocks: list[int]) -> None:
    """Keras 2 ``*_notop.h5`` layout: ``layer_names`` root attribute, ``weight_names`` per group."""
    names = ["input_1"]
    convs = []
    for b, n in enumerate(blocks, start=1):
        for k in range(1, n + 1):
            names.append(f"block{b}_conv{k}")
            convs.append(f"block{b}_conv{k}")
        names.append(f"block{b}_pool")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for name in names:
            group = f.create_group(name)
            if name in convs:
                kernel, bias = kernels[convs.index(name)]
                group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
                group.create_dataset(f"{name}/kernel:0", data=kernel)
                group.create_dataset(f"{name}/bias:0", data=bias)
            else:
                group.attrs["weight_names"] = np.array([], dtype="S1")


def write_keras3(path: Path, kernels: list[tuple[np.ndarray, np.ndarray]], n_pools: int = 5) -> None:
    """Keras 3 ``*.weights.h5`` layout: ``layers/conv2d_N/vars/{0,1}``, created in scrambled order."""
    order = np.random.default_rng(0).permutation(len(kernels))
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        f.create_group("layers/input_layer/vars")
        for p in range(n_pools):
            f.create_group(f"layers/max_pooling2d{'' if p == 0 else f'_{p}'}")  # no vars at all
        f.create_group("layers/max_pooling2d_9/vars")  # empty vars
        for i in order:
            name = "conv2d" if i == 0 else f"conv2d_{i}"
            kernel, bias = kernels[i]
            f.create_dataset(f"layers/{name}/vars/0", data=kernel)
            f.create_dataset(f"layers/{name}/vars/1", data=bias)


def _conv_reference(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """'same' 3x3 cross-correlation written with an explicit HWIO kernel: out[o, y, x]."""
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((kernel.shape[3], h, w), dtype=np.float64)
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("chw,co->ohw", xp[:, dy : dy + h, dx : dx + w], kernel[dy, dx].astype(np.float64))
    return out + bias[:, None, None]


def test_keras2_h5_loads_for_vgg16(tmp_path: Path) -> None:
    kernels = _kernels(VGG16_CHANNELS, seed=1)
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras2(path, kernels, blocks=[2, 2, 3, 3, 3])

    loaded = load_weights("vgg16", path)
    assert loaded.preprocessing.name == "caffe" and loaded.preprocessing.bgr
    sd = loaded.state_dict
    assert sd is not None and len(sd) == 26
    # an asymmetric element: kernel[h, w, c, o] must land at weight[o, c, h, w]
    h, w, c, o = 0, 2, 1, 5
    assert sd["features.0.weight"][o, c, h, w].item() == kernels[0][0][h, w, c, o]
    assert sd["features.0.weight"][o, c, w, h].item() != kernels[0][0][h, w, c, o]
    h, w, c, o = 2, 1, 37, 300
    assert sd["features.26.weight"][o, c, h, w].item() == kernels[11][0][h, w, c, o]
    for i, index in enumerate(VGG16_CONVS):
        assert sd[f"features.{index}.weight"].shape == (VGG16_CHANNELS[i], ([3] + VGG16_CHANNELS)[i], 3, 3)
        np.testing.assert_array_equal(sd[f"features.{index}.bias"].numpy(), kernels[i][1])

    # end to end: conv1_1 of a (0, 255) image, caffe preprocessing (BGR, minus the Keras mean)
    fx = FeatureExtractor("vgg16", ["conv1_1"], weights=path, input_range=(0, 255))
    img = torch.rand(1, 3, 6, 5, dtype=torch.float64) * 255
    bgr = img[0].numpy()[::-1] - np.array([103.939, 116.779, 123.68])[:, None, None]
    expected = _conv_reference(bgr, kernels[0][0], kernels[0][1])
    out = fx(img.float())["conv1_1"][0].double().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)


def test_keras3_h5_orders_convs_numerically(tmp_path: Path) -> None:
    kernels = _kernels(VGG16_CHANNELS, seed=2)
    path = tmp_path / "vgg16.weights.h5"
    write_keras3(path, kernels)
    with h5py.File(path, "r") as f:  # HDF5 lists names as text: conv2d_10 before conv2d_2
        names = list(f["layers"])
    assert names.index("conv2d_10") < names.index("conv2d_2")

    sd = load_weights("vgg16", path).state_dict
    assert sd is not None
    for i, index in enumerate(VGG16_CONVS):
        np.testing.assert_array_equal(sd[f"features.{index}.bias"].numpy(), kernels[i][1])
    # conv2d_10 is the 11th convolution, conv5_1 at features.24; conv2d_12 is conv5_3 at features.28
    h, w, c, o = 1, 0, 400, 7
    assert sd["features.24.weight"][o, c, h, w].item() == kernels[10][0][h, w, c, o]
    assert sd["features.26.weight"][o, c, h, w].item() == kernels[11][0][h, w, c, o]
    assert sd["features.28.weight"][o, c, h, w].item() == kernels[12][0][h, w, c, o]
    assert sd["features.2.weight"][3, 4, 0, 2].item() == kernels[1][0][0, 2, 4, 3]
    # and the whole file fits the architecture
    fx = FeatureExtractor("vgg16", ["relu5_3"], weights=path)
    assert fx.preprocess.preprocessing.name == "caffe"
    assert torch.equal(fx.features[26].weight, sd["features.26.weight"])


@pytest.mark.parametrize("layout", ["keras2", "keras3"])
def test_wrong_conv_count_suggests_arch(tmp_path: Path, layout: str) -> None:
    # 16 tiny 3x3 kernels: a VGG19 file (only the count matters for the check)
    kernels = [(np.zeros((3, 3, 1, 1), np.float32), np.zeros(1, np.float32)) for _ in range(16)]
    path = tmp_path / f"vgg19_{layout}.h5"
    if layout == "keras2":
        write_keras2(path, kernels, blocks=[2, 2, 4, 4, 4])
    else:
        write_keras3(path, kernels)
    with pytest.raises(lossnet.WeightsError) as exc:
        load_weights("vgg16", path)
    msg = str(exc.value)
    assert "16" in msg and "13" in msg
    assert "arch='vgg19'" in msg


def test_keras_file_refused_for_bn_arch(tmp_path: Path) -> None:
    kernels = [(np.zeros((3, 3, 1, 1), np.float32), np.zeros(1, np.float32)) for _ in range(8)]
    path = tmp_path / "vgg11.h5"
    write_keras3(path, kernels)
    with pytest.raises(lossnet.WeightsError, match="arch='vgg11'"):
        read_h5(path, "vgg11_bn")


def test_keras_vgg19_file_loads_as_vgg19(tmp_path: Path) -> None:
    kernels = _kernels(VGG19_CHANNELS, seed=4)
    path = tmp_path / "vgg19.weights.h5"
    write_keras3(path, kernels)
    sd = read_h5(path, "vgg19")
    # conv5_4 is the 16th convolution (conv2d_15) at features.34
    assert sd["features.34.weight"][9, 300, 2, 0].item() == kernels[15][0][2, 0, 300, 9]
    x = torch.rand(1, 3, 8, 8)
    fx = FeatureExtractor("vgg19", ["conv1_1"], weights=path)
    out = fx(x)["conv1_1"]
    xc = Preprocess_caffe(x)
    ref = F.conv2d(xc, torch.from_numpy(kernels[0][0]).permute(3, 2, 0, 1), torch.from_numpy(kernels[0][1]), padding=1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-3)


def Preprocess_caffe(x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - reads as the thing it mirrors
    mean = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    return x.flip(1) * 255 - mean


def test_unreadable_h5_raises(tmp_path: Path) -> None:
    path = tmp_path / "junk.h5"
    path.write_bytes(b"not an hdf5 file" * 10)
    with pytest.raises(lossnet.WeightsError):
        load_weights("vgg16", path)
