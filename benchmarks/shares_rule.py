"""Which share rule makes a recipe mean the same on two trunks: value shares or gradient-norm shares?

The same stylize recipe (Johnson's VGG16 layers: content relu2_2, style relu1_2..relu4_3, TV), stated in
shares, runs on HED's VGG16 (``weights="hed"``, offline) and on a random-init VGG16 (seeded), once calibrated
by each rule and once with the raw default weights. After the optimisation it reports, per run:

- the shares each family has at the result, by value and by gradient (on the run's own trunk);
- trunk-free measures of the image: PSNR to the content image, and where its colour statistics lie between
  the content's and the style's (1 = the content's per-channel mean/std, 0 = the style's).

The rule under which these agree across the two trunks is the one that makes a recipe portable.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/shares_rule.py --size 64 --steps 100
"""

from __future__ import annotations

import argparse
import math

import torch

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.data.defaults import default_image_path
from lossnet.data.io import load_image, resize_longer_side
from lossnet.explore.objective import ImageObjective
from lossnet.explore.optimize import OptimizeConfig, resize
from lossnet.explore.stylize import StylizeConfig, stylize
from lossnet.terms.shares import family_shares, measure_terms

SHARES = {"feature": 0.5, "style": 0.45, "tv": 0.05}


def colour_position(x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """Where x's per-channel mean/std lie on the way from the style's (0) to the content's (1)."""

    def moments(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t.mean((0, 2, 3)), t.std((0, 2, 3))])

    d = lambda a, b: float(torch.linalg.vector_norm(moments(a) - moments(b)))  # noqa: E731
    return d(x, style) / d(content, style)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(float(((a - b) ** 2).mean()))


def run(trunk: str, mode: str, content: torch.Tensor, style: torch.Tensor, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    fx = FeatureExtractor("vgg16", layers, "hed" if trunk == "hed" else None, (0.0, 1.0))
    shares = {} if mode == "raw" else SHARES
    config = StylizeConfig(shares=shares, share_rule=mode if mode != "raw" else "gradient",
                           optimize=OptimizeConfig(steps=steps))  # fmt: skip
    out = stylize(content, style, config=config, extractor=fx)
    c = out.config
    objective = ImageObjective(fx, content, c.content_layers, resize(style, tuple(style.shape[-2:])),
                               {k: c.style_weight * v for k, v in c.style_layers.items()}, c.tv_weight)  # fmt: skip
    m = measure_terms(objective.engine, fx, out.image)
    end = family_shares(m, {t.key: t.weight for t in objective.engine})
    row = {f"value {k}": v for k, v in end["value"].items()} | {f"grad {k}": v for k, v in end["gradient"].items()}
    colour = colour_position(out.image, content, style)
    return row | {"PSNR to content": psnr(out.image, content), "colour (1=content)": colour}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--content", default="chelsea")
    p.add_argument("--style", default="ihc")
    a = p.parse_args()
    content = resize_longer_side(load_image(default_image_path(a.content)), a.size)
    style = resize_longer_side(load_image(default_image_path(a.style)), a.size)
    rows = {}
    for mode in ("raw", "value", "gradient"):
        for trunk in ("hed", "random"):
            rows[(mode, trunk)] = run(trunk, mode, content, style, a.steps)
            print(mode, trunk, {k: round(v, 3) for k, v in rows[(mode, trunk)].items()}, flush=True)
    cols = list(rows[("raw", "hed")])
    print("| rule | trunk | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for (mode, trunk), r in rows.items():
        cells = [f"{r[k]:.0%}" if k.startswith(("value", "grad")) else f"{r[k]:.2f}" for k in cols]
        print(f"| {mode} | {trunk} | " + " | ".join(cells) + " |")
    for mode in ("raw", "value", "gradient"):
        h, r = rows[(mode, "hed")], rows[(mode, "random")]
        gap = max(abs(h[k] - r[k]) for k in cols if k.startswith(("value", "grad")))
        psnr_gap = abs(h["PSNR to content"] - r["PSNR to content"])
        colour_gap = abs(h["colour (1=content)"] - r["colour (1=content)"])
        print(f"{mode}: largest share gap {gap:.0%}, PSNR gap {psnr_gap:.2f} dB, colour gap {colour_gap:.2f}")


if __name__ == "__main__":
    main()
