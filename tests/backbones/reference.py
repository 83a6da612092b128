"""An independent, torchvision-style VGG reference for the backbone tests.

Nothing here imports lossnet: the configurations are typed from torchvision's
``torchvision/models/vgg.py`` (``cfgs`` "A", "B", "D", "E" and ``make_layers``), so the
tests compare lossnet against a second, separately written definition.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# torchvision.models.vgg.cfgs
TORCHVISION_CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
ARCH_CFG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
ALL_ARCHS = [a + s for a in ARCH_CFG for s in ("", "_bn")]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Shapes of torchvision's VGG classifier head: Linear(512*7*7, 4096), ReLU, Dropout, Linear(4096, 4096), ...
CLASSIFIER_SHAPES = {
    "classifier.0.weight": (4096, 25088),
    "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096),
    "classifier.3.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}


def make_layers(arch: str) -> nn.Sequential:
    """torchvision's ``make_layers(cfgs[...], batch_norm=...)``: the ``features`` stack."""
    base, batch_norm = arch.removesuffix("_bn"), arch.endswith("_bn")
    layers: list[nn.Module] = []
    in_channels = 3
    for v in TORCHVISION_CFGS[ARCH_CFG[base]]:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv = nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv, nn.BatchNorm2d(int(v)), nn.ReLU(inplace=False)]
            else:
                layers += [conv, nn.ReLU(inplace=False)]
            in_channels = int(v)
    return nn.Sequential(*layers)


def relu_names(arch: str) -> dict[str, int]:
    """``{"relu{block}_{n}": index in features}``, counted from the torchvision configuration."""
    features = make_layers(arch)
    names: dict[str, int] = {}
    block, n = 1, 0
    for i, m in enumerate(features):
        if isinstance(m, nn.MaxPool2d):
            block, n = block + 1, 0
        elif isinstance(m, nn.ReLU):
            n += 1
            names[f"relu{block}_{n}"] = i
    return names


@torch.no_grad()
def randomised_features(arch: str, seed: int = 0) -> nn.Sequential:
    """A reference ``features`` stack with random weights *and* random batch-norm statistics, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    features = make_layers(arch)
    for m in features:
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * 9
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (1,), generator=g)))
    return features.eval()


def classifier_tensors(dtype: torch.dtype = torch.float32, expanded: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's classifier keys with the right shapes.

    ``expanded`` gives stride-0 views of one element, so a ``.pth`` stays a few KB
    (torch.save stores the one-element storage); safetensors needs real (contiguous) data.
    """
    if expanded:
        return {k: torch.randn(1).to(dtype).expand(*shape) for k, shape in CLASSIFIER_SHAPES.items()}
    return {k: torch.empty(shape, dtype=dtype) for k, shape in CLASSIFIER_SHAPES.items()}


def torchvision_state_dict(features: nn.Sequential, **classifier: object) -> dict[str, torch.Tensor]:
    """A state dict laid out as torchvision's ``vgg*().state_dict()``: ``features.N.*`` plus the classifier."""
    sd = {f"features.{k}": v.clone() for k, v in features.state_dict().items()}
    sd.update(classifier_tensors(**classifier))  # type: ignore[arg-type]
    return sd


def normalise(x: torch.Tensor) -> torch.Tensor:
    """torchvision's ImageNet normalisation of a [0, 1] RGB batch, computed in float64."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    return ((x.double() - mean) / std).to(x.dtype)


@torch.no_grad()
def activations(features: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every module of ``features``, in order, each a separate tensor."""
    outs = []
    for m in features:
        x = m(x)
        outs.append(x.clone())
    return outs
