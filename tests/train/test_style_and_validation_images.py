"""Style runs report style and content losses on validation and show the style image; tiny validation images fail."""

import csv
import json
import logging

import pytest
import torch
from PIL import Image

from lossnet.data.defaults import default_image_path
from lossnet.data.io import load_image, resize_longer_side, save_image, to_pil
from lossnet.errors import InputError
from lossnet.train.loop import train


def test_style_validation_reports_the_loss_terms_and_shows_the_style(tiny, caplog):
    config = tiny("style", steps=2, val_every=2)
    with caplog.at_level(logging.INFO, logger="lossnet"):
        result = train(config)
    out = result.out_dir
    with open(out / "val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "content", "style", "tv", "total"]  # no PSNR against the content image
    row = {k: float(v) for k, v in rows[0].items()}
    assert row["content"] > 0 and row["style"] > 0
    assert row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"], rel=1e-5)

    assert json.loads((out / "run.json").read_text())["style_image"] == "default 'brick' (scikit-image)"
    assert any("style image: default 'brick' (scikit-image)" in r.getMessage() for r in caplog.records)

    # The sheet's third column is the style image (contact_sheet: 6 px padding, 24 px title, 192 px cells; the
    # first row is as tall as its tallest image, the 64 px style image beside 32 px validation images).
    style = to_pil(resize_longer_side(load_image(default_image_path("brick")), config.style_size))
    sheet = Image.open(out / "samples" / "step_0000002.png").convert("RGB")
    pad, top, cell = 6, 24, 192
    assert style.height == config.style_size > config.val_size
    x = pad + 2 * (cell + pad) + (cell - style.width) // 2
    y = top + pad
    shown = sheet.crop((x, y, x + style.width, y + style.height))
    assert shown.tobytes() == style.tobytes()
    assert sheet.width == 3 * (cell + pad) + pad


def test_a_validation_image_too_small_for_val_size_is_refused(tiny, tmp_path):
    """Before, a 16 px validation image was upscaled to the crop and scored a meaningless 64.5 dB."""
    save_image(torch.rand(1, 3, 16, 20), tmp_path / "val" / "tiny.png")
    config = tiny("superres", val_data=str(tmp_path / "val"), val_size=256, image_size=None)
    with pytest.raises(InputError) as err:
        train(config)
    message = str(err.value)
    assert "tiny.png is 20x16 pixels" in message
    assert "64 px" in message and "--val-size 256 at --scale 4" in message  # 256 / 4
    assert "--val-size 64 or less" in message and "--val-data" in message
    assert not (tmp_path / "superres").exists()  # refused before anything was written
    # Upsizing with --image-size adds no real pixels, so it does not help.
    with pytest.raises(InputError, match="tiny.png is 20x16 pixels"):
        train(config.replace(image_size=512))
    # Large enough for the network's input (16 >= 64 / 4): accepted.
    assert train(config.replace(val_size=64, steps=1, val_every=1)).val["psnr"] > 0


@pytest.mark.parametrize("task", ["superres", "restore", "colorize"])
def test_validation_logs_the_baseline_beside_the_network(tiny, task, caplog):
    """val.csv and the log line carry the baseline's scores on the same pairs, scored the same way."""
    from lossnet.evaluation.scoring import headline_metrics, score
    from lossnet.tasks import TASKS
    from lossnet.train.validation import validation_pairs
    from lossnet.train.inputs import image_dataset

    config = tiny(task, steps=2, val_every=2)
    with caplog.at_level(logging.INFO, logger="lossnet"):
        result = train(config)
    with open(result.out_dir / "val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "psnr", "ssim", "baseline_psnr", "baseline_ssim"]

    # Independently: the task's baseline on the run's own validation pairs, through the shared scorer.
    t = TASKS[task]
    pairs = validation_pairs(image_dataset(config, None, "val", config.val_size, False, "val-data"), config)
    base = torch.cat([t.baseline(x, config.scale) for x, _ in pairs])
    psnr, ssim = headline_metrics(t)
    expected = score(t, base, torch.cat([y for _, y in pairs]), scale=config.scale, metrics=[psnr, ssim])
    assert float(rows[0]["baseline_psnr"]) == pytest.approx(float(expected[psnr.key]), abs=1e-4)
    assert float(rows[0]["baseline_ssim"]) == pytest.approx(float(expected[ssim.key]), abs=1e-4)
    name = {"superres": "bicubic", "restore": "JPEG", "colorize": "grey"}[task]
    assert any(f"({name} {float(rows[0]['baseline_psnr']):.2f})" in r.getMessage() for r in caplog.records)
