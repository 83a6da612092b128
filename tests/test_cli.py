"""The command line, called in-process through main(argv)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

import lossnet
from lossnet.cli import main
from lossnet.data.io import save_image
from lossnet.runtime import CpuProbe


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


def test_compare_prints_the_breakdown_and_matches_the_library(images, capsys) -> None:
    pred, target = images
    argv = ["compare", str(pred), str(target), "--weights", "none", "--arch", "vgg11"]
    argv += ["--feature-layers", "relu1_1=1,relu2_1=0.5", "--pixel-weight", "2"]
    torch.manual_seed(1)
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if not line.startswith(("-", "term "))]
    values = {row[0]: float(row[1]) for row in rows}
    shares = {row[0]: float(row[2].rstrip("%")) / 100 for row in rows}
    assert set(values) == {"pixel", "feature.relu1_1", "feature.relu2_1", "total"}
    assert shares["total"] == 1.0
    assert sum(v for k, v in shares.items() if k != "total") == pytest.approx(1.0, abs=2e-3)
    for name in ("pixel", "feature.relu1_1", "feature.relu2_1"):
        assert shares[name] == pytest.approx(values[name] / values["total"], abs=6e-4)  # printed to 0.1%

    torch.manual_seed(1)  # the same random network, in the precision compare's default (auto) picks
    loss = lossnet.PerceptualLoss(
        "vgg11", None, feature_layers={"relu1_1": 1, "relu2_1": 0.5}, pixel_weight=2, compute_dtype="auto"
    )
    terms = loss.terms(lossnet.data.load_image(pred), lossnet.data.load_image(target))
    for name, value in terms.items():
        assert values[name] == pytest.approx(float(value), rel=1e-5)


def test_compare_with_a_style_image_prints_the_style_measures(images, capsys) -> None:
    from lossnet.metrics.style import style_measures

    def measures(argv: list[str]) -> dict[str, float]:
        assert main(["compare", *argv, "--weights", "none", "--arch", "vgg11", "--feature-layers", "relu1_1"]) == 0
        rows = [line.split() for line in capsys.readouterr().out.splitlines()]
        return {f"{r[0]} {r[1]}": float(r[2]) for r in rows if r[:2] in (["colour", "ratio"], ["texture", "ratio"],
                                                                           ["layout", "corr."])}  # fmt: skip

    pred, target = images
    # The content itself is no closer to the style than the content; the style itself is the style.
    assert measures([str(target), str(target), "--style", str(pred)]) == {
        "colour ratio": 1.0, "texture ratio": 1.0, "layout corr.": 1.0
    }  # fmt: skip
    expected = style_measures(*(lossnet.data.load_image(p) for p in (pred, target, pred)))
    got = measures([str(pred), str(target), "--style", str(pred)])
    assert got == {"colour ratio": 0.0, "texture ratio": 0.0, "layout corr.": round(expected.layout, 3)}


def test_compare_with_a_preset_uses_its_terms(images, capsys) -> None:
    pred, target = images
    assert main(["compare", str(pred), str(target), "--preset", "johnson2016_style", "--weights", "none"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines() if not line.startswith(("-", "term "))]
    assert names == [
        "feature.relu2_2",
        "style.relu1_2",
        "style.relu2_2",
        "style.relu3_3",
        "style.relu4_3",
        "tv",
        "total",
    ]


def test_compare_scores_another_size_at_the_reference_size(images, tmp_path, capsys) -> None:
    """The image to score is resized to the reference's size (the aspect ratio too), with a note."""
    pred, target = images
    wide = save_image(torch.rand(1, 3, 24, 48), tmp_path / "wide.png")
    assert main(["compare", str(wide), str(target), "--weights", "none", "--arch", "vgg11", "--pixel-weight", "1", "--feature-layers", "relu2_1"]) == 0
    out, err = capsys.readouterr()
    assert "wide.png is 48x24: resized to the reference's 32x32 (its aspect ratio changes)" in err
    scores = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if not line.startswith(("-", "term "))}
    resized = torch.nn.functional.interpolate(
        lossnet.data.load_image(wide), size=(32, 32), mode="bicubic", antialias=True
    ).clamp(0, 1)
    expected = torch.mean((resized - lossnet.data.load_image(target)) ** 2)
    assert scores["pixel"] == pytest.approx(float(expected), rel=1e-5)
    # --size resizes the reference; the scored image follows it exactly, without a note when the ratio fits
    big = save_image(torch.rand(1, 3, 64, 64), tmp_path / "big.png")
    assert main(["compare", str(big), str(target), "--weights", "none", "--arch", "vgg11", "--size", "24", "--feature-layers", "relu2_1"]) == 0
    assert "resized" not in capsys.readouterr().err


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "lossnet", "layers", "vgg11"], capture_output=True, text=True)
    assert done.returncode == 0 and "relu5_2" in done.stdout


def test_an_emulated_precision_is_one_logged_line_not_a_python_warning(images, stub_cpu, caplog) -> None:
    """``--precision bf16`` where it is emulated runs, with one note from the runtime's rule (a log
    record: ``lossnet: --precision bf16: ...`` on the terminal), never a warnings.warn line with a
    file path and source line (warnings are errors here)."""
    stub_cpu(CpuProbe("Core i5", "x86_64", "AVX2", False, frozenset({"avx2", "fma"})))
    pred, target = images
    argv = ["compare", str(pred), str(target), "--weights", "none", "--arch", "vgg11", "--feature-layers", "relu1_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main([*argv, "--precision", "bf16"]) == 0
    notes = [r for r in caplog.records if "--precision" in r.getMessage()]
    assert [(r.name, r.levelname) for r in notes] == [("lossnet", "WARNING")]
    assert notes[0].getMessage().startswith("--precision bf16: this CPU has no native bf16: AVX2")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("or weights=None for a random network", "or --weights none for a random network"),
        ("use weights='hed' (offline)", "use --weights hed (offline)"),
        ("Use tile >= 64, a smaller overlap, or tile=None", "Use --tile 64 or more, a smaller overlap, or --tile 0"),
        ("check arch= or the layout", "check --arch or the layout"),
        ("quality must be an int in 1-100; got 0", "--quality must be an int in 1-100; got 0"),
        ("x; max_size must be > 0", "x; --max-size must be > 0"),
        ("Valid names: lossnet.layer_names('vgg19').", "Valid names: `lossnet layers vgg19`."),
        # names that are not the command's flags, and flags already written as flags, are left alone
        ("pass strict=False or data_range=255", "pass strict=False or data_range=255"),
        ("use --weights=hed", "use --weights=hed"),
    ],
)
def test_errors_are_worded_in_the_commands_flags(message: str, expected: str) -> None:
    from lossnet.cli.common import cli_wording

    flags = {"--weights", "--tile", "--overlap", "--arch", "--quality", "--max-size"}
    assert cli_wording(message, flags) == expected


def test_compare_with_the_calibrated_terms(images, capsys) -> None:
    """LPIPS and DISTS in compare: refused on a random trunk unless allowed, then named *_like."""
    pred, target = images
    assert main(["compare", str(pred), str(target), "--preset", "lpips_vgg", "--weights", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lossnet: error: LPIPS is only the published metric") and "--allow-uncalibrated" in err
    argv = ["compare", str(pred), str(target), "--weights", "none", "--allow-uncalibrated", "--pooling", "l2"]
    assert main(argv + ["--lpips-weight", "1", "--dists-weight", "0.5", "--feature-layers", "relu2_2"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if not line.startswith(("-", "term "))]
    assert names == ["feature.relu2_2", "lpips_like", "dists_like", "total"]
    assert main(["compare", str(pred), str(target), "--weights", "none", "--allow-uncalibrated", "--dists-weight", "1"]) == 2
    assert "--pooling l2" in capsys.readouterr().err
