"""The spandrel format: a Compact network as the flat-key .safetensors upscaler apps load."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from lossnet.errors import InputError, InputTypeError
from lossnet.export.spandrel import export_spandrel
from lossnet.models import Compact, SuperResNet, TransformerNet, UNet, compact_hyperparameters


def trained_like(net: torch.nn.Module) -> torch.nn.Module:
    """Weights moved off their initial values (the last conv starts at zero), as after training."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def test_the_file_holds_the_published_flat_keys_and_reads_back(tmp_path) -> None:
    net = trained_like(Compact(scale=2, num_feat=8, num_conv=3))
    path = export_spandrel(net, tmp_path / "deep" / "x2.safetensors", metadata={"task": "superres"})
    weights = load_file(path)
    assert set(weights) == set(net.state_dict())  # no prefix, nothing else
    for key, value in net.state_dict().items():
        assert weights[key].dtype == torch.float32 and torch.equal(weights[key], value)
    assert compact_hyperparameters(weights) == dict(
        scale=2, in_channels=3, out_channels=3, num_feat=8, num_conv=3, act_type="prelu"
    )
    rebuilt = Compact(**compact_hyperparameters(weights)).eval()
    rebuilt.load_state_dict(weights)
    x = torch.rand(1, 3, 9, 10)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), net(x))
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["task"] == "superres" and meta["scale"] == "2" and meta["num_conv"] == "3"
    assert not list(tmp_path.joinpath("deep").glob(".*.tmp"))  # written atomically, nothing left over


@pytest.mark.parametrize(
    "net",
    [
        TransformerNet(channels=4, num_residual=1),
        UNet(depth=2, base_channels=4),
        SuperResNet(scale=2, channels=4, num_residual=1),
        Compact(scale=2, num_feat=4, num_conv=1, act_type="relu"),
    ],
    ids=["transformer", "unet", "superres", "compact-relu"],
)
def test_networks_no_app_detects_are_refused_in_one_line_pointing_to_onnx(net, tmp_path) -> None:
    with pytest.raises(InputError, match="no upscaler app detects .* --format onnx") as err:
        export_spandrel(net, tmp_path / "m.safetensors")
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


def test_bad_arguments(tmp_path) -> None:
    net = Compact(scale=2, num_feat=4, num_conv=1)
    with pytest.raises(InputError, match="name it m.safetensors"):
        export_spandrel(net, tmp_path / "m.pth")
    with pytest.raises(InputTypeError, match="torch.nn.Module"):
        export_spandrel({"body.0.weight": torch.zeros(1)}, tmp_path / "m.safetensors")  # type: ignore[arg-type]
    with pytest.raises(InputTypeError, match="strings"):
        export_spandrel(net, tmp_path / "m.safetensors", metadata={"step": 4})  # type: ignore[dict-item]


def import_spandrel():
    """spandrel, or a skip that says why: it needs torchvision, and torchvision from PyPI may not import here."""
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # ImportError, or a RuntimeError from its compiled ops against another torch
        pytest.skip(
            f"torchvision does not import beside torch {torch.__version__} ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); spandrel needs both. "
            "torchvision from PyPI does not import against the CPU torch that `make` installs"
        )
    return pytest.importorskip("spandrel", reason="spandrel (PyPI) is not installed: pip install spandrel")


@pytest.mark.parametrize(
    "kwargs", [{"scale": 4, "num_feat": 16, "num_conv": 4}, {"scale": 2, "num_feat": 8, "num_conv": 2}]
)
def test_spandrel_detects_compact_and_gives_lossnets_output(kwargs, tmp_path) -> None:
    spandrel = import_spandrel()
    net = trained_like(Compact(**kwargs))
    path = export_spandrel(net, tmp_path / "compact.safetensors")
    descriptor = spandrel.ModelLoader().load_from_file(str(path))
    assert descriptor.architecture.id == "Compact"
    assert (descriptor.scale, descriptor.input_channels, descriptor.output_channels) == (kwargs["scale"], 3, 3)
    descriptor.model.eval()
    x = torch.rand(1, 3, 23, 17)
    with torch.no_grad():
        ours, raw, theirs = net(x), descriptor.model(x), descriptor(x)  # the descriptor clamps to [0, 1], as apps do
    assert raw.shape == ours.shape == theirs.shape == (1, 3, 23 * kwargs["scale"], 17 * kwargs["scale"])
    assert (raw - ours).abs().max() <= 1e-5
    assert (theirs - ours.clamp(0, 1)).abs().max() <= 1e-5
