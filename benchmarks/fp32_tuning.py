"""The fp32 path of johnson2016_style: what each candidate tuning changes, against the fp32 matmul roofline.

Not part of ``make bench`` (it measures alternatives, not lossnet as shipped). One training-shaped loss
step: ``PerceptualLoss`` from the ``johnson2016_style`` preset with the style image's Grams cached (as
the trainer does), forward and backward with respect to the prediction, fp32, random VGG16 weights.

Variants, timed in interleaved rounds in one process (median of the rounds):

- ``nchw``: lossnet as shipped in fp32 (contiguous activations);
- ``channels_last``: the same, with the prediction and target made channels-last, so the whole VGG runs
  channels-last (the fp32 form of what lossnet does under CPU autocast);
- ``compiled`` (``--compile``): the extractor's forward through ``torch.compile`` (inductor); its
  compilation time is reported apart.

The roofline: the convolutions' FLOPs of the step (the prediction's forward and input-gradient passes
through VGG16 cut at relu4_3, the target's forward cut at relu2_2) over its time, against the best fp32
square matmul measured in the same process.

Run natively, and as an AVX2-only CPU on an AVX-512 machine::

    python -m benchmarks.fp32_tuning
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python -m benchmarks.fp32_tuning
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.common import conv_flops, machine_line, matmul_peak, table
from lossnet.backbones.preprocessing import TORCH
from lossnet.backbones.vgg import VGG, layer_index
from lossnet.backbones.weights import LoadedWeights
from lossnet.losses import perceptual_loss_from_preset


def _loss() -> torch.nn.Module:
    torch.manual_seed(0)
    weights = LoadedWeights("random", "random VGG16 (timing only)", TORCH, dict(VGG("vgg16").state_dict()))
    return perceptual_loss_from_preset("johnson2016_style", weights=weights)


def step_flops(size: int, batch: int) -> int:
    """Conv FLOPs of one step: the prediction to relu4_3 forward and backward, the target to relu2_2."""
    features = VGG("vgg16").features
    pred = conv_flops(features[: layer_index("vgg16", "relu4_3") + 1], batch, size, size)
    target = conv_flops(features[: layer_index("vgg16", "relu2_2") + 1], batch, size, size)
    return 2 * pred + target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time the extractor under torch.compile")
    args = parser.parse_args(argv)
    print(f"machine: {machine_line(torch.device('cpu'))}", flush=True)
    peak, n = matmul_peak(torch.float32)
    print(f"fp32 matmul peak: {peak / 1e9:.0f} GFLOP/s (n={n})", flush=True)

    g = torch.Generator().manual_seed(1)
    shape = (args.batch, 3, args.size, args.size)
    pred, target, style = torch.rand(shape, generator=g), torch.rand(shape, generator=g), torch.rand(1, 3, 256, 256)
    variants: dict[str, tuple[torch.nn.Module, torch.Tensor, torch.Tensor]] = {}
    for name in ("nchw", "channels_last") + (("compiled",) if args.compile else ()):
        loss = _loss()
        loss.set_style_target(style)
        p, t = pred, target
        if name == "channels_last":
            p, t = (x.contiguous(memory_format=torch.channels_last) for x in (pred, target))
        if name == "compiled":
            loss.extractor.forward = torch.compile(loss.extractor.forward)  # type: ignore[method-assign]
        variants[name] = (loss, p, t)

    def step(name: str) -> float:
        loss, p, t = variants[name]
        x = p.detach().clone().requires_grad_(True)
        start = time.perf_counter()
        loss(x, t).backward()
        return time.perf_counter() - start

    first = {name: step(name) for name in variants}  # warm-up (and compilation)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name in variants:
            seconds[name].append(step(name))
    gflop = step_flops(args.size, args.batch) / 1e9
    base = statistics.median(seconds["nchw"])
    rows = []
    for name, s in seconds.items():
        med = statistics.median(s)
        rows.append(
            [
                name,
                f"{med:.3f}",
                f"{min(s):.3f}-{max(s):.3f}",
                f"{first[name]:.1f}",
                f"{base / med:.2f}x",
                f"{gflop / med:.0f}",
                f"{gflop / med / (peak / 1e9):.0%}",
            ]
        )
    header = ["variant", "s/step (median)", "min-max", "first step s", "speed vs nchw", "conv GFLOP/s", "of fp32 peak"]
    print(f"\n{args.size} px, batch {args.batch}, {gflop:.0f} conv GFLOP a step, {args.rounds} interleaved rounds\n")
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
