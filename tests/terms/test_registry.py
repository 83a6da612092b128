"""The table of term families: every family reaches PerceptualLoss, the presets, TrainConfig and every command."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect

import pytest
import torch

import lossnet
from lossnet.cli import build_parser
from lossnet.errors import InputError
from lossnet.losses.trunk import closest_layer, run_flags
from lossnet.terms.registry import FAMILIES, OPTIONS, family_of, style_families, term_keywords, term_layers
from lossnet.train.config import TrainConfig, loss_kwargs, task_config


@functools.cache
def _flags(command: str) -> frozenset[str]:  # cached: a parser takes 60 ms to build, and the test asks about 90 times
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return frozenset(sub.choices[command]._option_string_actions)


def test_every_family_reaches_every_command_and_the_config() -> None:
    config_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for family in FAMILIES.values():
        assert family.keyword in config_fields
        assert family.flag in _flags("compare") and family.flag in _flags("train")
        if family.name not in ("feature", "style", "tv"):  # stylize spells these its own way
            for command in ("stylize", "sweep", "report"):
                assert family.flag in _flags(command), (command, family.flag)
    for option in OPTIONS.values():
        if option.cli:
            assert option.flag in _flags("compare") and option.flag in _flags("train") and option.name in config_fields
    # the one the issue found missing
    assert "--contextual-layers" in _flags("train") and "--mrf-layers" in _flags("train")


def test_keywords_and_terms_form_are_one_thing() -> None:
    a = lossnet.PerceptualLoss("vgg11", None, feature_layers=["relu2_1"], mrf_layers=["relu3_1"], pixel_weight=0.5)
    b = lossnet.PerceptualLoss("vgg11", None, terms={"feature": ["relu2_1"], "mrf": ["relu3_1"], "pixel": 0.5})
    assert [t.key for t in a.engine] == [t.key for t in b.engine] == ["pixel", "feature.relu2_1", "mrf.relu3_1"]
    assert a.extractor.layers == b.extractor.layers
    assert set(term_keywords()) <= set(inspect.signature(lossnet.PerceptualLoss).parameters)  # help() shows them
    with pytest.raises(InputError, match=r"no keyword 'featur_layers'.*Did you mean 'feature_layers'"):
        lossnet.PerceptualLoss("vgg11", None, featur_layers=["relu2_1"])
    with pytest.raises(InputError, match=r"terms has no family 'styel'.*Did you mean 'style'"):
        lossnet.PerceptualLoss("vgg11", None, terms={"styel": ["relu2_1"]})
    with pytest.raises(InputError, match="given twice"):
        lossnet.PerceptualLoss("vgg11", None, terms={"pixel": 1.0}, pixel_weight=1.0)


def test_one_layer_union_includes_every_family() -> None:
    given = {
        "feature_layers": {"relu2_2": 1.0},
        "style_layers": ["relu1_2"],
        "mrf_layers": ["relu3_1"],  # the copy in train/loss_network.py used to leave these out
        "contextual_layers": ["relu4_1"],
        "dists_weight": 1.0,
    }
    layers = term_layers("vgg16", given)
    assert layers[:4] == ["relu2_2", "relu1_2", "relu4_1", "relu3_1"] and "relu5_3" in layers
    assert len(layers) == len(set(layers))
    loss, _ = lossnet.train.loss_network.training_loss(
        task_config("superres", loss_weights=None, feature_layers={"relu1_1": 1.0}, mrf_layers={"relu3_1": 1.0})
    )
    assert loss.extractor.layers == ["relu1_1", "relu3_1"]


def test_train_flags_become_config_fields_and_the_loss() -> None:
    args = build_parser().parse_args(
        ["train", "superres", "--contextual-layers", "relu2_1=0.5", "--contextual-band-width", "0.3",
         "--sliced-wasserstein-redraw", "false", "--arch", "vgg11", "--out", "x"]
    )  # fmt: skip
    assert args.contextual_layers == {"relu2_1": 0.5} and args.contextual_band_width == 0.3
    assert args.sliced_wasserstein_redraw is False and args.loss_arch == "vgg11" and args.out_dir == "x"
    config = task_config("superres", contextual_layers={"relu2_1": 0.5}, contextual_band_width=0.3)
    kwargs = loss_kwargs(config)
    assert kwargs["contextual_layers"] == {"relu2_1": 0.5} and kwargs["contextual_band_width"] == 0.3
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match=r"criterion.*'mse'"):
        task_config("superres", criterion="l3")


def test_style_families_feed_the_style_image_and_the_task_check() -> None:
    assert {"style", "mrf", "sliced_wasserstein", "mean_std", "random_net"} <= set(style_families())
    assert "feature" not in style_families()
    kwargs = loss_kwargs(task_config("style", loss="random_net_style"))  # no Gram layer, and still a style loss
    assert kwargs["random_net_weight"] > 0
    with pytest.raises(InputError, match=r"needs style layers.*--mrf-layers"):
        loss_kwargs(task_config("style", loss="pixel"))


def test_a_preset_on_a_trunk_that_lacks_its_layers_names_every_flag_at_once(capsys, tmp_path) -> None:
    assert closest_layer("relu3_4", "vgg16") == "relu3_3" and closest_layer("pool5", "vgg16") == "pool5"
    kwargs = lossnet.losses.get_preset("contextual_superres").kwargs()
    assert run_flags(kwargs, "vgg16") == "--arch vgg16 --contextual-layers relu3_3=0.1"
    lp = {"lpips_weight": 1.0, "feature_layers": {"conv5_4": 1.0}}
    flags = "--arch vgg16 --feature-layers conv5_3=1 --allow-uncalibrated true"
    assert run_flags(lp, "vgg16", uncalibrated=True) == flags
    image = str(tmp_path / "a.png")
    lossnet.data.io.save_image(torch.rand(1, 3, 16, 16), image)
    rc = lossnet.cli.main(["compare", image, image, "--preset", "contextual_superres", "--arch", "vgg16"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "relu3_4" in err and "--arch vgg16 --contextual-layers relu3_3=0.1" in err


def test_train_names_the_flags_too() -> None:
    from lossnet.train.loss_network import resolve_loss_network

    terms = lossnet.losses.get_preset("esrgan").kwargs()
    with pytest.raises(InputError, match=r"conv5_4.*on HED's VGG16 with --arch vgg16 --feature-layers conv5_3=1$"):
        resolve_loss_network("vgg19", "hed", ["conv5_4"], terms=terms)


def test_one_flag_vocabulary_with_the_old_forms_as_aliases() -> None:
    parse = build_parser().parse_args
    assert parse(["compare", "a", "b", "--allow-uncalibrated", "true"]).allow_uncalibrated is True
    assert parse(["compare", "a", "b", "--allow-uncalibrated"]).allow_uncalibrated is True
    assert parse(["compare", "a", "b", "--allow-uncalibrated", "no"]).allow_uncalibrated is False
    assert parse(["compare", "a", "b"]).allow_uncalibrated is False
    assert parse(["train", "style", "--allow-uncalibrated", "true"]).allow_uncalibrated is True
    for flag in ("--out", "--out-dir"):
        assert parse(["train", "style", flag, "r"]).out_dir == "r"
    for flag in ("--arch", "--loss-arch"):
        assert parse(["train", "style", flag, "vgg19"]).loss_arch == "vgg19"
    new = parse(["apply", "--model", "m.safetensors", "a.png", "b.png", "--out", "o"])
    old = parse(["apply", "--model", "m.safetensors", "--input", "a.png", "b.png", "--output", "o"])
    assert (new.inputs, new.output) == (["a.png", "b.png"], "o")
    assert (old.input, old.output) == (["a.png", "b.png"], "o")


def test_stylize_takes_built_in_images_and_any_style_family(tmp_path) -> None:
    out = tmp_path / "s.png"
    argv = ["stylize", "chelsea", "grass", "--weights", "none", "--arch", "vgg11", "--max-size", "24",
            "--steps", "1", "--content-layers", "relu2_1", "--style-layers", "", "--mean-std-layers", "relu1_1=1",
            "--out", str(out)]  # fmt: skip
    assert lossnet.cli.main(argv) == 0 and out.is_file()


def test_top_level_exports_where_the_readme_says() -> None:
    for name in ("LPIPSLoss", "DISTSLoss", "ContextualLoss", "MRFLoss", "FocalFrequencyLoss", "lpips_loss",
                 "contextual_loss", "SlicedWassersteinLoss", "sliced_wasserstein", "MeanStdLoss", "mean_std_loss",
                 "RandomNetLoss", "random_net_loss"):  # fmt: skip
        assert name in lossnet.__all__ and getattr(lossnet, name) is getattr(lossnet.losses, name)


def test_keywords_are_unique_and_family_of_finds_them() -> None:
    keywords = term_keywords()
    assert len(keywords) == len(set(keywords))
    for family in FAMILIES.values():
        assert family_of(family.keyword) is family
    x = torch.rand(1, 3, 16, 16)
    loss = lossnet.PerceptualLoss("vgg11", None, focal_frequency_weight=1.0, focal_frequency_alpha=0.5)
    assert loss.engine.term("focal_frequency").alpha == 0.5 and float(loss(x, x)) == 0
