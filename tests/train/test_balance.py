"""A training run in shares: resolved on the first batch, kept in config.json, run.json and on resume."""

import csv
import json

import pytest

from lossnet.cli import main
from lossnet.errors import InputError
from lossnet.train.balance import run_shares
from lossnet.train.loop import train
from lossnet.train.runs import resume_config

from .conftest import TINY_MODELS


def test_a_run_in_shares_keeps_its_resolved_weights(tiny):
    config = tiny("superres", pixel_share=0.25, feature_share=0.75, steps=4, stop_after=2)
    assert run_shares(config) == {"feature": 0.75, "pixel": 0.25}
    result = train(config)
    summary = json.loads((result.out_dir / "run.json").read_text())
    resolved = summary["resolved_weights"]
    assert set(resolved) == {"pixel_weight", "feature_layers"} and resolved["pixel_weight"] > 0
    assert summary["balance"]["shares"] == {"pixel": 0.25, "feature": 0.75}
    measured = summary["balance"]["measured"]["gradient"]
    assert measured["pixel"] == pytest.approx(0.25, rel=0.1) and measured["feature"] == pytest.approx(0.75, rel=0.1)
    assert json.loads((result.out_dir / "config.json").read_text())["resolved_weights"] == resolved
    rows = list(csv.DictReader((result.out_dir / "shares.csv").open()))
    assert [r["step"] for r in rows] == ["2"] and {"grad.pixel", "value.pixel", "grad.feature.relu2_2"} <= set(rows[0])
    assert sum(float(rows[0][k]) for k in rows[0] if k.startswith("grad.")) == pytest.approx(1, abs=1e-4)

    resumed = resume_config(result.checkpoint)
    assert resumed.resolved_weights == resolved and run_shares(resumed) is None  # no second calibration
    result = train(resumed, resume=result.checkpoint)
    summary = json.loads((result.out_dir / "run.json").read_text())
    assert summary["resolved_weights"] == resolved and "balance" not in summary


def test_print_config_shows_the_resolved_weights(tmp_path, capsys):
    kwargs = ",".join(f"{k}={v}" for k, v in TINY_MODELS["superres"].items())
    argv = ["train", "superres", "--print-config", "--weights", "none", "--crop-size", "32", "--batch-size", "2",
            "--image-size", "96", "--model-kwargs", kwargs, "--out", str(tmp_path / "r"), "--balance", "shares"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["balance"] == "shares" and set(printed["resolved_weights"]) == {"pixel_weight", "feature_layers"}
    assert not (tmp_path / "r").exists()  # nothing written
    assert main(argv[:-2] + ["--balance", "weights"]) == 0
    assert json.loads(capsys.readouterr().out)["resolved_weights"] is None


def test_bad_shares_in_a_config(tiny):
    with pytest.raises(InputError, match="drop one"):
        tiny("superres", pixel_share=0.5, balance="weights")
    with pytest.raises(InputError, match=">= 0"):
        tiny("superres", pixel_share=-1.0)
    with pytest.raises(InputError, match="balance"):
        tiny("superres", balance="share")
