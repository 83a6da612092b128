"""Evaluating trained networks: the library call, its tables and the ``eval`` command."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import lossnet.cli
from lossnet import metrics
from lossnet.cli import build_parser
from lossnet.cli import evaluate as evaluate_cli
from lossnet.data.defaults import load_default_image
from lossnet.data.degradations import jpeg_compress
from lossnet.errors import InputError
from lossnet.evaluation import EvalResult, evaluate, method_names, write_tables
from lossnet.models import SuperResNet, build_model, model_spec
from lossnet.checkpoint import save_checkpoint
from lossnet.train.config import task_config
from lossnet.train.loop import train

SIZE = 64  # longer side of the validation images: astronaut 64x64, chelsea 43x64
SPECS = {
    "superres": model_spec("SuperResNet", scale=4, channels=4, num_residual=1, head_kernel_size=3),
    "style": model_spec("TransformerNet", channels=4, num_residual=1),
    "colorize": model_spec("UNet", in_channels=1, depth=2, base_channels=4),
    "restore": model_spec("UNet", in_channels=3, depth=2, base_channels=4),
}


@pytest.fixture(autouse=True)
def with_eval_command(monkeypatch: pytest.MonkeyPatch) -> None:
    if evaluate_cli not in lossnet.cli.COMMAND_MODULES:
        monkeypatch.setattr(lossnet.cli, "COMMAND_MODULES", (*lossnet.cli.COMMAND_MODULES, evaluate_cli))


def checkpoint(path, task: str, spec: dict | None = None):
    """A checkpoint as the trainer writes it, of a network at its initialisation."""
    spec = spec or SPECS[task]
    meta = {"model": spec, "task": task, "step": 0, "config": {"task": task}}
    if task == "superres":
        meta["scale"] = spec["kwargs"]["scale"]
    save_checkpoint(path, build_model(spec).state_dict(), meta)
    return path


def luma(x: torch.Tensor) -> np.ndarray:
    """BT.601 luma as MATLAB's rgb2ycbcr computes it, by hand: (1, 3, H, W) in [0, 1] -> (H, W) float64."""
    rgb = x[0].permute(1, 2, 0).double().numpy()
    return 16 / 255 + rgb @ np.array([65.481, 128.553, 24.966]) / 255


def read_csv(text: str) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["image"], r["method"]): r for r in csv.DictReader(io.StringIO(text))}


# ------------------------------------------------------------------------------- super-resolution


def test_bicubic_baseline_matches_an_independent_computation(tmp_path, hed_weights) -> None:
    result = evaluate(checkpoint(tmp_path / "sr.safetensors", "superres"), size=SIZE, feature_weights=hed_weights)
    assert result.baseline == "bicubic" and result.shave == 4 and result.images == ["astronaut", "chelsea"]
    for name in result.images:
        truth = load_default_image(name, size=SIZE)
        h, w = (s - s % 4 for s in truth.shape[-2:])
        truth = truth[..., :h, :w]
        low = F.interpolate(truth, size=(h // 4, w // 4), mode="bicubic", antialias=True, align_corners=False)
        up = F.interpolate(low.clamp(0, 1), scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
        a, b = luma(truth)[4:-4, 4:-4], luma(up)[4:-4, 4:-4]
        scores = result.scores[(name, "bicubic")]
        assert scores["psnr_y"] == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-6)
        ssim_ref = structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
        )
        assert scores["ssim_y"] == pytest.approx(ssim_ref, abs=1e-6)
        rgb_a, rgb_b = (x[0, :, 4:-4, 4:-4].permute(1, 2, 0).double().numpy() for x in (truth, up))
        assert scores["psnr_rgb"] == pytest.approx(peak_signal_noise_ratio(rgb_a, rgb_b, data_range=1.0), abs=1e-6)
    mean = result.mean("bicubic")["psnr_y"]
    assert mean == pytest.approx(sum(result.scores[(n, "bicubic")]["psnr_y"] for n in result.images) / 2)


def test_superresnet_at_init_scores_as_the_baseline(tmp_path, hed_weights) -> None:
    # residual_bicubic=True starts with residual_gain 0: the output is the clamped bicubic upsampling.
    result = evaluate(
        {"init": checkpoint(tmp_path / "sr.safetensors", "superres")},
        size=SIZE,
        feature_weights=hed_weights,
        lpips=False,
    )
    assert result.methods == ["bicubic", "init"]
    for row in [*result.images, "mean"]:
        net = result.mean("init") if row == "mean" else result.scores[(row, "init")]
        base = result.mean("bicubic") if row == "mean" else result.scores[(row, "bicubic")]
        assert net["psnr_y"] == pytest.approx(base["psnr_y"], abs=1e-4)
        assert net["psnr_rgb"] == pytest.approx(base["psnr_rgb"], abs=1e-4)
        assert net["ssim_y"] == pytest.approx(base["ssim_y"], abs=1e-5)
        assert net["feature_relu2_2"] == pytest.approx(base["feature_relu2_2"], rel=1e-4)
    # ...and a network that is not at its initialisation does not.
    moved = SuperResNet(scale=4, channels=4, num_residual=1, head_kernel_size=3)
    with torch.no_grad():
        moved.head.weight.normal_(0, 0.1)
        moved.residual_gain.fill_(1.0)
    moved = evaluate({"moved": moved.eval()}, size=SIZE, feature_layers=None, lpips=False)
    assert abs(moved.mean("moved")["psnr_y"] - moved.mean("bicubic")["psnr_y"]) > 0.1


def test_scale_is_the_networks(tmp_path) -> None:
    path = checkpoint(tmp_path / "sr.safetensors", "superres")
    with pytest.raises(InputError, match=r"scale 2 was asked for, but the networks \(sr\) upscale by 4"):
        evaluate(path, scale=2, size=SIZE, feature_layers=None, lpips=False)
    assert evaluate(path, scale=4, size=SIZE, feature_layers=None, lpips=False).scale == 4


# ------------------------------------------------------------------------------- other tasks


def test_restore_baseline_is_the_jpeg_input(tmp_path) -> None:
    path = checkpoint(tmp_path / "r.safetensors", "restore")
    result = evaluate(path, size=SIZE, jpeg_quality=20, feature_layers=None, lpips=False)
    assert result.baseline == "JPEG q20" and result.shave == 0
    truth = load_default_image("astronaut", size=SIZE)
    expected = float(metrics.psnr(jpeg_compress(truth, 20), truth, y_channel=True))
    assert result.scores[("astronaut", "JPEG q20")]["psnr_y"] == pytest.approx(expected, abs=1e-5)
    again = evaluate(path, size=SIZE, jpeg_quality=20, feature_layers=None, lpips=False)
    assert again.scores == result.scores  # deterministic: no random quality or text


def test_colorize_baseline_is_the_grey_input(tmp_path) -> None:
    result = evaluate(checkpoint(tmp_path / "c.safetensors", "colorize"), size=SIZE, feature_layers=None, lpips=False)
    assert result.baseline == "grey"
    truth = load_default_image("chelsea", size=SIZE)
    grey = (truth * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    assert result.scores[("chelsea", "grey")]["ssim_rgb"] == pytest.approx(float(metrics.ssim(grey, truth)), abs=1e-5)


def test_a_module_needs_a_task_unless_it_shows(tmp_path) -> None:
    net = build_model(SPECS["restore"]).eval()
    with pytest.raises(InputError, match="cannot tell the task of UNet.*pass task="):
        evaluate(net, size=SIZE, feature_layers=None, lpips=False)
    assert evaluate(net, task="restore", size=SIZE, feature_layers=None, lpips=False).task == "restore"
    grey = build_model(SPECS["colorize"]).eval()
    assert evaluate(grey, size=SIZE, feature_layers=None, lpips=False).task == "colorize"
    # A guess yields to the task asked for, but a network that cannot do that task is refused.
    style_net = build_model(SPECS["style"]).eval()
    assert evaluate(style_net, task="restore", size=SIZE, feature_layers=None, lpips=False).task == "restore"
    with pytest.raises(InputError, match="a style network has none") as refused:
        evaluate(style_net, size=SIZE, feature_layers=None, lpips=False)
    hint = re.search(r"`lossnet (compare [^`]+)`", str(refused.value)).group(1)  # what to run instead, as it runs
    assert build_parser().parse_args(hint.split()).style == "STYLE_IMAGE"
    with pytest.raises(InputError, match="a restore network keeps the size, but SuperResNet .* upscales by 4"):
        evaluate(build_model(SPECS["superres"]).eval(), task="restore", size=SIZE, feature_layers=None, lpips=False)
    with pytest.raises(InputError, match="a colorize network takes one input channel"):
        evaluate(net, task="colorize", size=SIZE, feature_layers=None, lpips=False)


# ------------------------------------------------------------------------------- side by side


def test_mismatched_tasks_are_refused(tmp_path) -> None:
    sr, restore = checkpoint(tmp_path / "sr.safetensors", "superres"), checkpoint(tmp_path / "r.safetensors", "restore")
    with pytest.raises(InputError, match="must share the task; got sr: superres, r: restore"):
        evaluate({"sr": sr, "r": restore}, size=SIZE)
    x2 = checkpoint(
        tmp_path / "x2.safetensors",
        "superres",
        model_spec("SuperResNet", scale=2, channels=4, num_residual=1, head_kernel_size=3),
    )
    with pytest.raises(InputError, match="must share the scale; got sr: x4, x2: x2"):
        evaluate({"sr": sr, "x2": x2}, size=SIZE)


def test_style_networks_are_refused(tmp_path) -> None:
    with pytest.raises(InputError, match="a style network has none"):
        evaluate(checkpoint(tmp_path / "s.safetensors", "style"), size=SIZE)


def test_method_names() -> None:
    assert method_names(["runs/a/model.safetensors", "b.safetensors", "x/b.safetensors"]) == ["a", "b", "b (2)"]


# ------------------------------------------------------------------------------- LPIPS


def fake_calibration(path):
    torch.save(
        {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(metrics.LPIPS_LAYERS.values())}, path
    )
    return path


def test_lpips_is_na_with_the_reason_offline(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty cache
    sr = checkpoint(tmp_path / "sr.safetensors", "superres")
    result = evaluate(sr, size=SIZE, feature_layers=None, lpips_calibration=fake_calibration(tmp_path / "vgg.pth"))
    assert all(s["lpips"] is None for s in result.scores.values()) and result.mean("sr")["lpips"] is None
    (note,) = [n for n in result.notes if n.startswith("lpips")]
    assert "ImageNet VGG16" in note and "LOSSNET_OFFLINE" in note
    assert {row["lpips"] for row in read_csv(result.to_csv()).values()} == {"n/a"}
    md = result.to_markdown()
    assert all(line.rstrip().endswith("| n/a |") for line in md.splitlines() if line.startswith("| astronaut"))
    # Without a calibration file the installed lpips wheel's is used; the weights are still missing.
    (note,) = [n for n in evaluate(sr, size=SIZE, feature_layers=None).notes if n.startswith("lpips")]
    assert "ImageNet VGG16" in note and "LOSSNET_OFFLINE" in note
    # With lpips not installed either, the reason is the calibration file.
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    (note,) = [n for n in evaluate(sr, size=SIZE, feature_layers=None).notes if n.startswith("lpips")]
    assert "calibration file" in note and "pip install --no-deps lpips==0.1.4" in note
    with pytest.raises(FileNotFoundError, match="LPIPS calibration file not found"):
        evaluate(sr, size=SIZE, feature_layers=None, lpips_calibration=tmp_path / "missing.pth")


def test_lpips_is_a_number_with_imagenet_vgg16(tmp_path, monkeypatch) -> None:
    # A stand-in for torchvision's file in the torch.hub cache (random weights, same name and layout).
    from lossnet.backbones.vgg import VGG

    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    state = {k: v.half() for k, v in VGG("vgg16").state_dict().items()}
    torch.save(state, tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    calibration = None  # the lpips wheel's published heads: strict LPIPS takes no others
    result = evaluate(
        checkpoint(tmp_path / "sr.safetensors", "superres"),
        size=SIZE,
        feature_layers=None,
        lpips_calibration=calibration,
    )
    assert not [n for n in result.notes if n.startswith("lpips")]
    truth = load_default_image("astronaut", size=SIZE)
    up = F.interpolate(
        F.interpolate(truth, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1),
        scale_factor=4,
        mode="bicubic",
    ).clamp(0, 1)
    expected = metrics.lpips(up[..., 4:-4, 4:-4], truth[..., 4:-4, 4:-4], calibration)
    assert result.scores[("astronaut", "bicubic")]["lpips"] == pytest.approx(float(expected), rel=1e-4)
    assert result.mean("sr")["lpips"] > 0


# ------------------------------------------------------------------------------- folders and tables


def test_folder_of_images(tmp_path) -> None:
    data = tmp_path / "gt"
    (data / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(data / "b.png")
    Image.fromarray(rng.integers(0, 256, (44, 36, 3), dtype=np.uint8)).save(data / "sub" / "a.png")
    (data / "broken.png").write_bytes(b"not an image")
    Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(data / "tiny.png")  # x4: 8 px, shaved 4
    result = evaluate(checkpoint(tmp_path / "sr.safetensors", "superres"), data, feature_layers=None, lpips=False)
    assert result.images == ["b.png", "sub/a.png"]  # the tiny one is left out of the table and the means, and said
    assert any("broken.png" in note for note in result.notes)
    assert [n for n in result.notes if n.startswith("not scored")] == [
        "not scored: tiny.png: images of 8x8 pixels leave nothing after shaving 4 px off every border"
    ]
    assert {image for image, _ in result.scores} == {"b.png", "sub/a.png"} and result.mean("bicubic")["psnr_y"] > 0
    with pytest.raises(InputError, match="no image could be scored: not scored: tiny.png"):
        evaluate(tmp_path / "sr.safetensors", data / "tiny.png", feature_layers=None, lpips=False)
    one = evaluate(tmp_path / "sr.safetensors", data / "b.png", feature_layers={}, lpips=False)
    assert one.images == ["b.png"] and [m.key for m in one.metrics] == ["psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"]
    with pytest.raises(FileNotFoundError, match="no such image folder"):
        evaluate(tmp_path / "sr.safetensors", tmp_path / "nowhere", feature_layers=None, lpips=False)


def test_write_tables(tmp_path) -> None:
    result = evaluate(checkpoint(tmp_path / "sr.safetensors", "superres"), size=SIZE, feature_layers=None, lpips=False)
    csv_path, md_path = write_tables(result, tmp_path / "out")
    rows = read_csv(csv_path.read_text())
    assert set(rows) == {(i, m) for i in ["astronaut", "chelsea", "mean"] for m in ["bicubic", "sr"]}
    assert float(rows[("mean", "sr")]["psnr_y"]) == pytest.approx(result.mean("sr")["psnr_y"], abs=1e-12)
    assert md_path.read_text() == result.to_markdown()
    assert not list((tmp_path / "out").glob(".*.tmp"))
    with pytest.raises(InputError, match="is a file"):
        write_tables(result, csv_path)


# ------------------------------------------------------------------------------- the command


@pytest.fixture
def trained_sr(tmp_path):
    """A SuperResNet x4 trained for 2 steps with the per-pixel loss, as `lossnet train` writes it."""
    config = task_config(
        "superres",
        model_kwargs={"channels": 4, "num_residual": 1, "head_kernel_size": 3},
        crop_size=32,
        val_size=32,
        image_size=96,
        batch_size=2,
        steps=2,
        loss="pixel",
        loss_weights=None,
        out_dir=str(tmp_path / "runs" / "sr_pixel"),
        log_every=1,
        val_every=2,
        checkpoint_every=2,
    )
    return train(config).model


def test_cli_compares_two_models_and_writes_both_tables(tmp_path, trained_sr, capsys) -> None:
    other = checkpoint(tmp_path / "sr_init.safetensors", "superres")
    out = tmp_path / "eval"
    code = lossnet.cli.main(
        [
            "eval",
            "--model",
            str(trained_sr),
            "--compare",
            str(other),
            "--size",
            str(SIZE),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--feature-layers",
            "",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    rows = read_csv((out / "eval.csv").read_text())
    assert {m for _, m in rows} == {"bicubic", "sr_pixel", "sr_init"}
    assert {i for i, _ in rows} == {"astronaut", "chelsea", "mean"}
    md = (out / "eval.md").read_text()
    assert md in printed and f"wrote {out / 'eval.csv'} and {out / 'eval.md'}" in printed
    assert "| **mean** | sr_pixel |" in md and "| **mean** | sr_init |" in md
    assert "lpips: n/a:" in md and "feature" not in rows[("mean", "sr_init")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "{tmp}/missing.safetensors"], "missing.safetensors"),
        (["--model", "{sr}", "--compare", "{tmp}/missing.safetensors"], "missing.safetensors"),
        (["--model", "{sr}", "--data", "{tmp}/nowhere"], "no such image folder"),
        (["--model", "{sr}", "--lpips-calibration", "{tmp}/vgg.pth"], "LPIPS calibration file not found"),
        (["--model", "{sr}", "--compare", "{restore}"], "must share the task"),
    ],
)
def test_cli_user_errors_exit_2(tmp_path, capsys, args, message) -> None:
    sr, restore = checkpoint(tmp_path / "sr.safetensors", "superres"), checkpoint(tmp_path / "r.safetensors", "restore")
    argv = [a.format(tmp=tmp_path, sr=sr, restore=restore) for a in args]
    code = lossnet.cli.main(["eval", *argv, "--size", str(SIZE), "--out", str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lossnet: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_result_type_is_checked(tmp_path) -> None:
    with pytest.raises(TypeError, match="EvalResult"):
        write_tables({"not": "a result"}, tmp_path)  # type: ignore[arg-type]
    assert EvalResult(task="superres", scale=4, shave=4).methods == []
