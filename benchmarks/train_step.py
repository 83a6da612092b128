"""Benchmark c: training steps per second, lossnet's trainer against a straightforward loop.

Two tasks, each at ``size`` px crops and batch ``batch`` (256 px, batch 4 in the full run),
with the networks of the recipes (``TransformerNet`` channels 32 with 5 residual blocks;
``SuperResNet`` x4 with 64 channels, 4 residual blocks and 9x9 heads, input ``size / 4``):

- ``lossnet``: the trainer's own step, the public :func:`lossnet.train.step.train_step`, on the
  network, loss and optimizer built from ``task_config(task, precision=...)`` with the
  functions ``lossnet train`` builds them with: the
  network's forward and the loss under autocast (``bf16``), the task's paper loss
  (``johnson2016_style``: VGG16 cut after relu4_3, the style image's Grams computed once
  and cached; ``johnson2016_superres``: VGG16 cut after relu2_2), the target under
  ``no_grad``, a frozen loss network, Adam. ``fp32`` is also timed, to separate what the
  cut network and the cached Grams give from what bf16 gives.
- ``straightforward``: the loop as it is commonly first written, here: fp32; a full-depth
  VGG16 ``features`` run to its end on the output and on the target, with autograd on
  both (the VGG is not frozen, so the backward also computes its weights' gradients);
  for style, the style image's features and Grams recomputed every step; the same
  network, terms and weights (MSE of features and of Grams normalised by ``C H W``,
  TV), ImageNet mean/std preprocessing, Adam.

Both start from the same initial weights and see the same batch. The VGG weights are random
(``loss_weights=None``): the time of a convolution does not depend on its values.

Run as ``python -m benchmarks.train_step [--quick]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Timing, bench_dtypes, machine_line, table, time_calls
from lossnet.backbones.vgg import VGG, layer_index
from lossnet.losses.presets import get_preset
from lossnet.memory import keep_freed_memory
from lossnet.models import build_model
from lossnet.data.folder import default_dataset
from lossnet.data.tasks import PairDataset
from lossnet.models import model_spec
from lossnet.runtime import Runtime, resolve
from lossnet.tasks import TASKS as TASK_REGISTRY
from lossnet.train.config import model_kwargs, task_config
from lossnet.train.inputs import load_style_image
from lossnet.train.loss_network import training_loss
from lossnet.train.step import make_optimizer, train_step

TASKS = ("style", "superres")
#: The target of issue 5: lossnet's training step at least this many times the straightforward loop's rate.
TARGET = 2.0
FULL = {"size": 256, "batch": 4, "warmup": 1, "repeats": 3}
QUICK = {"size": 64, "batch": 2, "warmup": 1, "repeats": 2}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Row:
    task: str
    impl: str  # "lossnet" or "straightforward"
    precision: str  # "bf16" or "fp32"
    size: int  # the target's side in pixels
    batch: int
    timing: Timing
    top_ops: list[tuple[str, float]] | None = None  # (op, share of self CPU time) of one profiled step

    @property
    def steps_per_s(self) -> float:
        return 1.0 / self.timing.median


# -- lossnet: the trainer's step ---------------------------------------------------------------------


@dataclass
class Trainer:
    """What one trainer step needs, built as ``lossnet train`` builds it."""

    spec: dict
    model: nn.Module
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    runtime: Runtime
    scaler: torch.amp.GradScaler
    style: torch.Tensor | None

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return train_step(self.model, self.loss, self.optimizer, (x, y), self.runtime, self.scaler)


def trainer(task: str, size: int, batch: int, precision: str) -> tuple[Trainer, torch.Tensor, torch.Tensor]:
    """The network, loss and optimizer for ``task`` as ``lossnet train`` builds them, and a batch ``(x, y)``.

    As :func:`lossnet.train.train` does, it keeps freed memory for the next step (:mod:`lossnet.memory`; process-wide,
    unless ``LOSSNET_KEEP_FREED_MEMORY=0``): the steps timed here are the trainer's.
    """
    keep_freed_memory()
    config = task_config(
        task,
        crop_size=size,
        batch_size=batch,
        steps=10**6,
        precision=precision,
        loss_weights=None,
        device="cpu",
        style_size=size,  # Johnson et al. used the style image at the training resolution
    )
    torch.manual_seed(config.seed)  # the trainer's initial weights
    spec = model_spec(config.model, **model_kwargs(config))
    model = build_model(spec)
    loss, _ = training_loss(config)
    style = load_style_image(config)[0] if TASK_REGISTRY[task].needs_style_image else None
    if style is not None:
        loss.set_style_target(style)
    runtime = resolve(precision, "cpu")
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.grad_scaler)
    pairs = PairDataset(default_dataset("train", crop_size=size, seed=config.seed), task, scale=config.scale)
    x, y = (torch.stack(t) for t in zip(*(pairs[i % len(pairs)] for i in range(batch)), strict=True))
    if config.channels_last:  # the recipe's memory format, as the trainer applies it (superres's)
        model.to(memory_format=torch.channels_last)
        x, y = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    job = Trainer(spec, model, loss, make_optimizer(config, model.parameters()), runtime, scaler, style)
    return job, x, y


# -- the straightforward loop --------------------------------------------------------------------------


class Straightforward:
    """One training step written plainly: fp32, the whole VGG16 on output and target, Grams recomputed."""

    def __init__(self, task: str, model: nn.Module, style: torch.Tensor | None) -> None:
        preset = get_preset(TASK_REGISTRY[task].paper_loss)
        self.model = model.train()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.vgg = VGG("vgg16").features  # full depth; parameters left trainable, as a first version would
        self.feature_layers, self.style_layers = dict(preset.feature_layers), dict(preset.style_layers)
        self.tv_weight = preset.tv_weight
        wanted = {**self.feature_layers, **self.style_layers}
        self.at = {layer_index("vgg16", name): name for name in wanted}
        self.style = style
        self.mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, out = (x - self.mean) / self.std, {}
        for i, layer in enumerate(self.vgg):  # to the end of the network, whatever the loss uses
            h = layer(h)
            if i in self.at:
                out[self.at[i]] = h
        return out

    @staticmethod
    def gram(f: torch.Tensor) -> torch.Tensor:
        b, c, h, w = f.shape
        f = f.reshape(b, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        out = self.model(x)
        f_out, f_y = self.features(out), self.features(y)  # the target with autograd too
        loss = sum(w * F.mse_loss(f_out[n], f_y[n]) for n, w in self.feature_layers.items())
        if self.style_layers:
            f_style = self.features(self.style)  # the fixed style image, again every step
            for n, w in self.style_layers.items():
                g_out = self.gram(f_out[n])
                loss = loss + w * F.mse_loss(g_out, self.gram(f_style[n]).expand_as(g_out))
        if self.tv_weight:
            tv = (out[..., 1:, :] - out[..., :-1, :]).abs().mean() + (out[..., :, 1:] - out[..., :, :-1]).abs().mean()
            loss = loss + self.tv_weight * tv
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


# -- measuring -----------------------------------------------------------------------------------------


def top_ops(fn: Callable[[], object], n: int = 6) -> list[tuple[str, float]]:
    """The ``n`` operators with the largest share of self CPU time in one call of ``fn`` (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:n]
    return [(e.key, e.self_cpu_time_total / total) for e in ranked]


def measure_task(task: str, grid: dict[str, int], precisions: tuple[str, ...], profile: bool) -> list[Row]:
    """Time lossnet's trainer step in each precision, then the straightforward loop, on one batch and one init."""
    size, batch, warmup, repeats = grid["size"], grid["batch"], grid["warmup"], grid["repeats"]
    rows = []
    first = None
    for precision in precisions:
        job, x, y = trainer(task, size, batch, precision)
        if first is None:  # every run starts from the same seed; keep its weights and batch for the loop
            state = {k: v.clone() for k, v in job.model.state_dict().items()}
            first = (job.spec, state, (x, y), job.style)
        xy = first[2]
        timing = time_calls(lambda: job.step(*xy), warmup=warmup, repeats=repeats)
        ops = top_ops(lambda: job.step(*xy)) if profile else None
        rows.append(Row(task, "lossnet", precision, size, batch, timing, ops))
    spec, state, xy, style = first
    model = build_model(spec)
    model.load_state_dict(state)
    plain = Straightforward(task, model, style)
    timing = time_calls(lambda: plain.step(*xy), warmup=warmup, repeats=repeats)
    ops = top_ops(lambda: plain.step(*xy)) if profile else None
    rows.append(Row(task, "straightforward", "fp32", size, batch, timing, ops))
    return rows


def run(quick: bool = False, log: Callable[[str], None] = print) -> list[Row]:
    """Time both tasks: lossnet bf16 and fp32, and the straightforward fp32 loop."""
    grid = QUICK if quick else FULL
    dtypes, left_out = bench_dtypes()  # bf16 only where it is not emulated (measured)
    if left_out:
        log(f"c. {left_out}")
    rows: list[Row] = []
    for task in TASKS:
        new = measure_task(task, grid, tuple(reversed(dtypes)), profile=True)
        for r in new:
            log(f"c. {task:8s} {r.impl:15s} {r.precision}: {r.timing.median:.3f} s/step ({r.steps_per_s:.2f} steps/s)")
        rows += new
    return rows


def _find(rows: list[Row], task: str, impl: str, precision: str) -> Row:
    return next(r for r in rows if (r.task, r.impl, r.precision) == (task, impl, precision))


def verdict_lines(rows: list[Row]) -> list[str]:
    """One line per task: lossnet bf16 over straightforward fp32, against the 2x target."""
    lines = []
    for task in dict.fromkeys(r.task for r in rows):
        plain, fp32 = _find(rows, task, "straightforward", "fp32"), _find(rows, task, "lossnet", "fp32")
        if not any((r.task, r.impl, r.precision) == (task, "lossnet", "bf16") for r in rows):
            ratio = fp32.steps_per_s / plain.steps_per_s
            verdict = "**met**" if ratio >= TARGET else f"**missed** ({ratio / TARGET:.0%} of the target)"
            lines.append(f"- {task}: lossnet fp32 {ratio:.2f}x the straightforward loop's steps/s (bf16 not run here): "
                         f"{verdict}")  # fmt: skip
            continue
        fast = _find(rows, task, "lossnet", "bf16")
        ratio = fast.steps_per_s / plain.steps_per_s
        verdict = "**met**" if ratio >= TARGET else f"**missed** ({ratio / TARGET:.0%} of the target)"
        lines.append(
            f"- {task}: lossnet bf16 {ratio:.2f}x the straightforward loop's steps/s (target >= {TARGET:.0f}x): "
            f"{verdict}; lossnet fp32 alone (cut network, cached Grams, frozen VGG, no_grad target) "
            f"{fp32.steps_per_s / plain.steps_per_s:.2f}x, bf16 on top of that {fast.steps_per_s / fp32.steps_per_s:.2f}x"
        )
    return lines


def report(rows: list[Row]) -> str:
    """A Markdown table of the timings, the ratio and target lines, and where each step's time goes."""
    header = ["task", "implementation", "precision", "size", "batch", "s/step (median)", "min-max", "steps/s"]
    body = [
        [
            r.task,
            r.impl,
            r.precision,
            f"{r.size}" + (f" (input {r.size // 4})" if r.task == "superres" else ""),
            str(r.batch),
            f"{r.timing.median:.3f}",
            f"{r.timing.spread[0]:.3f}-{r.timing.spread[1]:.3f}",
            f"{r.steps_per_s:.2f}",
        ]
        for r in rows
    ]
    out = [table(header, body), "", *verdict_lines(rows)]
    profiled = [r for r in rows if r.top_ops]
    if profiled:
        out += ["", "Where one step's time goes (torch.profiler, share of self CPU time, top operators):", ""]
        for r in profiled:
            ops = ", ".join(f"{name} {share:.0%}" for name, share in r.top_ops)  # type: ignore[union-attr]
            out.append(f"- {r.task} {r.impl} {r.precision}: {ops}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['size']} px, batch {QUICK['batch']}")
    args = parser.parse_args(argv)
    print(f"machine: {machine_line(torch.device('cpu'))}", flush=True)
    print(report(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
