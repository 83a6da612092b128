"""Loading trained networks from checkpoints: lossnet.inference.loading."""

from __future__ import annotations

import pytest
import torch

from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.errors import CheckpointError, InputError
from lossnet.inference import load_model, load_model_with_info, read_model_info
from lossnet.models import build_model, model_spec
from tests.inference.checkpoints import SPECS, make_checkpoint


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


def test_a_scale_left_to_the_constructor_default_is_read_from_the_network(tmp_path) -> None:
    path = tmp_path / "sr.safetensors"
    spec = model_spec("SuperResNet", channels=4, num_residual=1)  # scale: the constructor's default, 4
    save_checkpoint(path, build_model(spec).state_dict(), {"model": spec})
    assert read_model_info(path).scale == 4 and str(read_model_info(path)) == "SuperResNet x4"
    model, info = load_model_with_info(path)
    assert info == read_model_info(path) and model.scale == 4


def test_metadata_whose_scale_is_not_the_networks_is_refused(tmp_path) -> None:
    path = tmp_path / "sr.safetensors"
    save_checkpoint(path, build_model(SPECS["superres"]).state_dict(), model_meta(SPECS["superres"], scale=4))
    with pytest.raises(CheckpointError, match="says scale 4 but its network upscales by 2"):
        load_model(path)


def test_a_network_this_lossnet_cannot_build_is_refused(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, {"w": torch.ones(1)}, model_meta({"name": "ResNet9000", "kwargs": {}}))
    with pytest.raises(CheckpointError, match="names a network this lossnet cannot build"):
        load_model(path)


def test_a_bad_device_is_refused_before_the_file_is_read(tmp_path) -> None:
    with pytest.raises(InputError, match="unknown device 'gpu'"):
        load_model(tmp_path / "nope.safetensors", device="gpu")
