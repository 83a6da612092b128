"""TorchScript export: parity with PyTorch at three sizes, per-image statistics at batch 2, the extra file."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

import lossnet

from lossnet.errors import ExportError
from lossnet.export import export_torchscript
from tests.export.networks import CASES, image, network, relative, sizes


def load(path, extra=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates torch.jit
        return torch.jit.load(str(path), _extra_files=extra if extra is not None else {})


@pytest.mark.parametrize(("case", "name", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_torchscript_equals_pytorch_at_three_sizes(tmp_path, case, name, kwargs) -> None:
    net = network(name, kwargs)
    export_torchscript(net, tmp_path / "m.pt")
    traced = load(tmp_path / "m.pt")
    for size in sizes(net):
        x = image(net, 1, size)
        with torch.no_grad():
            expected, got = net(x), traced(x)
        assert got.shape == expected.shape, (case, size)
        assert relative(float((got - expected).abs().max()), net) <= 1e-6, (case, size)


def test_instance_norm_keeps_each_images_statistics_at_batch_2(tmp_path) -> None:
    net = network("TransformerNet", {"channels": 4, "num_residual": 1})
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())
    export_torchscript(net, tmp_path / "m.pt")
    x = torch.cat([image(net, 1, (68, 92), seed=2) * 0.2, 0.6 + 0.4 * image(net, 1, (68, 92), seed=3)])
    with torch.no_grad():
        got, together, alone = load(tmp_path / "m.pt")(x), net(x), torch.cat([net(x[:1]), net(x[1:])])
    assert (got - together).abs().max() <= 1e-6
    # Each image alone: PyTorch's own batch-1 and batch-2 kernels round differently (1e-6 here); statistics
    # shared across the batch would move the outputs by orders of magnitude more.
    assert (got - alone).abs().max() <= 1e-5


def test_the_extra_file_holds_the_interface_and_the_card(tmp_path) -> None:
    net = network("UNet", {"in_channels": 1, "depth": 2, "base_channels": 4, "residual": True})
    card = {"task": "colorize", "steps": 12, "data": "embedded default"}
    report = export_torchscript(net, tmp_path / "m.pt", card=card)
    extra = {"lossnet.json": ""}
    load(tmp_path / "m.pt", extra)
    props = json.loads(extra["lossnet.json"])
    assert props["lossnet.task"] == "colorize" and props["lossnet.in_channels"] == "1"
    assert props["lossnet.channel_layout"] == "NCHW; input: 1 channel, BT.601 luma; output: RGB"
    assert json.loads(props["lossnet.card"]) == card
    assert report.format == "torchscript" and report.opset is None and "lossnet.opset" not in props
    assert lossnet.export_torchscript is export_torchscript  # the library call, at the top level


class _FrozenShape(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.zeros(int(x.shape[-2]), int(x.shape[-1]))


def test_a_trace_that_froze_a_shape_is_refused_and_nothing_written(tmp_path) -> None:
    with pytest.raises(ExportError, match="the exported TorchScript file .* not written"):
        export_torchscript(_FrozenShape(), tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []
