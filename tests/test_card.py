"""The model card and the exported files' metadata: lossnet.card."""

from __future__ import annotations

import sys

import pytest
import torch

from lossnet.card import (
    Interface,
    card_lines,
    export_metadata,
    file_format,
    read_export_metadata,
    read_model_file,
)
from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.cli import main
from lossnet.errors import CheckpointError, MissingExtraError

CARD_KEYS = {"task", "network", "loss", "trunk", "steps", "data", "validation", "lossnet_version"}


def test_every_checkpoint_from_model_meta_carries_a_card_with_the_schemas_keys(tmp_path) -> None:
    meta = model_meta({"name": "UNet", "kwargs": {"depth": 2}}, task="restore", step=4, config={"data": "/x/my photos"})
    save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(1)}, meta)
    card = read_model_file(tmp_path / "m.safetensors").card
    assert set(card) == CARD_KEYS
    assert set(card["network"]) == {"name", "kwargs", "scale", "in_channels", "size_multiple", "min_size"}
    assert (card["data"], card["steps"], card["network"]["kwargs"]) == ("my photos", 4, {"depth": 2})


def test_a_checkpoint_from_before_cards_gets_what_its_metadata_allows(tmp_path, capsys) -> None:
    meta = {"model": {"name": "SuperResNet", "kwargs": {"scale": 2}}, "task": "superres", "scale": 2, "step": 9,
            "config": {"data": None, "loss": "pixel"}, "loss_weights": "hed"}  # fmt: skip
    save_checkpoint(tmp_path / "old.safetensors", {"w": torch.ones(1)}, meta)
    assert main(["info", str(tmp_path / "old.safetensors")]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["network"] == 'SuperResNet x2 {"scale": 2}'  # no size rule recorded
    assert lines["loss"] == "pixel" and lines["trunk"] == "none, weights hed"
    assert (lines["steps"], lines["data"], lines["validation"]) == ("9", "embedded default", "unrecorded")


def test_unreadable_export_metadata_is_a_checkpoint_error() -> None:
    good = export_metadata(Interface(3, 3, 1, 4, 8, (0.0, 1.0), (0.0, 1.0)), {"steps": 1})
    assert read_export_metadata(good, "m.onnx")[1] == {"steps": 1}
    with pytest.raises(CheckpointError, match="incomplete or unreadable"):
        read_export_metadata({**good, "lossnet.scale": "two"}, "m.onnx")
    with pytest.raises(CheckpointError, match="carries no lossnet metadata"):
        read_export_metadata({}, "m.onnx")


def test_a_torch_save_archive_is_no_torchscript_and_is_refused_as_a_pickle(tmp_path, capsys) -> None:
    torch.save({"w": torch.ones(1)}, tmp_path / "weights.pt")
    assert file_format(tmp_path / "weights.pt") == "safetensors"  # left to the checkpoint reader, which refuses it
    assert main(["info", str(tmp_path / "weights.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PyTorch pickle" in err


def test_reading_onnx_without_the_onnx_package_names_the_extra(tmp_path, monkeypatch) -> None:
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'lossnet\[export\]'"):
        read_model_file(tmp_path / "m.onnx")


def test_card_lines_word_every_field() -> None:
    from pathlib import Path

    from lossnet.card import ModelFile

    card = {
        "task": "style", "network": {"name": "TransformerNet", "kwargs": {"channels": 8}, "scale": 1,
        "in_channels": 3, "size_multiple": 4, "min_size": 8}, "loss": {"recipe": "perceptual (lossnet_style)",
        "weights": {"pixel": 2.0, "style.relu1_2": 5e3}}, "trunk": {"arch": "vgg16", "weights": "hed:vgg16-1a2b"},
        "steps": 40000, "data": "coco", "validation": {"total": 1.23456}, "lossnet_version": "0.1.0",
    }  # fmt: skip
    lines = card_lines(ModelFile(Path("s.onnx"), "onnx", card, "f" * 64, None, 17))
    assert lines == [
        "file: s.onnx (onnx, ONNX opset 17)",
        "sha256: " + "f" * 64,
        "task: style",
        'network: TransformerNet {"channels": 8}; size rule: H and W multiples of 4, at least 8',
        "loss: perceptual (lossnet_style): pixel 2, style.relu1_2 5000",
        "trunk: vgg16, weights hed:vgg16-1a2b",
        "steps: 40000",
        "data: coco",
        "validation: total 1.235",
        "lossnet version: 0.1.0",
    ]
