"""Running exported style files: the runner feeds the style input, checked (lossnet.inference.exported, styles.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.data.io import load_image
from lossnet.errors import InputError
from lossnet.export import export_onnx, export_torchscript
from lossnet.inference import ExportedNetwork, apply_model, load_model
from lossnet.inference.exported import WithStyleImage
from lossnet.inference.styles import load_styled_model, takes_style_images
from lossnet.models import StyleChoice, model_spec
from tests.export.networks import STYLE_CASES, style_network

pytest.importorskip("onnxruntime", reason="the export extra (pip install 'lossnet[export]') is not installed")

MULTI, _, ANY_SHALLOW = STYLE_CASES
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def _export(net, path):
    (export_onnx if path.suffix == ".onnx" else export_torchscript)(net, path)
    return load_model(path)


@pytest.mark.parametrize("fmt", list(SUFFIX))
def test_a_style_multi_file_takes_an_index_indices_or_a_mix(tmp_path, fmt) -> None:
    net = style_network(*MULTI[1:])
    loaded = _export(net, tmp_path / f"m{SUFFIX[fmt]}")
    assert isinstance(loaded, ExportedNetwork) and loaded.num_styles == 3 and loaded.per_image_norm
    x = torch.rand(2, 3, 36, 52)
    with torch.no_grad():
        mixes = (torch.tensor([0.2, 0.0, 0.8]), torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0]]))
        for style in (1, torch.tensor([0, 2]), *mixes):
            assert (loaded(x, style) - net(x, style)).abs().max() <= 1e-4, style
    # apply through StyleChoice: the whole image in one run (the file's norms cannot be reached tile by tile).
    photo = torch.rand(1, 3, 50, 70)
    got = apply_model(StyleChoice(loaded, 2), photo, tile=24, overlap=8)
    assert (got - apply_model(StyleChoice(net, 2), photo, tile=None)).abs().max() <= 1e-4
    for style, message in (
        (None, "holds 3 styles; pass style= an index"),
        (3, "style 3 is out of range"),
        (torch.tensor([0.5, 0.6, 0.0]), "must be >= 0 and sum to 1"),
    ):
        with pytest.raises(InputError, match=message):
            loaded(x, style)


@pytest.mark.parametrize("fmt", list(SUFFIX))
def test_a_style_any_file_takes_a_style_image_and_alpha(tmp_path, fmt) -> None:
    net = style_network(*ANY_SHALLOW[1:])
    loaded = _export(net, tmp_path / f"a{SUFFIX[fmt]}")
    assert not hasattr(loaded, "num_styles") and loaded.interface.input_names == ("content", "style", "alpha")
    content, style = torch.rand(2, 3, 36, 52), torch.rand(1, 3, 41, 29)
    with torch.no_grad():
        for alpha in (1.0, 0.3, 0.0):
            assert (loaded(content, style, alpha) - net(content, style, alpha=alpha)).abs().max() <= 1e-4, alpha
        both = torch.cat([net(content[:1], style, alpha=0.3), net(content[1:], style, alpha=0.9)])
        assert (loaded(content, style, torch.tensor([0.3, 0.9])) - both).abs().max() <= 1e-4
    bound = WithStyleImage(loaded, style, 0.5)
    assert bound.per_image_norm and (bound.size_multiple, bound.min_size) == (net.size_multiple, net.min_size)
    photo = torch.rand(1, 3, 50, 70)
    with torch.no_grad():
        want = net(photo[..., :50, :70], style, alpha=0.5)  # 50x70 are multiples of 2: no padding
    assert (apply_model(bound, photo, tile=24, overlap=8) - want).abs().max() <= 1e-4  # run whole, as the network
    for args, message in (
        ((torch.rand(1, 1, 20, 20), 1.0), r"takes a style image \(B or 1, 3, H', W'\)"),
        ((torch.rand(1, 3, 3, 20), 1.0), "at least 4; got \\(1, 3, 3, 20\\)"),
        ((torch.rand(3, 3, 20, 20), 1.0), "with B = 2"),
        ((style, 1.5), "alpha must be a number in"),
        ((style, torch.tensor([0.5, 1.2])), "alpha must be in"),
        ((None, 1.0), "takes a style image"),
    ):
        with pytest.raises(InputError, match=message):
            loaded(content, *args)


def test_a_one_input_file_takes_no_style(tmp_path) -> None:
    one = style_network("MultiStyleNet", {"num_styles": 1, "channels": 4, "num_residual": 1})
    loaded = _export(one, tmp_path / "m.onnx")
    with pytest.raises(InputError, match="takes one image and no style"):
        loaded(torch.rand(1, 3, 16, 16), 0)
    with pytest.raises(InputError, match="goes with an exported style_any file"):
        WithStyleImage(loaded, torch.rand(1, 3, 16, 16))


def test_load_styled_model_binds_an_exported_file(tmp_path) -> None:
    spec = model_spec("AdaINNet", **ANY_SHALLOW[2])
    net = style_network("AdaINNet", spec["kwargs"])
    save_checkpoint(tmp_path / "a.safetensors", net.state_dict(), model_meta(spec, task="style_any", step=3))
    export_onnx(tmp_path / "a.safetensors", tmp_path / "a.onnx")
    export_onnx(style_network(*MULTI[1:]), tmp_path / "m.onnx")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    assert takes_style_images(tmp_path / "a.onnx") and not takes_style_images(tmp_path / "m.onnx")
    bound, info = load_styled_model(tmp_path / "a.onnx", [tmp_path / "s.png"], alpha=0.25, style_size=None)
    assert isinstance(bound, WithStyleImage) and (info.format, info.task, info.step) == ("onnx", "style_any", 3)
    reference, _ = load_styled_model(tmp_path / "a.safetensors", [tmp_path / "s.png"], alpha=0.25, style_size=None)
    photo = load_image(tmp_path / "s.png")
    assert (apply_model(bound, photo, tile=None) - apply_model(reference, photo, tile=None)).abs().max() <= 1e-4
    with pytest.raises(InputError, match="apply to a network that takes its style at inference"):
        load_styled_model(tmp_path / "m.onnx", [tmp_path / "s.png"])
    with pytest.raises(InputError, match="takes one style image and no mask"):
        load_styled_model(tmp_path / "a.onnx", [tmp_path / "s.png"], mask=tmp_path / "s.png")
