"""Tiny networks, one per task, and checkpoints of them, for the inference tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossnet.checkpoint import model_meta, save_checkpoint
from lossnet.data.io import load_image, save_image
from lossnet.data.tasks import luminance
from lossnet.models import build_model, model_spec

# Tiny networks, one per task, as the trainer builds them (meta as in the checkpoint contract).
SPECS = {
    "superres": model_spec("SuperResNet", scale=2, channels=4, num_residual=1, head_kernel_size=3),
    "style": model_spec("TransformerNet", channels=4, num_residual=1),
    "colorize": model_spec("UNet", in_channels=1, depth=2, base_channels=4),
    "restore": model_spec("UNet", in_channels=3, depth=2, base_channels=4),
}
ONE_PIXEL = 1 / 255
MULTIPLE = {"superres": 1, "style": 4, "colorize": 4, "restore": 4}


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Move every weight and batch-norm statistic off its initial value (SuperResNet starts as plain bicubic)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def make_checkpoint(path, task: str, spec: dict | None = None, step: int = 7):
    """A checkpoint as the trainer writes it, of a perturbed tiny network; returns the network."""
    spec = spec or SPECS[task]
    model = perturbed(build_model(spec))
    scale = spec["kwargs"]["scale"] if task == "superres" else None
    meta = model_meta(spec, task=task, scale=scale, step=step, config={"task": task}, loss_weights="hed")
    save_checkpoint(path, model.state_dict(), meta, {"optimizer": {"lr": 1e-3}})
    return model


def reference(model: torch.nn.Module, image: torch.Tensor, task: str, multiple: int) -> torch.Tensor:
    """The network on an image of any size, by hand: reflect-pad bottom/right to the multiple, run, crop."""
    x = luminance(image) if task == "colorize" else image
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="reflect")
    with torch.no_grad():
        y = model(x)
    s = y.shape[-1] // x.shape[-1]
    return y[..., : h * s, : w * s]


def write_png(path, image: torch.Tensor) -> torch.Tensor:
    """Save ``image`` as PNG; return the quantised image the network will see."""
    save_image(image, path)
    return load_image(path)
