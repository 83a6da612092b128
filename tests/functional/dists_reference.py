"""The authors' DISTS (DISTS_pytorch 0.1's DISTS_pt.py, read from the installed wheel), run on given VGG16 features."""

import importlib.metadata
import sys
import types

from torch import nn

from lossnet.backbones.calibration import dists_weights


def authors_dists(vgg_features: nn.Sequential) -> nn.Module:
    """The authors' DISTS class, its torchvision import answered with ``vgg_features`` (a VGG16 ``features``)."""
    source = importlib.metadata.distribution("DISTS_pytorch").locate_file("DISTS_pytorch/DISTS_pt.py").read_text()
    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(vgg16=lambda pretrained=True: types.SimpleNamespace(features=vgg_features))
    fake.transforms = types.SimpleNamespace()
    saved = sys.modules.get("torchvision")
    sys.modules["torchvision"] = fake
    try:
        namespace = {"__name__": "dists_reference"}
        exec(compile(source, "DISTS_pt.py", "exec"), namespace)
    finally:
        if saved is None:
            sys.modules.pop("torchvision")
        else:
            sys.modules["torchvision"] = saved
    model = namespace["DISTS"](load_weights=False)
    alpha, beta = dists_weights()
    model.alpha.data, model.beta.data = alpha.view(1, -1, 1, 1), beta.view(1, -1, 1, 1)
    return model.eval()
