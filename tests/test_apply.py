"""Applying trained networks: loading checkpoints, tiled inference, files and the ``apply`` command."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lossnet.cli
from lossnet.apply import (
    _plan_axis,
    _tile_weights,
    apply_files,
    apply_model,
    load_model,
    read_model_info,
)
from lossnet.cli import apply as apply_cli
from lossnet.data.io import load_image, save_image
from lossnet.data.tasks import luminance
from lossnet.errors import CheckpointError, InputError
from lossnet.models import build_model, model_spec
from lossnet.checkpoint import save_checkpoint

# Tiny networks, one per task, as the trainer builds them (meta as in the checkpoint contract).
SPECS = {
    "superres": model_spec("SuperResNet", scale=2, channels=4, num_residual=1, head_kernel_size=3),
    "style": model_spec("TransformerNet", channels=4, num_residual=1),
    "colorize": model_spec("UNet", in_channels=1, depth=2, base_channels=4),
    "restore": model_spec("UNet", in_channels=3, depth=2, base_channels=4),
}
ONE_PIXEL = 1 / 255


@pytest.fixture(autouse=True)
def with_apply_command(monkeypatch: pytest.MonkeyPatch) -> None:
    if apply_cli not in lossnet.cli.COMMAND_MODULES:
        monkeypatch.setattr(lossnet.cli, "COMMAND_MODULES", (*lossnet.cli.COMMAND_MODULES, apply_cli))


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Move every weight and batch-norm statistic off its initial value (SuperResNet starts as plain bicubic)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def make_checkpoint(path, task: str, spec: dict | None = None, step: int = 7):
    spec = spec or SPECS[task]
    model = perturbed(build_model(spec))
    meta = {"model": spec, "task": task, "step": step, "config": {"task": task}, "loss_weights": "hed"}
    if task == "superres":
        meta["scale"] = spec["kwargs"]["scale"]
    save_checkpoint(path, model.state_dict(), meta, {"optimizer": {"lr": 1e-3}})
    return model


def reference(model: torch.nn.Module, image: torch.Tensor, task: str, multiple: int) -> torch.Tensor:
    """The network on an image of any size, by hand: reflect-pad bottom/right to the multiple, run, crop."""
    x = luminance(image) if task == "colorize" else image
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="reflect")
    with torch.no_grad():
        y = model(x)
    s = y.shape[-1] // x.shape[-1]
    return y[..., : h * s, : w * s]


MULTIPLE = {"superres": 1, "style": 4, "colorize": 4, "restore": 4}


# ------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("task", list(SPECS))
def test_load_model_round_trip_gives_identical_outputs(tmp_path, task) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", task)
    loaded = load_model(tmp_path / "m.safetensors")
    assert type(loaded) is type(model)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = torch.rand(2, 1 if task == "colorize" else 3, 16, 24)
    assert torch.equal(loaded(x), model(x))


def test_read_model_info(tmp_path) -> None:
    make_checkpoint(tmp_path / "sr.safetensors", "superres", step=123)
    info = read_model_info(tmp_path / "sr.safetensors")
    assert (info.name, info.task, info.scale, info.step, info.loss_weights) == (
        "SuperResNet",
        "superres",
        2,
        123,
        "hed",
    )
    assert build_model(info.spec).scale == 2
    assert str(info) == "SuperResNet x2 (superres, step 123)"


def test_truncated_checkpoint_is_refused(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    make_checkpoint(path, "style")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(path)


def test_checkpoint_without_a_network_is_refused(tmp_path) -> None:
    path = tmp_path / "state.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"step": 3})
    with pytest.raises(CheckpointError, match=r"holds no network: expected meta\['model'\]"):
        load_model(path)


def test_weights_that_do_not_fit_the_named_network_are_refused(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    model = build_model(SPECS["style"])
    save_checkpoint(path, model.state_dict(), {"model": model_spec("TransformerNet", channels=8, num_residual=1)})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(path)


def test_missing_checkpoint(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.safetensors")


# ------------------------------------------------------------------------------------ tiled inference


@pytest.mark.parametrize(
    ("spec", "tile", "overlap"),
    [
        # overlap / 4 >= the receptive-field radius measured by perturbing one pixel: 6 px for this
        # SuperResNet, 22 px for this TransformerNet, 20 px for this UNet.
        (model_spec("SuperResNet", scale=2, channels=4, num_residual=1, head_kernel_size=3, norm="none"), 64, 32),
        (model_spec("SuperResNet", scale=2, channels=4, num_residual=1, head_kernel_size=3, norm="batch"), 64, 32),
        (model_spec("TransformerNet", channels=4, num_residual=1, norm="batch"), 192, 96),
        (model_spec("UNet", in_channels=3, depth=2, base_channels=4, norm="batch"), 192, 80),
    ],
    ids=["superres-none", "superres-batch", "transformer-batch", "unet-batch"],
)
def test_tiled_equals_whole_without_per_image_statistics(spec, tile, overlap) -> None:
    model = perturbed(build_model(spec))
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(tuple(args[0].shape[-2:])))
    image = torch.rand(1, 3, tile * 3 // 2 + 3, tile * 4 // 3 + 1)  # odd sizes, 2 to 3 tiles a side
    whole = apply_model(model, image, tile=None)
    assert len(calls) == 1
    tiled = apply_model(model, image, tile=tile, overlap=overlap)
    assert len(calls) >= 5  # really tiled: at least 2 x 2 tiles
    assert max(max(c) for c in calls[1:]) <= tile
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-5


def test_tiled_instance_norm_is_close_and_improves_with_larger_tiles() -> None:
    # Instance norm normalises each tile by its own statistics, so tiles cannot match the whole
    # image exactly; at this seed the measured mean differences are 0.041 (tile 64) and 0.018
    # (tile 128), maxima 0.37 and 0.18 (a random-init network on noise: a hard case).
    model = perturbed(build_model(model_spec("TransformerNet", channels=4, num_residual=1)))
    image = torch.rand(1, 3, 200, 200)
    whole = apply_model(model, image, tile=None)
    small = (apply_model(model, image, tile=64, overlap=32) - whole).abs().mean()
    large = (apply_model(model, image, tile=128, overlap=32) - whole).abs().mean()
    assert large < small < 0.05


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "multiple", "scale"),
    [(203, 64, 32, 1, 2), (261, 48, 16, 4, 1), (100, 32, 0, 4, 1), (1000, 96, 32, 16, 3)],
)
def test_blend_weights_sum_to_one_and_tiles_fit(length, tile, overlap, multiple, scale) -> None:
    axis = _plan_axis(length, tile, overlap, multiple, multiple)
    total = torch.zeros(axis.size * scale)
    for k, (start, stop) in enumerate(axis.spans):
        assert start % multiple == 0 and stop % multiple == 0 and stop - start <= tile
        total[start * scale : stop * scale] += _tile_weights(axis, k, scale, torch.device("cpu"))
    assert len(axis.spans) > 1
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)


def test_identity_network_is_reproduced_exactly_through_tiles() -> None:
    # An identity places every tile and blends weights that sum to one: the image comes back.
    class Identity(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    image = torch.rand(2, 3, 70, 45)
    out = apply_model(Identity().eval(), image, tile=16, overlap=8)
    assert torch.allclose(out, image, atol=1e-6)


@pytest.mark.parametrize("task", list(SPECS))
@pytest.mark.parametrize("tile", [None, 16])
def test_odd_sizes_for_each_task(task, tile) -> None:
    model = perturbed(build_model(SPECS[task]))
    image = torch.rand(1, 3, 37, 53)
    out = apply_model(model, image, tile=tile, overlap=8 if tile else 0)
    scale = 2 if task == "superres" else 1
    assert out.shape == (1, 3, 37 * scale, 53 * scale)
    if tile is None:
        torch.testing.assert_close(out, reference(model, image, task, MULTIPLE[task]), atol=1e-6, rtol=0)
    else:
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (7, 2)])
def test_images_smaller_than_the_network_takes(size) -> None:
    model = perturbed(build_model(SPECS["style"]))  # needs at least 8x8
    out = apply_model(model, torch.rand(1, 3, *size))
    assert out.shape == (1, 3, *size) and torch.isfinite(out).all()


def test_bf16_is_close_to_fp32() -> None:
    model = perturbed(build_model(SPECS["restore"]))
    image = torch.rand(1, 3, 32, 32)
    fp32 = apply_model(model, image)
    bf16 = apply_model(model, image, precision="bf16")
    assert bf16.dtype == torch.float32
    assert (bf16 - fp32).abs().max() < 0.05 and not torch.equal(bf16, fp32)


def test_apply_model_rejects_bad_input() -> None:
    model = build_model(SPECS["style"])
    with pytest.raises(InputError, match="training mode"):
        apply_model(model.train(), torch.rand(1, 3, 16, 16))
    model.eval()
    with pytest.raises(InputError, match="far outside"):
        apply_model(model, torch.rand(1, 3, 16, 16) * 255)
    with pytest.raises(InputError, match="channels-last"):
        apply_model(model, torch.rand(1, 16, 16, 3))
    with pytest.raises(InputError, match="twice the overlap"):
        apply_model(model, torch.rand(1, 3, 16, 16), tile=32, overlap=24)
    with pytest.raises(InputError, match="precision"):
        apply_model(model, torch.rand(1, 3, 16, 16), precision="int8")


# ------------------------------------------------------------------------------------------ files


def write_png(path, image: torch.Tensor) -> torch.Tensor:
    save_image(image, path)
    return load_image(path)  # the quantised image the network will see


@pytest.mark.parametrize("task", list(SPECS))
def test_cli_reproduces_the_model_output(tmp_path, task, capsys) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", task)
    image = write_png(tmp_path / "in.png", torch.rand(1, 3, 37, 53))
    code = lossnet.cli.main(
        ["apply", "--model", str(tmp_path / "m.safetensors"), "--input", str(tmp_path / "in.png"),
         "--output", str(tmp_path / "out"), "--tile", "0", "--device", "cpu", "--precision", "fp32"]
    )  # fmt: skip  (the default, auto, may pick bf16 on this CPU: within bf16's error, not one pixel level)
    assert code == 0
    assert f"wrote 1 image to {tmp_path / 'out'}" in capsys.readouterr().out
    written = load_image(tmp_path / "out" / "in.png")
    expected = reference(model, image, task, MULTIPLE[task])
    assert written.shape == expected.shape
    assert (written - expected).abs().max() <= ONE_PIXEL


def test_tiled_file_output_matches_tiled_tensor_output(tmp_path) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", "superres")
    image = write_png(tmp_path / "in.png", torch.rand(1, 3, 50, 41))
    summary = apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", tile=24, overlap=8)
    assert summary.ok and summary.written == [(tmp_path / "in.png", tmp_path / "out" / "in.png")]
    expected = apply_model(model, image, tile=24, overlap=8)
    assert (load_image(tmp_path / "out" / "in.png") - expected).abs().max() <= ONE_PIXEL / 2 + 1e-6


def test_exif_orientation_is_applied(tmp_path) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", "restore")
    stored = Image.fromarray((torch.rand(24, 40, 3) * 255).byte().numpy())  # 40 wide, 24 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "photo.jpg", exif=exif.tobytes(), quality=95)
    upright = load_image(tmp_path / "photo.jpg")
    assert upright.shape[-2:] == (40, 24)

    assert lossnet.cli.main(["apply", "--model", str(tmp_path / "m.safetensors"), "--input",
                             str(tmp_path / "photo.jpg"), "--output", str(tmp_path / "out")]) == 0  # fmt: skip
    with Image.open(tmp_path / "out" / "photo.png") as out:
        assert out.size == (24, 40)  # upright: 24 wide, 40 high
        assert out.getexif().get(0x0112) is None
    written = load_image(tmp_path / "out" / "photo.png")
    assert (written - reference(model, upright, "restore", 4)).abs().max() <= ONE_PIXEL


def test_colorize_takes_grayscale_and_rgb_files(tmp_path) -> None:
    model = make_checkpoint(tmp_path / "m.safetensors", "colorize")
    gray = (torch.rand(20, 28) * 255).byte().numpy()
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    Image.fromarray(gray, mode="L").convert("RGB").save(tmp_path / "gray_rgb.png")
    colour = write_png(tmp_path / "colour.png", torch.rand(1, 3, 20, 28))
    summary = apply_files(tmp_path / "m.safetensors", tmp_path, tmp_path / "out", device="cpu")
    assert summary.ok and len(summary.written) == 3
    out_gray, out_rgb = load_image(tmp_path / "out" / "gray.png"), load_image(tmp_path / "out" / "gray_rgb.png")
    assert torch.equal(out_gray, out_rgb)
    assert out_gray.shape == (1, 3, 20, 28)
    expected = reference(model, colour, "colorize", 4)
    assert (load_image(tmp_path / "out" / "colour.png") - expected).abs().max() <= ONE_PIXEL


def test_folder_with_bad_files(tmp_path, capsys) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "style")
    src = tmp_path / "photos"
    save_image(torch.rand(1, 3, 20, 24), src / "a.png")
    save_image(torch.rand(1, 3, 16, 16), src / "sub" / "b.jpg")
    good = (src / "a.png").read_bytes()
    (src / "corrupt.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    (src / "text.jpg").write_text("not an image at all")
    (src / "notes.txt").write_text("a text file")
    (src / ".hidden.png").write_bytes(good)

    code = lossnet.cli.main(["apply", "--model", str(tmp_path / "m.safetensors"), "--input", str(src),
                             "--output", str(tmp_path / "out"), "--format", "jpg"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")) == [
        "a.jpg", "sub", "sub/b.jpg"]  # fmt: skip
    assert f"failed: {src / 'corrupt.png'}: cannot read" in captured.err
    assert f"failed: {src / 'text.jpg'}: cannot read" in captured.err
    assert "wrote 2 images" in captured.out and "2 failed, 1 non-image files skipped" in captured.out
    assert "Traceback" not in captured.err


def test_apply_files_summary(tmp_path) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "style")
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "in" / "x.png")
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "in" / "x.jpg")  # the same output name
    (tmp_path / "in" / "readme.md").write_text("#")
    summary = apply_files(tmp_path / "m.safetensors", [tmp_path / "in"], tmp_path / "out", device="cpu")
    assert summary.written == [(tmp_path / "in" / "x.jpg", tmp_path / "out" / "x.png")]
    assert [(p.name, "x.jpg's output" in reason) for p, reason in summary.failed] == [("x.png", True)]
    assert summary.skipped == [tmp_path / "in" / "readme.md"]
    assert summary.model.task == "style" and not summary.ok


def test_output_inside_the_input_folder_is_not_reprocessed(tmp_path) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "style")
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "in" / "x.jpg")
    for _ in range(2):
        summary = apply_files(tmp_path / "m.safetensors", tmp_path / "in", tmp_path / "in" / "out")
        assert [target.relative_to(tmp_path) for _, target in summary.written] == [tmp_path.joinpath("in/out/x.png")
                                                                                   .relative_to(tmp_path)]  # fmt: skip


def test_inputs_are_never_overwritten(tmp_path, capsys) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "style")
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "in" / "x.png")
    before = (tmp_path / "in" / "x.png").read_bytes()
    code = lossnet.cli.main(["apply", "--model", str(tmp_path / "m.safetensors"), "--input", str(tmp_path / "in"),
                             "--output", str(tmp_path / "in")])  # fmt: skip
    assert code == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert (tmp_path / "in" / "x.png").read_bytes() == before


def test_cli_truncated_checkpoint_is_a_usage_error(tmp_path, capsys) -> None:
    path = tmp_path / "m.safetensors"
    make_checkpoint(path, "style")
    path.write_bytes(path.read_bytes()[:1000])
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "x.png")
    code = lossnet.cli.main(["apply", "--model", str(path), "--input", str(tmp_path / "x.png"),
                             "--output", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "truncated, corrupt or not a lossnet checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_non_model_checkpoint_is_a_usage_error(tmp_path, capsys) -> None:
    save_checkpoint(tmp_path / "state.safetensors", {"w": torch.ones(2)}, {"step": 3})
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "x.png")
    code = lossnet.cli.main(["apply", "--model", str(tmp_path / "state.safetensors"), "--input",
                             str(tmp_path / "x.png"), "--output", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert "holds no network" in capsys.readouterr().err


def test_cli_missing_input_is_a_usage_error(tmp_path, capsys) -> None:
    make_checkpoint(tmp_path / "m.safetensors", "style")
    code = lossnet.cli.main(["apply", "--model", str(tmp_path / "m.safetensors"), "--input",
                             str(tmp_path / "nope.png"), "--output", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert "no such image file or folder" in capsys.readouterr().err


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_the_source_colour_profile_is_kept(tmp_path, suffix: str) -> None:
    """The network maps pixel values in the source's colour space, so its ICC profile goes with the output."""
    make_checkpoint(tmp_path / "m.safetensors", "restore")
    profile = _srgb_profile()
    assert profile[16:20] == b"RGB "
    Image.fromarray((torch.rand(16, 20, 3) * 255).byte().numpy()).save(tmp_path / "in.png", icc_profile=profile)
    summary = apply_files(tmp_path / "m.safetensors", tmp_path / "in.png", tmp_path / "out", format=suffix)
    assert summary.ok
    with Image.open(tmp_path / "out" / f"in.{suffix}") as out:
        assert out.info.get("icc_profile") == profile


def test_a_profile_that_does_not_fit_the_output_is_left_out(tmp_path) -> None:
    """A gray profile cannot describe colorize's RGB output; a file without a profile gets none."""
    make_checkpoint(tmp_path / "m.safetensors", "colorize")
    gray_profile = bytearray(_srgb_profile())
    gray_profile[16:20] = b"GRAY"  # the colour-space field of the header is all save_image reads
    gray = Image.fromarray((torch.rand(16, 20) * 255).byte().numpy(), mode="L")
    gray.save(tmp_path / "gray.png", icc_profile=bytes(gray_profile))
    gray.save(tmp_path / "plain.png")
    assert apply_files(tmp_path / "m.safetensors", tmp_path, tmp_path / "out").ok
    for name in ("gray.png", "plain.png"):
        with Image.open(tmp_path / "out" / name) as out:
            assert out.mode == "RGB" and "icc_profile" not in out.info


def test_tile_progress_is_reported_for_every_tile(tmp_path) -> None:
    """``on_tile(done, total)`` follows each tile; apply_files adds the source file (the CLI's tile bar)."""
    net = build_model(SPECS["style"]).eval()
    calls: list[tuple[int, int]] = []
    apply_model(net, torch.rand(1, 3, 40, 70), tile=24, overlap=8, on_tile=lambda k, n: calls.append((k, n)))
    total = calls[0][1]
    assert total > 4 and calls == [(k, total) for k in range(1, total + 1)]

    make_checkpoint(tmp_path / "m.safetensors", "style")
    write_png(tmp_path / "a.png", torch.rand(1, 3, 40, 70))
    write_png(tmp_path / "b.png", torch.rand(1, 3, 16, 16))
    seen: list[tuple[str, int, int]] = []
    apply_files(
        tmp_path / "m.safetensors", [tmp_path / "a.png", tmp_path / "b.png"], tmp_path / "out", tile=24, overlap=8,
        on_tile=lambda source, done, total: seen.append((source.name, done, total)),
    )  # fmt: skip
    assert [s for s in seen if s[0] == "a.png"] == [("a.png", k, total) for k in range(1, total + 1)]
    assert [s for s in seen if s[0] == "b.png"] == [("b.png", 1, 1)]  # fits in one tile
