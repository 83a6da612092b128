"""``--balance shares`` and the ``--*-share`` flags on compare and stylize; compare's gradient shares."""

import pytest
import torch

from lossnet.cli import main
from lossnet.data.io import save_image
from lossnet.explore.optimize import OptimizeConfig
from lossnet.explore.stylize import StylizeConfig, stylize


@pytest.fixture
def pair(tmp_path):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 40, 40, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    save_image(a, tmp_path / "a.png")
    save_image(b, tmp_path / "b.png")
    return str(tmp_path / "a.png"), str(tmp_path / "b.png")


def _rows(out):
    return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line and not line.startswith(("-", " "))}


def test_compare_shows_gradient_shares(pair, capsys):
    assert main(["compare", *pair, "--weights", "none", "--pixel-weight", "1", "--tv-weight", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "grad share" in out.splitlines()[0]
    rows = _rows(out)
    assert rows["total"][1:] == ["100%", "100%"]
    grads = [float(rows[k][2].rstrip("%")) for k in ("pixel", "feature.relu2_2", "tv")]
    assert sum(grads) == pytest.approx(100, abs=0.2)


def test_compare_of_an_image_with_itself_says_so_instead_of_shares(pair, capsys):
    """Every term 0 gives no shares (0 / 0): the table shows the values and says the images are one, with no note
    telling the user to raise a weight."""
    assert main(["compare", pair[0], pair[0], "--weights", "none", "--pixel-weight", "1"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["pixel"] == ["0"] and rows["total"] == ["0"], out
    assert "every term is 0" in out and "%" not in out and "raise its weight" not in out


def test_compare_in_shares(pair, capsys):
    argv = ["compare", *pair, "--weights", "none", "--pixel-share", "0.2", "--feature-share", "0.8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "shares (gradient rule" in out and "--pixel-weight" in out and "--feature-layers relu2_2=" in out
    rows = _rows(out)
    assert float(rows["pixel"][2].rstrip("%")) == pytest.approx(20, abs=2)
    assert float(rows["feature.relu2_2"][2].rstrip("%")) == pytest.approx(80, abs=8)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--balance", "shares"], "--feature-share"),
        (["--pixel-share", "-1"], "expected a share >= 0"),
        (["--pixel-share", "1", "--balance", "weights"], "drop one"),
        (["--tv-share", "1", "--feature-share", "1"], "no share for it"),
    ],
)
def test_compare_bad_shares(pair, capsys, flags, message):
    try:
        code = main(["compare", *pair, "--weights", "none", "--pixel-weight", "1", *flags])
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_stylize_in_shares_resolves_weights_on_the_inputs():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    config = StylizeConfig(arch="vgg11", content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0},
                           style_family="gram", init="content",
                           shares={"feature": 0.6, "style": 0.3, "tv": 0.1}, optimize=OptimizeConfig(steps=2))  # fmt: skip
    result = stylize(content, style, weights=None, config=config)
    assert result.balance is not None and result.config.shares == {}
    expected = {"feature": 0.6, "style": 0.3, "tv": 0.1}
    assert result.balance.measured["gradient"] == pytest.approx(expected, rel=1e-3)
    assert result.config.content_layers == result.balance.keywords["feature_layers"]
    assert result.loss_kwargs()["tv_weight"] == result.balance.keywords["tv_weight"]


def test_sweep_in_shares_multiplies_the_style_share():
    from lossnet.explore.sweep import sweep

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    config = StylizeConfig(arch="vgg11", content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0},
                           shares={"feature": 0.5, "mean_std": 0.4, "tv": 0.1}, optimize=OptimizeConfig(steps=1))  # fmt: skip
    result = sweep(content, style, None, config, ratios=(1, 10))
    assert [c.label for c in result.rows[0]] == ["style share x1", "style share x10"]
