"""The command line, called in-process through main(argv)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import lossnet
from lossnet.cli import main
from lossnet.data.io import save_image


@pytest.fixture
def images(tmp_path):
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    pred = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    return save_image(pred, tmp_path / "pred.png"), save_image(target, tmp_path / "target.png")


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert lossnet.__version__ in capsys.readouterr().out


def test_layers_lists_every_name(capsys) -> None:
    assert main(["layers", "vgg19"]) == 0
    out = capsys.readouterr().out
    for name in lossnet.layer_names("vgg19"):
        assert f"\n{name} " in out


def test_unknown_arch_is_a_one_line_error_without_traceback(capsys) -> None:
    assert main(["layers", "vgg17"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lossnet: error: unknown architecture 'vgg17'")
    assert "Traceback" not in err and "Did you mean" in err


def test_compare_prints_the_breakdown_and_matches_the_library(images, capsys) -> None:
    pred, target = images
    argv = ["compare", str(pred), str(target), "--weights", "none", "--arch", "vgg11"]
    argv += ["--feature-layers", "relu1_1=1,relu2_1=0.5", "--pixel-weight", "2"]
    torch.manual_seed(1)
    assert main(argv) == 0
    out = capsys.readouterr().out
    values = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if not line.startswith("-")}
    assert set(values) == {"pixel", "feature.relu1_1", "feature.relu2_1", "total"}

    torch.manual_seed(1)  # the same random network, in the precision compare's default (auto) picks
    loss = lossnet.PerceptualLoss(
        "vgg11", None, feature_layers={"relu1_1": 1, "relu2_1": 0.5}, pixel_weight=2, compute_dtype="auto"
    )
    terms = loss.terms(lossnet.data.load_image(pred), lossnet.data.load_image(target))
    for name, value in terms.items():
        assert values[name] == pytest.approx(float(value), rel=1e-5)


def test_compare_with_a_preset_uses_its_terms(images, capsys) -> None:
    pred, target = images
    assert main(["compare", str(pred), str(target), "--preset", "johnson2016_style", "--weights", "none"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if not line.startswith("-")]
    assert names == [
        "feature.relu2_2",
        "style.relu1_2",
        "style.relu2_2",
        "style.relu3_3",
        "style.relu4_3",
        "tv",
        "total",
    ]


def test_compare_errors_are_clear(images, tmp_path, capsys) -> None:
    pred, target = images
    assert main(["compare", str(pred), str(tmp_path / "nope.png"), "--weights", "none"]) == 2
    assert "no such image file" in capsys.readouterr().err
    small = save_image(torch.rand(1, 3, 16, 16), tmp_path / "small.png")
    assert main(["compare", str(pred), str(small), "--weights", "none"]) == 2
    assert "differ in size" in capsys.readouterr().err
    assert main(["compare", str(pred), str(target), "--feature-layers", "relu9_9", "--weights", "none"]) == 2
    assert "has no layer 'relu9_9'" in capsys.readouterr().err


def test_imagenet_offline_error_names_alternatives(images, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    pred, target = images
    assert main(["compare", str(pred), str(target)]) == 2  # default weights: imagenet
    err = capsys.readouterr().err
    assert "ImageNet weights" in err and "weights='hed'" in err and "weights=None" in err


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "lossnet", "layers", "vgg11"], capture_output=True, text=True)
    assert done.returncode == 0 and "relu5_2" in done.stdout
