"""style_multi end to end on tiny networks: the style images, the training batches, the card, apply --style."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lossnet.checkpoint import load_checkpoint
from lossnet.cli import main
from lossnet.errors import InputError
from lossnet.inference import apply_files, load_model
from lossnet.train import train
from lossnet.train.config import model_kwargs, task_config
from lossnet.train.styles import style_sources


def test_a_run_trains_every_style_and_records_them(tiny, tmp_path) -> None:
    config = tiny("style_multi", steps=4)
    assert config.style_image == ["brick", "ihc"] and model_kwargs(config)["num_styles"] == 2
    result = train(config)
    card = load_checkpoint(result.model).meta["card"]
    assert card["styles"] == ["brick", "ihc"] and card["task"] == "style_multi"
    assert len(json.loads((result.out_dir / "run.json").read_text())["style_images"]) == 2
    assert all(np.isfinite(row["total"]) for row in result.history)
    net = load_model(result.model)
    grads = [n.weight for n in net.conditional_norms]
    assert all(w.shape[0] == 2 for w in grads)
    assert any(not torch.equal(w[0], w[1]) for w in grads)  # each style's parameters moved on their own

    photo = tmp_path / "in" / "a.png"
    photo.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(photo)
    with pytest.raises(InputError, match=r"holds 2 styles \(0 brick, 1 ihc\); pick one with --style K"):
        apply_files(result.model, [photo], tmp_path / "none")
    for k in (0, 1):
        assert apply_files(result.model, [photo], tmp_path / f"s{k}", style=k, tile=None).ok
    a, b = (np.asarray(Image.open(tmp_path / f"s{k}" / "a.png"), dtype=np.float64) for k in (0, 1))
    assert np.abs(a - b).max() > 0  # two styles, two images
    assert apply_files(result.model, [photo], tmp_path / "mix", style=[0.5, 0.5], tile=None).ok
    assert main(["apply", "--model", str(result.model), str(photo), "--out", str(tmp_path / "cli"), "--style", "1",
                 "--precision", "fp32", "--tile", "0"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cli" / "a.png")), b.astype(np.uint8))
    assert main(["info", str(result.model)]) == 0


def test_style_images_by_repeated_flag_or_folder(tmp_path, capsys) -> None:
    for name in ("b.png", "a.png"):
        Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(tmp_path / name)
    assert style_sources(str(tmp_path)) == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    argv = ["train", "style_multi", "--style-image", "grass", "--style-image", str(tmp_path), "--print-config"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["style_image"] == ["grass", str(tmp_path)] and printed["task_options"] == {}
    assert model_kwargs(task_config("style_multi", style_image=["grass", str(tmp_path)]))["num_styles"] == 3


def test_the_plain_style_task_takes_one_style_image(tiny, tmp_path) -> None:
    with pytest.raises(InputError, match="this task trains one style and got 2 style images"):
        train(tiny("style", style_image=["brick", "grass"]))
    with pytest.raises(InputError, match="needs model MultiStyleNet"):
        model_kwargs(task_config("style_multi", model="TransformerNet"))


def test_the_per_style_parameters_learn_at_their_own_rate_and_keep_it_through_a_resume(tiny, tmp_path) -> None:
    """style_lr_scale: the conditional norms' scales and shifts in a second group at that multiple of lr, the rest
    shared; a resume that changes lr keeps the multiple; a scale of 1 keeps one group (every other task's)."""
    from lossnet.models.multi_style_net import MultiStyleNet
    from lossnet.train.schedules import OneCycle, restart_schedule
    from lossnet.train.step import make_optimizer

    net = MultiStyleNet(num_styles=2, channels=4, num_residual=1)
    config = tiny("style_multi").replace(lr=2e-3, style_lr_scale=10.0)
    opt = make_optimizer(config, net.parameters(), net.style_parameters())
    shared, style = opt.param_groups
    assert {id(p) for p in style["params"]} == {id(p) for p in net.style_parameters()}
    assert len(shared["params"]) + len(style["params"]) == len(list(net.parameters()))
    assert (shared["lr"], style["lr"]) == (2e-3, pytest.approx(2e-2))
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, OneCycle(10))
    restart_schedule(scheduler, lambda: OneCycle(10), 1e-3)  # a resume with --lr 1e-3
    assert [g["lr"] / g["initial_lr"] for g in opt.param_groups] == [pytest.approx(1 / 25)] * 2
    assert [g["initial_lr"] for g in opt.param_groups] == [1e-3, pytest.approx(1e-2)]
    assert len(make_optimizer(config.replace(style_lr_scale=1.0), net.parameters(), net.style_parameters()).param_groups) == 1
    with pytest.raises(InputError, match="style_lr_scale must be a finite number > 0"):
        config.replace(style_lr_scale=0.0)

    # A run: after 3 Adam steps the per-style parameters moved ~10x farther than at the shared rate.
    moved = {}
    for scale in (1.0, 10.0):
        out = tmp_path / f"scale{scale:g}"
        result = train(tiny("style_multi", steps=3, lr=1e-3, style_lr_scale=scale, out_dir=str(out), val_every=3))
        trained = load_model(result.model)
        start = [torch.ones_like(p) if i % 2 == 0 else torch.zeros_like(p) for i, p in enumerate(trained.style_parameters())]
        moved[scale] = max(float((p.detach() - p0).abs().max()) for p, p0 in zip(trained.style_parameters(), start))
    assert 5 * moved[1.0] < moved[10.0] < 15 * moved[1.0], moved
