"""ONNX export: parity with PyTorch in onnxruntime at three sizes, fp32 and fp16, metadata, and refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lossnet.card import EXPORT_FORMAT
from lossnet.errors import ExportError, InputError, InputTypeError
from lossnet.export import DEFAULT_OPSET, export_onnx
from tests.export.networks import CASES, image, network, relative, sizes
from lossnet.models import StyleChoice

ort = pytest.importorskip("onnxruntime", reason="the export extra (pip install 'lossnet[export]') is not installed")
onnx = pytest.importorskip("onnx", reason="the export extra (pip install 'lossnet[export]') is not installed")


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(("case", "name", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_onnx_equals_pytorch_at_three_sizes_in_fp32_and_fp16(tmp_path, case, name, kwargs) -> None:
    net = network(name, kwargs)
    export_onnx(net, tmp_path / "m.onnx")
    export_onnx(net, tmp_path / "m16.onnx", fp16=True)
    fp32, fp16 = session(tmp_path / "m.onnx"), session(tmp_path / "m16.onnx")
    for size in sizes(net):
        x = image(net, 1, size)
        with torch.no_grad():
            expected = net(x)
        got = torch.from_numpy(fp32.run(None, {"image": x.numpy()})[0])
        assert got.shape == expected.shape, (case, size)
        assert relative(float((got - expected).abs().max()), net) <= 1e-4, (case, size)
        half = torch.from_numpy(fp16.run(None, {"image": x.half().numpy()})[0])
        assert half.dtype == torch.float16 and half.shape == expected.shape
        assert relative(float((half.float() - expected).abs().max()), net) <= 2e-2, (case, size)


def test_instance_norm_keeps_each_images_statistics_at_batch_2(tmp_path) -> None:
    net = network("TransformerNet", {"channels": 4, "num_residual": 1})
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())
    export_onnx(net, tmp_path / "m.onnx")
    # Two images of very different statistics: shared statistics would move each one's output.
    x = torch.cat([image(net, 1, (68, 92), seed=2) * 0.2, 0.6 + 0.4 * image(net, 1, (68, 92), seed=3)])
    got = torch.from_numpy(session(tmp_path / "m.onnx").run(None, {"image": x.numpy()})[0])
    with torch.no_grad():
        alone = torch.cat([net(x[:1]), net(x[1:])])
    assert (got - alone).abs().max() <= 1e-4


def test_the_graph_has_free_batch_height_and_width_and_states_its_opset(tmp_path) -> None:
    export_onnx(network("UNet", {"depth": 2, "base_channels": 4}), tmp_path / "m.onnx", opset=13)
    model = onnx.load(str(tmp_path / "m.onnx"))
    (given,), (out,) = model.graph.input, model.graph.output
    dims = [d.dim_param or d.dim_value for d in given.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 3, "out_height", "out_width"]
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["lossnet.opset"] == "13" and props["lossnet.format"] == EXPORT_FORMAT


def test_metadata_states_task_scale_range_layout_and_version(tmp_path) -> None:
    import lossnet

    net = network("SuperResNet", {"scale": 4, "channels": 4, "num_residual": 1, "output_range": (-1, 1)})
    report = export_onnx(net, tmp_path / "sr.onnx")
    props = session(tmp_path / "sr.onnx").get_modelmeta().custom_metadata_map
    assert props["lossnet.task"] == "superres" and props["lossnet.scale"] == "4"
    assert props["lossnet.input_range"] == "[-1.0, 1.0]" and props["lossnet.output_range"] == "[-1.0, 1.0]"
    assert props["lossnet.channel_layout"] == "NCHW; input: RGB; output: RGB"
    assert props["lossnet.version"] == lossnet.__version__ and props["lossnet.dtype"] == "float32"
    assert (props["lossnet.size_multiple"], props["lossnet.min_size"]) == ("1", str(net.min_size))
    assert report.opset == DEFAULT_OPSET and len(report.checks) == 2 and report.checks[1][0][0] == 2
    assert lossnet.export_onnx is export_onnx  # the library call, at the top level


def test_the_callers_module_is_left_as_it_was(tmp_path) -> None:
    net = network("TransformerNet", {"channels": 4, "num_residual": 1}).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_onnx(net, tmp_path / "m.onnx", fp16=True)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(v.dtype == before[k].dtype for k, v in net.state_dict().items())


class _FrozenShape(nn.Module):
    """Adds a tensor whose size Python computed from the input: a trace freezes it at the traced size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.zeros(int(x.shape[-2]), int(x.shape[-1]))


class _DictOut(nn.Module):
    def forward(self, x: torch.Tensor) -> dict:
        return {"y": x}


class _Fft(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.fft.fft2(x).real  # no ONNX operator


class _OddRule(nn.Module):
    size_multiple = 2.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (_FrozenShape(), "exported ONNX file"),
        (_DictOut(), "_DictOut turns a \\(1, 3, 40, 41\\) input into dict"),
        (_Fft(), "_Fft cannot be exported to ONNX: UnsupportedOperatorError: .*'aten::fft_fft2'"),
        (_OddRule(), "_OddRule declares size_multiple=2.5"),
    ],
)
def test_a_network_that_cannot_be_exported_is_one_line_and_no_file(tmp_path, capsys, module, message) -> None:
    with pytest.raises(ExportError, match=message) as err:
        export_onnx(module, tmp_path / "m.onnx")
    assert "\n" not in str(err.value) and capsys.readouterr() == ("", "")  # the library never prints
    assert not (tmp_path / "m.onnx").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"opset": 9}, InputError, "opset must be an int in 11-20"),
    ({"opset": 21}, InputError, "opset must be an int in 11-20"),
])
def test_bad_options(tmp_path, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        export_onnx(network("TransformerNet", {"channels": 4, "num_residual": 1}), tmp_path / "m.onnx", **kwargs)


def test_bad_path_and_model(tmp_path) -> None:
    with pytest.raises(InputError, match="ends in .onnx"):
        export_onnx(network("TransformerNet", {"channels": 4, "num_residual": 1}), tmp_path / "m.bin")
    with pytest.raises(InputTypeError, match="torch.nn.Module or a .safetensors path"):
        export_onnx(42, tmp_path / "m.onnx")  # type: ignore[arg-type]


def test_a_multi_style_network_exports_one_style_at_a_time(tmp_path) -> None:
    import onnxruntime as ort

    net = network("MultiStyleNet", {"num_styles": 2, "channels": 4, "num_residual": 1})
    x = torch.rand(1, 3, 32, 36)
    for k in (0, 1):
        export_onnx(StyleChoice(net, k), tmp_path / f"style{k}.onnx")
        session = ort.InferenceSession(str(tmp_path / f"style{k}.onnx"), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        assert float((torch.from_numpy(got) - net(x, k)).abs().max()) < 1e-4, k
