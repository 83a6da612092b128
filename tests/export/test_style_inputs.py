"""A network of two input images (AdaINNet: content and style) is refused by export, in one line, before any file."""

from __future__ import annotations

import pytest
import torch

from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.cli import main
from lossnet.errors import ExportError
from lossnet.export import export_onnx, export_torchscript
from lossnet.models import MODELS, AdaINNet, model_spec
from tests.export.networks import CASES

pytest.importorskip("onnx", reason="the export extra (pip install 'lossnet[export]') is not installed")


def _net() -> AdaINNet:
    torch.manual_seed(0)
    return AdaINNet("vgg11", weights=None, layer="relu2_1")


@pytest.mark.parametrize("export", [export_onnx, export_torchscript])
def test_export_refuses_a_two_input_network(tmp_path, export) -> None:
    with pytest.raises(ExportError, match=r"AdaINNet takes 2 images \(content, style\).*lossnet apply --model MODEL --style-image"):
        export(_net(), tmp_path / ("m.onnx" if export is export_onnx else "m.pt"))
    assert not list(tmp_path.iterdir())


def test_the_cli_says_so_in_one_line(tmp_path, capsys) -> None:
    spec = model_spec("AdaINNet", arch="vgg11", weights=None, layer="relu2_1")
    save_checkpoint(tmp_path / "m.safetensors", _net().state_dict(), model_meta(spec, task="style_any", step=1))
    assert main(["export", "--model", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot export this one yet" in err
    assert not (tmp_path / "m.onnx").exists()


def test_every_other_registry_entry_is_in_the_parity_cases() -> None:
    assert {c[1] for c in CASES} == set(MODELS) - {"AdaINNet"}
