"""The calibration files of LPIPS and DISTS, found in the installed wheels without importing them."""

import hashlib
import importlib.metadata
import sys

import pytest
import torch

from lossnet.backbones import calibration
from lossnet.backbones.calibration import LPIPS_CHANNELS, dists_weights, lpips_heads
from lossnet.errors import WeightsError, WeightsUnavailableError

# sha256 prefixes of the files in the pinned wheels (lpips 0.1.4, DISTS_pytorch 0.1): the tests read the real files.
SHA256 = {"vgg": "a78928a0af1e5f0f", "alex": "df73285e35b22355", "squeeze": "4a5350f23600cb79"}


@pytest.mark.parametrize("net", sorted(LPIPS_CHANNELS))
def test_lpips_heads_are_the_published_files(net):
    path = calibration.lpips_heads_path(net)
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == SHA256[net]
    heads = lpips_heads(net)
    assert [h.numel() for h in heads] == list(LPIPS_CHANNELS[net])
    raw = torch.load(path, map_location="cpu", weights_only=True)
    for i, h in enumerate(heads):
        assert torch.equal(h, raw[f"lin{i}.model.1.weight"].flatten())
        assert h.dtype == torch.float32 and bool((h >= 0).all())


def test_found_without_importing_the_packages():
    sys.modules.pop("lpips", None)
    lpips_heads("alex")
    dists_weights()
    assert "lpips" not in sys.modules and "DISTS_pytorch" not in sys.modules


def test_dists_weights():
    alpha, beta = dists_weights()
    path = calibration.dists_weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == "f5e65c96230b7f6c"
    assert alpha.shape == beta.shape == (sum(calibration.DISTS_CHANNELS),) == (1475,)
    assert bool((alpha >= 0).all()) and bool((beta >= 0).all())
    # The published file is already normalised jointly (DISTS divides by this sum, so it must not be 0).
    assert float(alpha.sum() + beta.sum()) == pytest.approx(1.0, abs=1e-5)


def test_a_path_is_accepted_and_checked(tmp_path):
    good = tmp_path / "vgg.pth"
    good.write_bytes(calibration.lpips_heads_path("vgg").read_bytes())
    assert all(torch.equal(a, b) for a, b in zip(lpips_heads("vgg", good), lpips_heads("vgg"), strict=True))
    with pytest.raises(WeightsError, match=r"not the LPIPS-alex calibration: expected lin1.model.1.weight of shape \(1, 192"):
        lpips_heads("alex", good)  # VGG heads given for AlexNet
    with pytest.raises(WeightsError, match="not a DISTS weights file"):
        dists_weights(good)
    with pytest.raises(WeightsUnavailableError, match="not found"):
        lpips_heads("vgg", tmp_path / "missing.pth")


def test_negative_head_refused(tmp_path):
    state = torch.load(calibration.lpips_heads_path("vgg"), map_location="cpu", weights_only=True)
    state["lin2.model.1.weight"][0, 5] = -1.0
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="lin2.model.1.weight must be finite and non-negative"):
        lpips_heads("vgg", tmp_path / "bad.pth")


class _Boom:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_file_that_would_run_code_is_refused(tmp_path, capsys):
    torch.save({"lin0.model.1.weight": _Boom()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="weights_only"):
        lpips_heads("vgg", tmp_path / "evil.pth")
    assert "pwned" not in capsys.readouterr().out


def test_package_missing_says_how_to_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(WeightsUnavailableError, match=r"pip install --no-deps lpips==0\.1\.4"):
        lpips_heads("squeeze")
    # DISTS_pytorch needs only torch: the offline extra installs it with pip's usual dependency handling.
    extra = r"pip install 'DISTS_pytorch==0\.1' \(pip install 'lossnet\[offline\]' installs it\)"
    with pytest.raises(WeightsUnavailableError, match=extra):
        dists_weights()


def test_bad_names():
    with pytest.raises(Exception, match="net"):
        lpips_heads("resnet")
    with pytest.raises(Exception, match="version"):
        calibration.lpips_heads_path("vgg", "0.2")


@pytest.mark.parametrize("version", ["0.0", "0.1"])
def test_the_release_of_the_heads_is_recognised_and_says_its_input(tmp_path, version):
    from lossnet.backbones.calibration import LPIPS_LAYERS, lpips_calibration

    by_wheel = lpips_calibration("alexnet", version=version)
    copy = tmp_path / "alex.pth"
    copy.write_bytes(calibration.lpips_heads_path("alex", version).read_bytes())
    by_path = lpips_calibration("alexnet", copy)
    in_memory = lpips_calibration("alexnet", dict(zip(LPIPS_LAYERS["alexnet"], lpips_heads("alex", version=version))))
    for cal in (by_wheel, by_path, in_memory):
        assert cal.version == version
        # Only v0.1 is the published LPIPS on the ImageNet-normalised input every lossnet trunk gets.
        assert cal.published is (version == "0.1")
        assert cal.trunk_input.name == {"0.0": "lpips-v0.0", "0.1": "torch"}[version]
    own = lpips_calibration("alexnet", {k: v + 0.01 for k, v in in_memory.heads.items()})
    assert own.version is None and not own.published and own.trunk_input.name == "torch"


def test_v0_0_trunk_input_is_the_unscaled_2x_minus_1():
    from lossnet.backbones.calibration import LPIPS_TRUNK_INPUT
    from lossnet.backbones.preprocessing import Preprocess

    x = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(Preprocess(LPIPS_TRUNK_INPUT["0.0"])(x), 2 * x - 1)
    torch.testing.assert_close(Preprocess(LPIPS_TRUNK_INPUT["0.0"], (-1, 1))(2 * x - 1), 2 * x - 1)
    # v0.1's ScalingLayer of 2x - 1 is the ImageNet normalisation of x.
    shift, scale = torch.tensor([-0.030, -0.088, -0.188]), torch.tensor([0.458, 0.448, 0.450])
    v01 = (2 * x - 1 - shift.view(1, 3, 1, 1)) / scale.view(1, 3, 1, 1)
    torch.testing.assert_close(Preprocess(LPIPS_TRUNK_INPUT["0.1"])(x), v01)
