"""The explore subcommands through lossnet.cli.main, on tiny images with a random VGG16."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from lossnet.data.io import save_image
from lossnet.runtime import resolve

FAST = ["--weights", "none", "--steps", "2", "--levels", "1"]


def test_stylize_writes_the_image_and_the_loss_curve(cli, image_files, tmp_path, capsys) -> None:
    content, style = image_files
    out = tmp_path / "out" / "styled.png"
    assert cli(["stylize", str(content), str(style), "--out", str(out), "--preserve-color", *FAST]) == 0
    assert Image.open(out).size == (40, 32)
    assert Image.open(tmp_path / "out" / "styled_loss.png").size == (640, 360)
    stdout = capsys.readouterr().out
    assert "mean_std.relu4_3" in stdout and "feature.relu2_2" in stdout  # the default style family
    assert "colour ratio" in stdout and "texture ratio" in stdout and "layout corr." in stdout


def test_stylize_prints_one_total_the_bar_and_the_curve_share(cli, image_files, tmp_path, capsys, monkeypatch) -> None:
    # Issue 20: the printed total (173.9) matched neither the progress bar nor the loss curve (~94).
    from lossnet.explore import commands

    seen = {}
    real = commands.run_stylize

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        run = real(*args, **kwargs)
        seen["run"] = run
        return run

    monkeypatch.setattr(commands, "run_stylize", spy)
    content, style = image_files
    argv = ["stylize", str(content), str(style), "--out", str(tmp_path / "s.png"), "--weights", "none"]
    assert cli([*argv, "--steps", "6", "--style-weight", "1000"]) == 0
    out = capsys.readouterr().out
    assert "the last of the 6 steps of the progress bar and of the loss curve" in out
    printed = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.startswith("total ")}
    history = seen["run"].result.optimization.history
    assert printed["total"] == pytest.approx(history[-1]["total"], rel=1e-5)  # what the bar and the curve end on


def test_invert_and_activations_write_labelled_sheets(cli, image_files, tmp_path, capsys) -> None:
    content, _ = image_files
    sheet = tmp_path / "inv.png"
    assert cli(["invert", str(content), "--layers", "relu1_2,relu3_3", "--out", str(sheet), *FAST]) == 0
    assert Image.open(sheet).size == (3 * 166 + 6, 24 + 2 * (32 + 32 + 6) + 6)  # 40 x 32 images, 2-line captions
    assert "style relu1_2..relu3_3" in capsys.readouterr().out
    maps = tmp_path / "act.png"
    assert (
        cli(
            [
                "activations",
                str(content),
                "--layers",
                "relu2_2",
                "--top-k",
                "2",
                "--out",
                str(maps),
                "--weights",
                "none",
            ]
        )
        == 0
    )
    assert Image.open(maps).size == (3 * 166 + 6, 24 + (32 + 18 + 6) + (32 + 32 + 6) + 6)  # image row, a layer row


def test_sweep_and_report(cli, image_files, tmp_path) -> None:
    content, style = image_files
    grid = tmp_path / "grid.png"
    assert cli(["sweep", str(content), str(style), "--ratios", "1,100", "--out", str(grid), *FAST]) == 0
    assert Image.open(grid).size[0] == 2 * 166 + 6
    page = tmp_path / "r.html"
    argv = [
        "report",
        str(content),
        str(style),
        "--ratios",
        "10",
        "--layers",
        "relu1_2,relu2_2",
        "--out",
        str(page),
        *FAST,
    ]
    assert cli(argv) == 0
    assert page.read_text().count("data:image/png;base64,") == 7


def test_large_inputs_are_shrunk_with_a_notice(cli, tmp_path, caplog) -> None:
    big = save_image(torch.rand(1, 3, 48, 96), tmp_path / "big.png")
    out = tmp_path / "a.png"
    assert (
        cli(
            ["activations", str(big), "--max-size", "64", "--layers", "relu1_2", "--out", str(out), "--weights", "none"]
        )
        == 0
    )
    # the library logs it (lossnet.explore, INFO); the command line shows lossnet's INFO records on stderr
    assert "big.png is 96x48; resized to 64x32 (--max-size 64)" in caplog.messages
    assert Image.open(out).size[0] == 5 * 166 + 6


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_precision_is_resolved_by_the_library_and_reported_once(cli, image_files, tmp_path, capsys, precision) -> None:
    content, _ = image_files
    out = tmp_path / "a.png"
    argv = ["activations", str(content), "--layers", "relu1_2", "--out", str(out), "--weights", "none"]
    assert cli([*argv, "--precision", precision]) == 0
    stdout = capsys.readouterr().out
    expected = resolve(precision, "auto").summary  # the device default is auto too
    assert stdout.count("precision ") == 1 and stdout.splitlines()[-1] == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["invert", "{missing}"], "no such image file"),
        (["invert", "{notimage}"], "cannot read"),
        (["invert", "{tiny}"], "tiny.png is (6, 6) pixels but layer 'relu4_3' of vgg16 needs at least 8x8"),
        (["invert", "{content}", "--layers", "relu2_3"], "no layer 'relu2_3'. Did you mean 'relu2_1', 'relu2_2'"),
        (["stylize", "{content}", "{style}", "--style-layers", "relu9_9"], "no layer 'relu9_9'"),
        (["stylize", "{content}", "{style}", "--steps", "0"], "steps must be an int >= 1"),
    ],
)
def test_bad_input_is_a_one_line_error_and_exit_2(cli, image_files, tmp_path, capsys, argv, message) -> None:
    content, style = image_files
    (tmp_path / "notimage.png").write_text("not an image")
    tiny = save_image(torch.rand(1, 3, 6, 6), tmp_path / "tiny.png")
    paths = {
        "missing": tmp_path / "nope.png",
        "notimage": tmp_path / "notimage.png",
        "tiny": tiny,
        "content": content,
        "style": style,
    }
    argv = [a.format(**paths) for a in argv] + ["--weights", "none"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
