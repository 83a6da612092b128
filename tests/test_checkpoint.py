from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import lossnet
from lossnet.errors import CheckpointError
from lossnet.checkpoint import (
    ModelInfo,
    load_checkpoint,
    model_info,
    model_meta,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _train(model: nn.Module, opt: torch.optim.Optimizer, sched, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        x = torch.randn(4, 3)  # draws from the global RNG, so RNG state matters for resume
        loss = (model(x) - x.sum(1, keepdim=True)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _setup():
    model = nn.Linear(3, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.95))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    return model, opt, sched


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path) -> None:
    torch.manual_seed(0)
    model, opt, sched = _setup()
    full = _train(model, opt, sched, 10)

    torch.manual_seed(0)
    model, opt, sched = _setup()
    first = _train(model, opt, sched, 4)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rng_state()}
    save_checkpoint(tmp_path / "c.safetensors", model.state_dict(), {"step": 4}, state)
    _train(model, opt, sched, 3)  # the run goes on and diverges from the checkpoint

    ckpt = load_checkpoint(tmp_path / "c.safetensors")
    model, opt, sched = _setup()
    model.load_state_dict(ckpt.model_state)
    opt.load_state_dict(ckpt.train_state["optimizer"])
    sched.load_state_dict(ckpt.train_state["scheduler"])
    set_rng_state(ckpt.train_state["rng"])
    assert ckpt.meta["step"] == 4
    assert first + _train(model, opt, sched, 6) == full


def test_nested_state_round_trips_with_types(tmp_path) -> None:
    state = {
        "ints": {1: torch.arange(3), 2: (0.5, "a", None, True)},
        "list": [torch.ones(2, 2, dtype=torch.bfloat16), [1, 2]],
        "array": np.arange(4, dtype=np.uint32),
    }
    save_checkpoint(tmp_path / "c.safetensors", {}, None, state)
    back = load_checkpoint(tmp_path / "c.safetensors").train_state
    assert set(back["ints"]) == {1, 2}
    assert torch.equal(back["ints"][1], torch.arange(3))
    assert back["ints"][2] == (0.5, "a", None, True)
    assert back["list"][0].dtype == torch.bfloat16 and back["list"][1] == [1, 2]
    assert back["array"].dtype == np.uint32 and back["array"].tolist() == [0, 1, 2, 3]


def test_rng_state_round_trip_restores_every_generator(tmp_path) -> None:
    save_checkpoint(tmp_path / "c.safetensors", {}, None, {"rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_checkpoint(tmp_path / "c.safetensors").train_state["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_rng_state_keeps_the_generators_of_a_modules_submodules(tmp_path) -> None:
    """A submodule with its own generator (a sliced-Wasserstein loss's directions) is kept by name and restored; a
    state saved without it (an older checkpoint) leaves the submodule's generator where it is."""
    from lossnet import SlicedWassersteinLoss

    loss = nn.ModuleDict({"sw": SlicedWassersteinLoss(directions=4)})
    x, y = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    loss["sw"](x, y)  # move its generator off the seed
    save_checkpoint(tmp_path / "c.safetensors", {}, None, {"rng": rng_state(loss)})
    expected = loss["sw"](x, y)
    state = load_checkpoint(tmp_path / "c.safetensors").train_state["rng"]
    assert list(state["modules"]) == ["sw"]
    set_rng_state(state, loss)
    assert torch.equal(loss["sw"](x, y), expected)
    older = {k: v for k, v in state.items() if k != "modules"}
    before = loss["sw"].rng_state()
    set_rng_state(older, loss)
    assert torch.equal(loss["sw"].rng_state(), before)


def test_meta_records_format_and_version(tmp_path) -> None:
    save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(1)}, {"config": {"lr": 1e-3}, "weights": "hed"})
    meta = load_checkpoint(tmp_path / "c.safetensors").meta
    assert meta["format"] == "lossnet-checkpoint-1" and meta["lossnet_version"] == lossnet.__version__
    assert meta["config"] == {"lr": 1e-3} and meta["weights"] == "hed"


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_checkpoint_is_refused_clearly(tmp_path, keep: float) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.randn(64, 64)}, {"step": 1}, {"m": torch.ones(9)})
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated, corrupt or not a lossnet checkpoint"):
        load_checkpoint(path)


def test_foreign_files_are_refused(tmp_path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 7)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.ones(1)}, {"step": 1})
    import safetensors.torch

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill while the new checkpoint is being serialised

    monkeypatch.setattr(safetensors.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": torch.zeros(1)}, {"step": 2})
    assert load_checkpoint(path).meta["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_unstorable_objects_raise_and_write_nothing(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="cannot store a object"):
        save_checkpoint(tmp_path / "c.safetensors", {}, None, {"bad": object()})
    assert not list(tmp_path.iterdir())


# The metadata schema: written by model_meta (the trainer), read by model_info (everyone else).


def test_model_meta_round_trips_through_a_checkpoint(tmp_path) -> None:
    spec = {"name": "SuperResNet", "kwargs": {"scale": 2, "channels": 4}}
    meta = model_meta(spec, task="superres", scale=2, step=12, config={"lr": 0.1}, loss_weights="hed")
    assert set(meta) == {"model", "task", "scale", "step", "config", "loss_weights", "card"}
    save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(1)}, meta)
    info = model_info(load_checkpoint(tmp_path / "m.safetensors").meta, tmp_path / "m.safetensors")
    assert info == ModelInfo("SuperResNet", {"scale": 2, "channels": 4}, "superres", 2, 12, "hed")
    assert info.spec == spec and str(info) == "SuperResNet x2 (superres, step 12)"


@pytest.mark.parametrize(
    ("meta", "scale"),
    [
        ({"model": {"name": "UNet"}, "scale": None}, None),  # not recorded: the network's default decides
        ({"model": {"name": "SuperResNet", "kwargs": {"scale": 8}}}, 8),  # from the spec
        ({"model": {"name": "SuperResNet", "kwargs": {"scale": 8}}, "scale": 2}, 2),  # the metadata first
    ],
)
def test_model_info_scale(meta, scale) -> None:
    info = model_info(meta, "m.safetensors")
    assert info.scale == scale and info.kwargs == meta["model"].get("kwargs", {})
    assert str(info) == info.name + (f" x{scale}" if scale not in (None, 1) else "")


@pytest.mark.parametrize("meta", [{"step": 3}, {"model": "UNet"}, {"model": {"kwargs": {}}}])
def test_model_info_without_a_network_says_what_it_expected(meta) -> None:
    with pytest.raises(CheckpointError, match=r"m.safetensors is a lossnet checkpoint but holds no network: "
                                              r"expected meta\['model'\] = \{'name'"):  # fmt: skip
        model_info(meta, "m.safetensors")
