"""Applying networks to files and folders, and the ``apply`` command: lossnet.inference.files."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import lossnet.cli
from lossnet.checkpoint import save_checkpoint
from lossnet.cli import apply as apply_cli
from lossnet.data.io import load_image, save_image
from lossnet.errors import InputError, InputTypeError
from lossnet.inference import apply_files, apply_model
from lossnet.models import build_model
from tests.inference.checkpoints import ONE_PIXEL, SPECS, make_checkpoint, reference, write_png


@pytest.fixture(autouse=True)
def with_apply_command(monkeypatch: pytest.MonkeyPatch) -> None:
    if apply_cli not in lossnet.cli.COMMAND_MODULES:
        monkeypatch.setattr(lossnet.cli, "COMMAND_MODULES", (*lossnet.cli.COMMAND_MODULES, apply_cli))


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


@pytest.mark.parametrize("name", ["out.png", "sub/out.JPEG"])
def test_out_naming_an_image_file_writes_that_file_for_one_input(tmp_path, capsys, name: str) -> None:
    """``--out x.png`` for one image writes x.png (a folder named x.png was made before), in the suffix's format,
    with the same pixels as a folder output, and leaves nothing else beside it."""
    make_checkpoint(tmp_path / "m.safetensors", "style")
    save_image(torch.rand(1, 3, 16, 20), tmp_path / "in" / "x.png")
    base = ["apply", "--model", str(tmp_path / "m.safetensors"), str(tmp_path / "in" / "x.png"), "--quality", "100"]
    assert lossnet.cli.main([*base, "--out", str(tmp_path / "folder"), "--format", "jpg"]) == 0
    assert lossnet.cli.main([*base, "--out", str(tmp_path / name)]) == 0
    assert f"wrote 1 image to {tmp_path / name} " in capsys.readouterr().out
    out = tmp_path / name
    assert out.is_file() and Image.open(out).format == ("PNG" if name.endswith(".png") else "JPEG")
    if name.endswith(".png"):  # lossless: the folder output's JPEG differs, so compare with a PNG folder run
        assert lossnet.cli.main([*base, "--out", str(tmp_path / "pngs")]) == 0
        assert torch.equal(load_image(out), load_image(tmp_path / "pngs" / "x.png"))
    else:
        assert out.read_bytes() == (tmp_path / "folder" / "x.jpg").read_bytes()
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []  # no scratch folder left


@pytest.mark.parametrize(
    ("inputs", "out", "flags", "message"),
    [
        (["in/x.png", "in/y.png"], "out.png", [], "apply writes one image per input and got 2"),
        (["in"], "out.png", [], "got the folder"),
        (["in/x.png"], "out.jpg", ["--format", "png"], "--format png does not match --out"),
        (["in/x.png"], "in/x.png", [], "is the input itself"),
        (["in/x.png"], "out.webp", [], None),  # not a suffix apply writes: a folder named out.webp, as before
    ],
)
def test_out_naming_a_file_is_refused_where_it_cannot_be_one(tmp_path, capsys, monkeypatch, inputs, out, flags,
                                                             message) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    make_checkpoint(tmp_path / "m.safetensors", "style")
    for name in ("x.png", "y.png"):
        save_image(torch.rand(1, 3, 16, 16), tmp_path / "in" / name)
    before = (tmp_path / "in" / "x.png").read_bytes()
    code = lossnet.cli.main(["apply", "--model", "m.safetensors", *inputs, "--out", out, *flags])
    if message is None:
        assert code == 0 and (tmp_path / out / "x.png").is_file()
        return
    assert code == 2 and message in capsys.readouterr().err
    assert (tmp_path / "in" / "x.png").read_bytes() == before
    assert not (tmp_path / out).exists() or out == "in/x.png"


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


def test_tile_progress_is_reported_for_every_tile_of_every_file(tmp_path) -> None:
    """apply_files adds the source file to ``on_tile`` (the CLI's tile bar)."""
    calls: list[tuple[int, int]] = []
    apply_model(build_model(SPECS["style"]).eval(), torch.rand(1, 3, 40, 70), tile=24, overlap=8,
                on_tile=lambda k, n: calls.append((k, n)))  # fmt: skip
    total = calls[-1][1]
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


@pytest.mark.parametrize(
    ("precision", "error", "match"),
    [
        ("int8", InputError, r"unknown precision 'int8'; expected one of \['auto', 'fp32', 'bf16', 'fp16'\]"),
        ("FP32", InputError, "Did you mean 'fp32'"),
        (None, InputTypeError, "precision must be a string"),
    ],
)
def test_a_bad_precision_fails_before_any_file_is_read(tmp_path, precision, error, match) -> None:
    """Not one failure per file: the option is refused before the checkpoint or an image is opened."""
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "in" / "x.png")
    missing = tmp_path / "no-such-checkpoint.safetensors"  # would be a FileNotFoundError if it were read
    with pytest.raises(error, match=match):
        apply_files(missing, tmp_path / "in", tmp_path / "out", precision=precision)
    with pytest.raises(error, match=match):
        apply_files(build_model(SPECS["style"]).eval(), tmp_path / "in", tmp_path / "out", precision=precision)
    assert not (tmp_path / "out").exists()


def test_a_bad_device_fails_before_any_file_is_read(tmp_path) -> None:
    save_image(torch.rand(1, 3, 16, 16), tmp_path / "x.png")
    with pytest.raises(InputError, match="unknown device 'gpu'"):
        apply_files(tmp_path / "no-such-checkpoint.safetensors", tmp_path / "x.png", tmp_path / "out", device="gpu")
