"""The explore commands as library calls: files in, files out, the progress they announce, their setup."""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image

from lossnet.data.io import save_image
from lossnet.errors import InputError
from lossnet.explore import (
    InvertConfig,
    OptimizeConfig,
    ReportConfig,
    Setup,
    StylizeConfig,
    run_activations,
    run_invert,
    run_report,
    run_stylize,
    run_sweep,
)
from lossnet.explore.commands import sweep_steps

RANDOM = Setup(weights=None, device="cpu", precision="fp32")
STEPS = OptimizeConfig(steps=2)


def _tiny_stylize() -> StylizeConfig:
    return StylizeConfig(arch="vgg11", content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0}, optimize=STEPS)


class Recorder:
    """Collects every ``progress(done, total, terms)`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int, terms: dict[str, float]) -> None:
        assert "total" in terms
        self.calls.append((done, total))

    def check(self, expected_total: int) -> None:
        """One call per step, counting 1..total, every one announcing the same total."""
        assert self.calls == [(k, expected_total) for k in range(1, expected_total + 1)]


def test_invert_reports_every_step_of_every_reconstruction_and_writes_the_sheet(image_files, tmp_path, capsys):
    content, _ = image_files
    config = InvertConfig(arch="vgg11", layers=("relu1_1", "relu2_1"), optimize=STEPS)
    progress = Recorder()
    run = run_invert(content, tmp_path / "sheet.png", config, RANDOM, progress)
    assert config.optimisations == 4 and config.total_steps == 8  # 2 feature + 2 Gram reconstructions, 2 steps each
    progress.check(8)
    assert run.steps == 8 and run.weights == "random" and run.runtime.precision == "fp32"
    assert run.written == [tmp_path / "sheet.png"] and Image.open(run.written[0]).size[0] == 3 * 166 + 6
    assert [r.label for r in run.result.feature] == ["feature relu1_1", "feature relu2_1"]
    assert capsys.readouterr().out == ""  # the library never prints


def test_stylize_writes_the_image_and_its_curve_beside_it(image_files, tmp_path):
    content, style = image_files
    progress = Recorder()
    run = run_stylize(content, style, tmp_path / "a" / "out.png", _tiny_stylize(), RANDOM, progress=progress)
    progress.check(2)
    assert run.written == [tmp_path / "a" / "out.png", tmp_path / "a" / "out_loss.png"]
    assert Image.open(run.written[0]).size == (40, 32)  # the content's size
    assert [i.path for i in run.inputs] == [content, style]


def test_sweep_announces_rows_times_ratios_optimisations(image_files, tmp_path):
    content, style = image_files
    config, sets, ratios = _tiny_stylize(), [["relu1_1"], ["relu1_1", "relu2_1"]], (1.0, 10.0)
    progress = Recorder()
    run = run_sweep(content, style, tmp_path / "grid.png", config, ratios, sets, setup=RANDOM, progress=progress)
    assert sweep_steps(config, ratios, sets) == 2 * 2 * 2
    progress.check(8)
    assert [len(row) for row in run.result.rows] == [2, 2] and run.written[0].is_file()


@pytest.mark.parametrize("with_style", [False, True])
def test_report_announces_what_it_runs(image_files, tmp_path, with_style):
    content, style = image_files
    config = ReportConfig(
        invert=InvertConfig(arch="vgg11", layers=("relu1_1",), optimize=STEPS),
        stylize=_tiny_stylize(),
        ratios=(10.0,),
        top_k=1,
    )
    progress = Recorder()
    run = run_report(content, style if with_style else None, tmp_path / "r.html", config, RANDOM, progress=progress)
    # inversions: relu1_1 from its features and from its Gram matrix; with a style image, one stylisation
    # and one sweep cell
    expected = 2 * 2 + (2 * 2 if with_style else 0)
    assert config.total_steps(with_style) == expected
    progress.check(expected)
    assert run.weights == "random" and run.written == [tmp_path / "r.html"]
    assert ("stylized" in run.result.images) == with_style


def test_report_names_the_file_that_is_too_small(image_files, tmp_path):
    tiny = save_image(torch.rand(1, 3, 6, 6), tmp_path / "tiny.png")
    with pytest.raises(InputError, match=r"tiny.png is \(6, 6\) pixels but layer 'relu4_3'"):
        run_report(tiny, None, tmp_path / "r.html", setup=RANDOM)
    assert not (tmp_path / "r.html").exists()


def test_activations_with_the_offline_hed_network(image_files, tmp_path, hed_weights):
    content, _ = image_files
    run = run_activations(content, tmp_path / "act.png", ["relu1_2", "relu2_2"], top_k=2, setup=Setup(hed_weights))
    assert run.weights.startswith("hed:") and run.steps == 0
    assert [len(maps) for maps in run.result.values()] == [3, 3]  # the mean, then the 2 strongest channels
    assert Image.open(run.written[0]).size == (3 * 166 + 6, 24 + (32 + 18 + 6) + 2 * (32 + 32 + 6) + 6)  # 40 x 32


def test_precision_reaches_the_loss_network(image_files, tmp_path):
    content, _ = image_files
    maps = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)  # the same random network
        setup = Setup(weights=None, device="cpu", precision=precision)
        run = run_activations(content, tmp_path / f"{precision}.png", ["relu2_1"], 1, "vgg11", setup)
        assert run.runtime.precision == precision and run.runtime.requested == precision
        maps[precision] = run.result["relu2_1"][0].values
    # bf16 keeps 8 bits of mantissa: close to fp32, and not equal to it (the network did run in bf16)
    torch.testing.assert_close(maps["bf16"], maps["fp32"], rtol=0.05, atol=0.02)
    assert not torch.equal(maps["bf16"], maps["fp32"])


def test_inputs_are_bounded_with_a_logged_notice(tmp_path, caplog):
    big = save_image(torch.rand(1, 3, 48, 96), tmp_path / "big.png")
    setup = Setup(weights=None, device="cpu", precision="fp32", max_size=64)
    with caplog.at_level(logging.INFO, logger="lossnet"):
        run = run_activations(big, tmp_path / "a.png", ["relu1_1"], 1, "vgg11", setup)
    assert run.inputs[0].original_size == (48, 96) and tuple(run.inputs[0].image.shape[-2:]) == (32, 64)
    assert "big.png is 96x48; resized to 64x32 (--max-size 64)" in caplog.messages
    assert "loss network vgg11 to relu1_1, weights random, on cpu" in caplog.messages


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_size": 0}, "max_size must be a positive number of pixels; got 0"),
        ({"max_size": 1.5}, "max_size must be a positive number of pixels; got 1.5"),
        ({"precision": "fp8"}, "unknown precision 'fp8'; expected one of"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
    ],
)
def test_a_bad_setup_fails_before_any_file_is_read(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.setattr("lossnet.explore.inputs.load_input", lambda *a, **k: pytest.fail("read before the check"))
    with pytest.raises(InputError, match=message):
        run_activations(tmp_path / "x.png", tmp_path / "a.png", ["relu1_1"], setup=Setup(**kwargs))
