import json

import pytest
import torch

from lossnet.errors import InputError, InputTypeError
from lossnet.models import MODELS, build_model, model_spec


@pytest.mark.parametrize(
    "spec",
    [
        model_spec("TransformerNet", channels=4, num_residual=1, output_range=(0.0, 1.0)),
        model_spec("SuperResNet", scale=2, channels=4, num_residual=1, head_kernel_size=3),
        model_spec("UNet", in_channels=1, depth=2, base_channels=4),
        model_spec("Compact", scale=2, num_feat=4, num_conv=1),
    ],
)
def test_spec_survives_json_and_rebuilds_the_same_network(spec):
    torch.manual_seed(0)
    a = build_model(spec)
    b = build_model(json.loads(json.dumps(spec)))
    b.load_state_dict(a.state_dict())  # same keys and shapes
    assert type(a) is type(b) is MODELS[spec["name"]]
    x = torch.rand(1, a.in_channels if hasattr(a, "in_channels") else 3, 16, 16)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


def test_unknown_name_suggests_the_closest():
    with pytest.raises(InputError, match="Did you mean 'UNet'"):
        build_model({"name": "Unet", "kwargs": {}})


def test_bad_kwargs_name_the_network():
    with pytest.raises(InputError, match="cannot build UNet"):
        build_model(model_spec("UNet", widht=3))


def test_not_a_spec():
    with pytest.raises(InputTypeError, match="model spec"):
        build_model("UNet")
