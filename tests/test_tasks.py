"""The task registry: one entry per task, read by training, evaluation and the demo."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import lossnet.data
import lossnet.train
from lossnet.data.content_style import STYLE_TO_CROP
from lossnet.data.degradations import downscale, jpeg_compress
from lossnet.data.pairs import StyleAnyOptions
from lossnet.errors import InputError
from lossnet.losses.presets import PRESETS
from lossnet.models import AdaINNet, StyledAdaIN, SuperResNet, TransformerNet, UNet
from lossnet.models.registry import MODELS
from lossnet.tasks import EVAL_TASKS, TASKS, get_task, guess_task
from lossnet.train.config import PAPER_PRESET, PERCEPTUAL_PRESET, TASK_MODEL_DEFAULTS, TASK_PRESETS, TrainConfig


def test_every_task_is_one_entry_that_the_old_tables_read():
    assert set(TASKS) == {"superres", "restore", "colorize", "style", "style_multi", "style_any"}
    # make_pair's names: style_multi reuses style's maker, style_any's pairs need its options
    assert set(lossnet.data.TASKS) == set(TASKS) - {"style_multi", "style_any"}
    assert lossnet.train.TASK_PRESETS is TASK_PRESETS
    for name, task in TASKS.items():
        assert task.name == name
        assert TASK_PRESETS[name] == dict(task.recipe) and PERCEPTUAL_PRESET[name] == task.recipe_loss
        assert PAPER_PRESET[name] == task.paper_loss
        assert task.paper_loss in PRESETS and task.recipe_loss in PRESETS and task.model in MODELS
        assert TASK_MODEL_DEFAULTS.get(name, {}) == dict(task.model_defaults)
        TrainConfig(task=name, **task.recipe)  # every recipe is a valid config
    assert EVAL_TASKS == ("superres", "colorize", "restore")
    # the recipes that depart from their paper's loss, each because the paper's fails on the offline trunk
    departing = {"style", "style_multi", "superres", "colorize"}
    assert {n for n, t in TASKS.items() if t.recipe_loss != t.paper_loss} == departing


def test_the_recipes_are_the_papers():
    assert TASK_PRESETS["superres"]["model"] == "SuperResNet" and TASK_PRESETS["style"]["steps"] == 40_000
    assert TASKS["colorize"].recipe == TASKS["restore"].recipe  # fastai lesson 7, both
    assert TASKS["colorize"].model_defaults == {"residual": True}


def test_scoring_rule():
    assert [TASKS[t].shave(4) for t in ("superres", "restore", "colorize")] == [4, 0, 0]
    assert TASKS["superres"].y_channel and not TASKS["restore"].y_channel
    assert not TASKS["style"].has_truth and TASKS["style"].needs_style_image
    assert {t for t in TASKS if TASKS[t].colour_output} == {"colorize", "style", "style_multi", "style_any"}


def test_baselines_against_independent_computations():
    x = torch.rand(1, 3, 32, 48)
    low, truth = TASKS["superres"].pair(x, scale=4)
    assert torch.equal(low, downscale(x, 4))
    up = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.allclose(TASKS["superres"].baseline(low, 4), up)
    inp, _ = TASKS["restore"].pair(x, jpeg_quality=20, text=False)
    assert torch.equal(inp, jpeg_compress(x, 20)) and torch.equal(TASKS["restore"].baseline(inp), inp)
    grey, _ = TASKS["colorize"].pair(x)
    expected = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(TASKS["colorize"].baseline(grey), expected)
    options = {"superres": {"scale": 4}, "restore": {"jpeg_quality": 30}}
    assert [TASKS[t].method_name(options.get(t)) for t in TASKS] == [None, "bicubic", "grey", "JPEG q30", None, None]
    with pytest.raises(InputError, match="no baseline"):
        TASKS["style"].baseline(x)


def test_network_constraints():
    assert TASKS["superres"].network_kwargs("SuperResNet", {"scale": 2}) == {"scale": 2}
    assert TASKS["restore"].network_kwargs("UNet") == {"in_channels": 3}
    assert TASKS["style"].network_kwargs("TransformerNet") == {}
    needs = r"task 'superres' needs model SuperResNet or Compact \(the output is larger\)"
    with pytest.raises(InputError, match=needs):
        TASKS["superres"].network_kwargs("UNet")
    with pytest.raises(InputError, match="SuperResNet upscales, so it only fits task 'superres'"):
        TASKS["style"].network_kwargs("SuperResNet")
    with pytest.raises(InputError, match="task 'colorize' takes one input channel, so it needs model UNet"):
        TASKS["colorize"].network_kwargs("TransformerNet")
    TASKS["colorize"].check_model(UNet(in_channels=1, depth=1))
    with pytest.raises(InputError, match="takes one input channel; the network takes 3 input channels"):
        TASKS["colorize"].check_model(UNet(depth=1))
    with pytest.raises(InputError, match="keeps the size, but the network upscales by 2"):
        TASKS["restore"].check_model(SuperResNet(scale=2, channels=4, num_residual=1))


def test_guess_task():
    assert guess_task(SuperResNet(scale=2, channels=4, num_residual=1)) == "superres"
    assert guess_task(UNet(in_channels=1, depth=1)) == "colorize"
    assert guess_task(TransformerNet(channels=4, num_residual=1)) == "style"
    assert guess_task(UNet(depth=1)) is None
    net = AdaINNet("vgg11", weights=None, layer="relu1_1")
    assert guess_task(net) == guess_task(StyledAdaIN(net, [torch.rand(1, 3, 8, 8)])) == "style_any"


def test_style_any_is_adains_recipe():
    task = TASKS["style_any"]
    assert task.model == "AdaINNet" and task.paper_loss == "adain_style" and not task.has_truth
    assert task.training_loss is not None and not task.needs_style_image and not task.multi_style
    assert {k: task.recipe[k] for k in ("lr", "batch_size", "crop_size", "steps")} == {
        "lr": 1e-4, "batch_size": 8, "crop_size": 256, "steps": 160_000}  # Huang & Belongie 2017
    assert STYLE_TO_CROP == 2  # the paper's 512 px images for 256 px crops
    assert task.network_kwargs("AdaINNet") == {}
    assert [n for n, t in TASKS.items() if t.training_loss] == ["style_any"]
    assert [n for n, t in TASKS.items() if t.split_input] == ["style_any"]
    assert task.make_options({"style_data": "brick,ihc"}) == StyleAnyOptions("brick,ihc")
    with pytest.raises(InputError, match="'nope' is no default image name"):
        task.make_options({"style_data": "nope"})


def test_style_any_pairs_stack_a_content_and_a_style_crop():
    x = torch.rand(2, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    inp, target = TASKS["style_any"].pair(x, {"style_data": "brick"}, generator=g)
    assert inp is target and inp.shape == (2, 6, 16, 16) and torch.equal(inp[:, :3], x)
    assert torch.allclose(inp[:, 3], inp[:, 4]) and torch.allclose(inp[:, 4], inp[:, 5])  # brick is grey
    again, _ = TASKS["style_any"].pair(x, {"style_data": "brick"}, generator=torch.Generator().manual_seed(0))
    assert torch.equal(inp, again)


def test_unknown_task_suggests():
    with pytest.raises(InputError, match="Did you mean 'restore'"):
        get_task("restor")
    assert get_task(TASKS["style"]) is TASKS["style"]


SRC = Path(lossnet.data.__file__).resolve().parents[1]
#: ``style_any``'s own names: its network, its bound and exported forms, its loss, its pair maker and options,
#: the layout of its stacked input, and the task's name as a key.
STYLE_ANY_NAMES = {
    "AdaINNet", "StyledAdaIN", "AdaINGraph", "AdaINLoss", "adain_training_loss", "content_style_pair",
    "StyleAnyOptions", "split_content_style", "PACKED_CHANNELS", "style_any",
}  # fmt: skip
#: The only files under src/lossnet whose code may name them, and why (issue 22: a task is one registry entry).
STYLE_ANY_FILES = {
    # its own modules
    "functional/adain.py": "AdaIN's maths and the layout of the stacked content and style",
    "models/adain.py": "its network, the network bound to style images, and the graph export traces",
    "losses/adain.py": "its loss",
    "tasks/adain.py": "its training loss, built on the network's own encoder (the task layer reads both)",
    "data/content_style.py": "its style images and the style crop drawn for a content",
    "inference/styles.py": "binding a network to style images at apply time, an inference feature of such networks",
    # the registrations a task may touch
    "tasks/__init__.py": "its registry entry, and guess_task's answer for its network",
    "data/pairs.py": "its pair maker and its options dataclass",
    "models/registry.py": "its network in the model registry",
    "models/__init__.py": "its network among the package's public names",
    # a user of the task, not the framework
    "demo/styles.py": "the styles demo trains the task and applies its network",
}


def _names_in_code(path: Path) -> set[str]:
    """The identifiers a module's code uses or defines, and its string constants that are a whole such name
    (a task-name branch); docstrings, comments and messages that merely mention them do not count."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.alias):
            found |= {node.name.rsplit(".", 1)[-1], node.asname or ""}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.keyword) and node.arg:
            found.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
    return found & STYLE_ANY_NAMES


def test_only_style_anys_own_modules_and_registrations_name_it():
    assert all((SRC / f).is_file() for f in STYLE_ANY_FILES), "a listed file is gone: update the list"
    named = {str(p.relative_to(SRC)): sorted(n) for p in sorted(SRC.rglob("*.py")) if (n := _names_in_code(p))}
    framework = {f: n for f, n in named.items() if f not in STYLE_ANY_FILES}
    assert not framework, f"framework code names style_any's own things (give the task a hook instead): {framework}"
