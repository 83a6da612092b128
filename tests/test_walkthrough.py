"""The README's "Train on your own photos" walkthrough, end to end, on a messy folder.

The folder mixes what a user's photos folder holds: JPEG, PNG with transparency, a 16-bit
PNG, a GIF, a grey image, a text file and a corrupt "photo". The commands are the README's,
with the run shrunk to seconds (tiny network, few steps, small crops).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lossnet.cli import main
from lossnet.data.defaults import default_image_path

README = Path(__file__).resolve().parents[1] / "README.md"


def messy_folder(root: Path) -> Path:
    photos = root / "photos"
    (photos / "holiday").mkdir(parents=True)
    coffee = Image.open(default_image_path("coffee")).convert("RGB")
    rocket = Image.open(default_image_path("rocket")).convert("RGB")
    coffee.save(photos / "coffee.jpg", quality=90)
    rgba = rocket.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rocket.size))
    rgba.save(photos / "holiday" / "rocket.png")
    grey16 = (np.asarray(coffee.convert("L"), dtype=np.uint16) * 257 + 7).astype(np.uint16)
    Image.fromarray(grey16).save(photos / "holiday" / "coffee16.png")
    rocket.convert("P").save(photos / "rocket.gif")
    coffee.convert("L").save(photos / "grey.png")
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    return photos


def readme_commands() -> list[str]:
    """The shell lines of the README's walkthrough block."""
    text = README.read_text()
    section = text[text.index("## Train on your own photos") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.startswith("lossnet ")]


@pytest.mark.slow
def test_readme_walkthrough_on_a_messy_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    messy_folder(tmp_path)
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == ["train", "train", "apply", "eval"]
    tiny = ["--model-kwargs", "channels=8,num_residual=1,head_kernel_size=3", "--loss-weights", "none"]
    outputs = []
    for command in commands:
        argv = command.split()[1:]
        if argv[0] == "train":
            argv += tiny + ["--val-every", "2", "--checkpoint-every", "2", "--log-every", "1"]
        expected = 1 if argv[0] == "apply" else 0  # apply: the broken photo fails, the others are written
        assert main(argv) == expected, command
        outputs.append(capsys.readouterr())
    assert "failed: photos/broken.jpg" in outputs[2].err

    run = tmp_path / "runs" / "photos"
    # the first train stopped early and said how to go on; the second went on to the end
    assert "lossnet train superres --resume" in outputs[0].out + outputs[0].err
    summary = json.loads((run / "run.json").read_text())
    assert summary["step"] == summary["steps"] == 6
    skipped = {Path(s["file"]).name for s in summary["skipped_files"]}
    assert skipped == {"broken.jpg"}  # named, with its reason; the text file is not an image at all
    assert summary["ignored_files"] == 1
    # apply wrote one output per readable image, keeping the folder layout, alpha and bit depth
    out = tmp_path / "upscaled"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["coffee.png", "grey.png", "holiday/coffee16.png", "holiday/rocket.png", "rocket.png"]
    with Image.open(out / "holiday" / "rocket.png") as im:
        assert im.mode == "RGBA" and im.size == tuple(4 * s for s in Image.open(default_image_path("rocket")).size)
    with Image.open(out / "holiday" / "coffee16.png") as im:
        assert im.mode.startswith("I")  # 16-bit grey stays 16-bit grey
    with Image.open(out / "grey.png") as im:
        assert im.mode == "L"
    # eval scored the model and bicubic on the same folder
    table = (tmp_path / "outputs" / "eval" / "eval.md").read_text()
    assert "bicubic" in table and "photos" in table
