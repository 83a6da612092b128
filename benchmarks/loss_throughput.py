"""Benchmark a: perceptual-loss forward+backward throughput and peak memory, against two common patterns.

The loss is the ``johnson2016_style`` recipe (VGG16; feature relu2_2; style relu1_2, relu2_2,
relu3_3, relu4_3; TV), evaluated as a training step does: ``loss(pred, target).backward()``
with ``pred`` requiring a gradient (it stands for a network's output) and ``target`` fixed.
Three implementations compute the same terms:

- ``lossnet``: :class:`lossnet.PerceptualLoss`: the VGG cut after relu4_3, frozen, one pass for
  the prediction, the target under ``no_grad``; in bf16 with ``compute_dtype=torch.bfloat16``.
- ``naive``: the pattern of common tutorials, written here: per-slice ``nn.Sequential`` modules
  kept in a plain Python list (so ``.eval()``, ``.to()`` and ``requires_grad_(False)`` on the loss
  never reach them: the VGG parameters are not frozen), the full-depth VGG16 run on both images,
  the target with autograd too, the parameters' gradients computed on every backward.
- ``hooks``: forward hooks on the ReLUs of the full frozen VGG16, fastai's ``FeatureLoss`` style:
  the whole network runs on both images and the hooks keep the activations.

The naive reference is float32 by definition (the tutorial pattern) and runs in float32 only;
``hooks`` runs in both, inside ``torch.autocast`` for bf16 (what its users would write), and
lossnet uses its own ``compute_dtype``. Weights are random (``weights=None``): the time of a
convolution does not depend on its values.

Run as ``python -m benchmarks.loss_throughput [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Timing, conv_flops, peak_memory_bytes, time_calls
from lossnet import perceptual_loss_from_preset
from lossnet.backbones.vgg import VGG, layer_index
from lossnet.losses.presets import get_preset

PRESET = "johnson2016_style"
IMPLEMENTATIONS = ("lossnet", "naive", "hooks")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
FULL_GRID = {"sizes": (128, 256, 512), "batches": (1, 4, 8)}
#: Left out of ``make bench`` (run by ``make bench-full``): 512 px at batch 8 alone takes over three minutes on
#: 2 cores (the naive reference 73 s a step, the two fp32 extractors about 40 s each), and at 512 px the
#: throughput per image is the same at batch 4 and 8 for every implementation (the 09:42 run in BENCHMARKS.md).
SKIPPED_UNLESS_FULL = {(512, 8)}
QUICK_GRID = {"sizes": (64, 128), "batches": (1, 2)}
#: The configuration the targets of issue 5 are stated for.
TARGET_CONFIG = (256, 4)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _terms(pred_feats: dict, target_feats: dict, pred: torch.Tensor) -> torch.Tensor:
    """The johnson2016_style total, written out as a tutorial would (its own Gram, MSE and TV)."""
    preset = get_preset(PRESET)

    def gram(f: torch.Tensor) -> torch.Tensor:
        b, c, h, w = f.shape
        f = f.reshape(b, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)

    total = pred.new_zeros(())
    for name, w in preset.feature_layers.items():
        total = total + w * F.mse_loss(pred_feats[name], target_feats[name])
    for name, w in preset.style_layers.items():
        total = total + w * F.mse_loss(gram(pred_feats[name]), gram(target_feats[name]))
    tv = (pred[..., 1:, :] - pred[..., :-1, :]).abs().mean() + (pred[..., :, 1:] - pred[..., :, :-1]).abs().mean()
    return total + preset.tv_weight * tv


class NaiveLoss:
    """The tutorial pattern: slices of a full VGG16 in a Python list, nothing frozen, both images with autograd."""

    def __init__(self) -> None:
        features = VGG("vgg16").features  # torchvision layout, random weights
        names = list(get_preset(PRESET).style_layers)  # relu1_2, relu2_2, relu3_3, relu4_3
        cuts = [layer_index("vgg16", n) + 1 for n in names] + [len(features)]
        starts = [0, *cuts[:-1]]
        self.names = [*names, "rest"]
        self.slices = [nn.Sequential(*list(features)[a:b]) for a, b in zip(starts, cuts)]  # a list: never frozen
        self.mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)

    def parameters(self) -> list[nn.Parameter]:
        return [p for s in self.slices for p in s.parameters()]

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, out = (x - self.mean) / self.std, {}
        for name, s in zip(self.names, self.slices):
            h = s(h)
            out[name] = h
        return out

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _terms(self.features(pred), self.features(target), pred)


class HookLoss:
    """fastai's FeatureLoss style: forward hooks on the ReLUs of the full frozen VGG16."""

    def __init__(self) -> None:
        self.net = VGG("vgg16").features.eval().requires_grad_(False)
        self.names = list(get_preset(PRESET).style_layers)
        self.stored: dict[str, torch.Tensor] = {}
        self.clone = False
        for name in self.names:
            self.net[layer_index("vgg16", name)].register_forward_hook(self._hook(name))
        self.mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)

    def _hook(self, name: str) -> Callable:
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            self.stored[name] = output.clone() if self.clone else output

        return hook

    def features(self, x: torch.Tensor, clone: bool = False) -> dict[str, torch.Tensor]:
        self.clone = clone
        self.net((x - self.mean) / self.std)
        return dict(self.stored)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target_feats = self.features(target, clone=True)
        return _terms(self.features(pred), target_feats, pred)


def build(impl: str, dtype: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss callable of one implementation, run in ``dtype`` ('fp32' or 'bf16')."""
    if impl == "lossnet":
        return perceptual_loss_from_preset(PRESET, weights=None, compute_dtype=dtype)  # a runtime name
    loss = NaiveLoss() if impl == "naive" else HookLoss()
    if dtype == "fp32":
        return loss

    def autocast_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(pred.device.type, dtype=DTYPES[dtype]):
            return loss(pred, target)

    autocast_loss.inner = loss  # type: ignore[attr-defined]
    return autocast_loss


def make_step(loss: Callable, batch: int, size: int, seed: int = 0) -> Callable[[], None]:
    """One training step of the loss: forward on a fresh ``pred`` leaf, then backward."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, size, size, generator=g)
    target = torch.rand(batch, 3, size, size, generator=g)

    def step() -> None:
        pred = base.clone().requires_grad_(True)
        loss(pred, target).backward()

    return step


@dataclass
class Row:
    impl: str
    dtype: str
    size: int
    batch: int
    timing: Timing
    peak_bytes: int
    conv_gflop: float  # forward conv GFLOP of lossnet's cut network on pred + target, + its input-gradient

    @property
    def img_per_s(self) -> float:
        return self.batch / self.timing.median


def step_conv_flops(size: int, batch: int) -> int:
    """Conv FLOPs of lossnet's step: forward on pred and target, and the input-gradient on pred (no weight grads)."""
    features = VGG("vgg16").features[: layer_index("vgg16", "relu4_3") + 1]
    return 3 * conv_flops(features, batch, size, size)


#: A first step slower than this (seconds) is the timing (n=1): no further step is run. The big configurations
#: take 10 s to over a minute a step on 2 cores, and a first step is no slower than the next ones there: at
#: naive 256/4, lossnet fp32 256/8 and hooks bf16 512/4 the first (memory-profiled) step took 7.76, 7.43 and
#: 9.80 s against 8.88/8.44, 7.59/7.43 and 9.56/10.26 s for the two after it (BENCHMARKS.md). This is what
#: keeps ``make bench`` under its 15 minutes.
LONG_STEP_S = 4.0


def measure(
    impl: str, dtype: str, size: int, batch: int, warmup: int = 0, repeats: int = 3, budget_s: float = 0.0
) -> Row:
    """Peak memory of a first (cold) step, which is also the warm-up, then the timing of ``repeats`` steps.

    A first step over ``LONG_STEP_S`` is the only one: its time is the timing.
    """
    torch.manual_seed(0)
    loss = build(impl, dtype)
    step = make_step(loss, batch, size)
    peak, first = peak_memory_bytes(step)
    if first > LONG_STEP_S:
        timing = Timing([first])
    else:
        timing = time_calls(step, warmup=warmup, repeats=repeats, budget_s=budget_s)
    return Row(impl, dtype, size, batch, timing, peak, step_conv_flops(size, batch) / 1e9)


def grid_points(quick: bool = False, full: bool = False) -> list[tuple[int, int]]:
    """(size, batch) pairs to measure: the quick grid, or the full one less ``SKIPPED_UNLESS_FULL`` unless ``full``."""
    grid = QUICK_GRID if quick else FULL_GRID
    points = [(size, batch) for size in grid["sizes"] for batch in grid["batches"]]
    return points if quick or full else [p for p in points if p not in SKIPPED_UNLESS_FULL]


def run(
    quick: bool = False, log: Callable[[str], None] = print, full: bool = False, dtypes: Iterable[str] = tuple(DTYPES)
) -> list[Row]:
    """Every implementation in each of ``dtypes`` (the naive reference in fp32 only) over the grid."""
    repeats, budget = (2, 0.0) if quick else (3, 3.0)
    rows = []
    for size, batch in grid_points(quick, full):
        for dtype in dtypes:
            for impl in IMPLEMENTATIONS:
                if impl == "naive" and dtype != "fp32":
                    continue
                row = measure(impl, dtype, size, batch, repeats=repeats, budget_s=budget)
                lo, hi = row.timing.spread
                log(
                    f"a. {impl:8s} {dtype} {size:4d}px batch {batch}: {row.img_per_s:7.2f} img/s "
                    f"(step {row.timing.median * 1e3:.0f} ms, {lo * 1e3:.0f}-{hi * 1e3:.0f}, n={len(row.timing.seconds)}), "
                    f"peak {row.peak_bytes / 2**20:.0f} MiB"
                )
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    parser.add_argument("--full-grid", action="store_true", help="also the configurations make bench leaves out")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run(args.quick, full=args.full_grid)


if __name__ == "__main__":
    main()
