"""``apply`` runs exported files (ONNX through onnxruntime, TorchScript) as it runs checkpoints: lossnet.inference.exported."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import lossnet.cli
from lossnet.data.io import read_image, save_image
from lossnet.errors import CheckpointError, MissingExtraError
from lossnet.export import export_onnx, export_torchscript
from lossnet.inference import ExportedNetwork, apply_files, apply_model, load_model, read_model_info
from tests.inference.checkpoints import make_checkpoint

ort = pytest.importorskip("onnxruntime", reason="the export extra (pip install 'lossnet[export]') is not installed")


def _folder(root):
    """Images as users have them: RGB of an odd size, RGBA, 16-bit grey, an sRGB profile, a JPEG, a subfolder."""
    rng = np.random.default_rng(5)
    (root / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(root / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (30, 41, 4), dtype=np.uint8), mode="RGBA").save(root / "sub" / "rgba.png")
    Image.fromarray(rng.integers(0, 65536, (33, 29), dtype=np.uint16)).save(root / "grey16.png")
    save_image(rng.integers(0, 65536, (26, 35, 3), dtype=np.uint16), root / "rgb16.png")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rng.integers(0, 256, (44, 36, 3), dtype=np.uint8)).save(root / "icc.png", icc_profile=srgb)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "photo.jpg", quality=90)
    (root / "notes.txt").write_text("not an image")
    return srgb


@pytest.mark.parametrize("task", ["superres", "style", "colorize", "restore"])
def test_a_folder_through_onnx_and_torchscript_equals_the_pytorch_path(tmp_path, task) -> None:
    srgb = _folder(tmp_path / "in")
    make_checkpoint(tmp_path / "m.safetensors", task)
    export_onnx(tmp_path / "m.safetensors", tmp_path / "m.onnx")
    export_torchscript(tmp_path / "m.safetensors", tmp_path / "m.pt")
    # 16-bit output, so that a difference of 1e-4 is not hidden by (or made into) an 8-bit rounding step;
    # tiles of 24 with an overlap of 8, so every image goes through several tiles and cross-fades.
    options = dict(tile=24, overlap=8, precision="fp32", bit_depth=16, device="cpu")
    # An exported instance-norm network (style) runs on the whole image, since the tiler cannot reach its norm
    # layers to give every tile the image's statistics: its reference is the whole-image PyTorch run.
    whole = dict(options, tile=None) if task == "style" else options
    summaries = {
        name: apply_files(tmp_path / name, tmp_path / "in", tmp_path / name.replace(".", "_"),
                          **(whole if name == "m.safetensors" else options))
        for name in ("m.safetensors", "m.onnx", "m.pt")
    }  # fmt: skip
    outputs = sorted(p.relative_to(tmp_path / "m_safetensors") for p in (tmp_path / "m_safetensors").rglob("*.png"))
    assert len(outputs) == 6
    for name in ("m.onnx", "m.pt"):
        summary = summaries[name]
        assert summary.ok and len(summary.written) == 6 and [p.name for p in summary.skipped] == ["notes.txt"]
        assert summary.model.format == ("onnx" if name == "m.onnx" else "torchscript")
        assert summary.model.task == task and summary.model.step == 7
        for rel in outputs:
            ref, got = read_image(tmp_path / "m_safetensors" / rel), read_image(tmp_path / name.replace(".", "_") / rel)
            assert (got.grey, got.bit_depth, got.color.shape) == (ref.grey, ref.bit_depth, ref.color.shape), rel
            assert (got.color - ref.color).abs().max() <= 1e-4, (name, rel)
            assert (got.alpha is None) == (ref.alpha is None)
            if ref.alpha is not None:
                assert torch.equal(got.alpha, ref.alpha)
        with Image.open(tmp_path / name.replace(".", "_") / "icc.png") as out:
            assert out.info.get("icc_profile") == srgb


def test_an_exported_network_declares_what_the_tiler_reads(tmp_path) -> None:
    net = make_checkpoint(tmp_path / "m.safetensors", "colorize")
    export_onnx(tmp_path / "m.safetensors", tmp_path / "m.onnx")
    loaded = load_model(tmp_path / "m.onnx")
    assert isinstance(loaded, ExportedNetwork) and not loaded.training and loaded.runner == "onnxruntime"
    assert (loaded.in_channels, loaded.scale, loaded.size_multiple, loaded.min_size) == (1, 1, 4, 4)
    image = torch.rand(1, 3, 30, 45)
    expected = apply_model(net, image, tile=None)
    assert (apply_model(loaded, image, tile=None) - expected).abs().max() <= 1e-4
    info = read_model_info(tmp_path / "m.onnx")
    assert str(info) == "UNet (colorize, step 7, onnx)"


def test_fp16_onnx_runs_through_apply(tmp_path) -> None:
    net = make_checkpoint(tmp_path / "m.safetensors", "superres")
    export_onnx(tmp_path / "m.safetensors", tmp_path / "m16.onnx", fp16=True)
    image = torch.rand(1, 3, 21, 34)
    got = apply_model(load_model(tmp_path / "m16.onnx"), image, tile=16, overlap=4)
    assert got.dtype == torch.float32 and got.shape == (1, 3, 42, 68)
    assert (got - apply_model(net, image, tile=16, overlap=4)).abs().max() <= 2e-2


def test_without_onnxruntime_apply_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "restore")
    export_onnx(tmp_path / "m.safetensors", tmp_path / "m.onnx")
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'lossnet\[export\]'"):
        load_model(tmp_path / "m.onnx")
    argv = ["apply", "--model", str(tmp_path / "m.onnx"), str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]
    assert lossnet.cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "onnxruntime" in err and "pip install 'lossnet[export]'" in err


def test_cli_apply_runs_an_onnx_file_and_says_what_ran_it(tmp_path, capsys) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "style")
    export_onnx(tmp_path / "m.safetensors", tmp_path / "m.onnx")
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    argv = ["apply", "--model", str(tmp_path / "m.onnx"), str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]
    assert lossnet.cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "with TransformerNet (style, step 7, onnx)" in out and "onnxruntime: computes in the file's own dtype" in out
    assert (tmp_path / "out" / "a.png").is_file()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates torch.jit
def test_files_without_lossnet_metadata_are_refused_before_they_run(tmp_path) -> None:
    import onnx

    make_checkpoint(tmp_path / "m.safetensors", "style")
    export_onnx(tmp_path / "m.safetensors", tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(CheckpointError, match="carries no lossnet metadata"):
        load_model(tmp_path / "bare.onnx")
    scripted = torch.jit.trace(torch.nn.Conv2d(3, 3, 1).eval(), torch.rand(1, 3, 4, 4))
    torch.jit.save(scripted, str(tmp_path / "plain.pt"))
    with pytest.raises(CheckpointError, match="carries no lossnet metadata"):
        load_model(tmp_path / "plain.pt")
