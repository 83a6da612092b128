"""The main job of ``make demo``, offline on the embedded default images.

1. :mod:`~lossnet.demo.breakdown`: what a perceptual loss sees in common degradations
   (``feature_differences.png``, ``breakdown.csv``; seconds).
2. :mod:`~lossnet.demo.training`: x4 super-resolution trained with per-pixel MSE and
   with a perceptual loss for the same steps, plus a short fast-style-transfer run
   (``comparison.png``, ``results.csv``, ``results.md``; minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lossnet.backbones.weights import LoadedWeights, auto_weights_name, load_weights
from lossnet.data.degradations import DEGRADATIONS
from lossnet.demo.breakdown import DEMO_LAYERS, BreakdownResult, run_breakdown
from lossnet.demo.training import TrainingDemoResult, run_training_demo
from lossnet.errors import InputError
from lossnet.runtime import Runtime


@dataclass
class DemoConfig:
    """Settings of the demo."""

    out_dir: Path = Path("outputs/demo")  # where the sheets and tables go
    weights: str | LoadedWeights | None = "auto"  # ImageNet where it can be had, else HED (offline), logged
    image: str = "astronaut"  # the breakdown's image, one of lossnet.data.DEFAULT_IMAGES
    size: int = 256  # longer side of every image, in pixels
    degradations: tuple[str, ...] = tuple(DEGRADATIONS)  # names from lossnet.data.DEGRADATIONS
    train: bool = True  # run part 2 (training); False for the breakdown alone
    sr_steps: int = 400  # steps of each super-resolution run
    style_steps: int = 300  # steps of the style-transfer run
    style_weight: float = 1.0  # weight of each sliced-Wasserstein style layer (the style recipe's: 1)
    crop_size: int = 64  # training crop side (sized so that the demo fits 5 min on a 2-core AVX2 CPU in fp32)
    style_image: str = "ihc"  # default image (or file) that gives the style
    precision: str | Runtime = "auto"  # "auto" (bf16 where native, else fp32), "fp32", "bf16", or a Runtime


@dataclass
class DemoResult:
    """Both parts' results; ``training`` is ``None`` when ``train=False``; ``seconds``: wall time per part."""

    breakdown: BreakdownResult
    training: TrainingDemoResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    config: DemoConfig | None = None,
    progress: bool = False,
    on_breakdown: Callable[[BreakdownResult], None] | None = None,
) -> DemoResult:
    """Run the demo into ``config.out_dir`` (see the module docstring for what it writes).

    ``progress`` shows a named progress bar per training run; ``on_breakdown`` is called with
    part 1's result as soon as it is written, before part 2 trains (the CLI prints its table).
    """
    config = config or DemoConfig()
    out_dir = Path(config.out_dir)
    if isinstance(config.weights, LoadedWeights):
        if config.train:
            raise InputError("the training part needs weights by name or path (e.g. 'hed'), not loaded weights")
        loaded = config.weights
    else:
        loaded = load_weights("vgg16", config.weights)
    start = time.perf_counter()
    breakdown = run_breakdown(out_dir, loaded, config.image, config.size, config.degradations)
    seconds = {"breakdown": time.perf_counter() - start}
    if on_breakdown is not None:
        on_breakdown(breakdown)
    training = None
    if config.train:
        start = time.perf_counter()
        weights = config.weights if not isinstance(config.weights, LoadedWeights) else None
        if weights == "auto":  # what part 1 found, so that every part uses the same weights and says so once
            weights = auto_weights_name(loaded)
        training = run_training_demo(
            out_dir,
            weights,
            sr_steps=config.sr_steps,
            style_steps=config.style_steps,
            style_weight=config.style_weight,
            size=config.size,
            crop_size=config.crop_size,
            style_image=config.style_image,
            precision=config.precision,
            progress=progress,
        )
        seconds["training"] = time.perf_counter() - start
    return DemoResult(breakdown, training, seconds)


__all__ = ["DEMO_LAYERS", "BreakdownResult", "DemoConfig", "DemoResult", "run_demo"]
