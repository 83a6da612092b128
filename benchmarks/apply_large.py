"""Benchmark e: ``apply`` on a 4000x3000 image: wall time and peak memory, tiled against whole-image.

A fast-style-transfer network of Johnson et al.'s size (``TransformerNet``, channels 32, 5
residual blocks; random weights, saved as a checkpoint) is applied with
:func:`lossnet.inference.apply_files`, as ``lossnet apply`` runs it, to a synthetic 12-megapixel
JPEG (smooth colour fields plus noise); the output is a PNG of the same size. Each
measurement runs in a **fresh subprocess**, so that its peak memory is its own:

- time: ``apply_files`` from reading the file to the written PNG (decode, network, encode),
  after a warm-up call of the network on a 256x256 image in the same process;
- peak memory: the process's peak resident set size (``VmHWM`` in ``/proc/self/status``,
  ``ru_maxrss`` elsewhere), and its rise above the resident size just before the call
  (after imports, model load and warm-up). Torch's CPU tensors are allocated outside
  Python's allocator, so ``tracemalloc`` would not see them; the RSS does.

``tile=512`` (the default of ``lossnet apply``) is compared with ``tile=None`` (the whole image
in one forward pass). In the full run the tiled case is also measured at 2000x1500: what grows
with the image is the input and output buffers, not the tiles' working memory.

Run as ``python -m benchmarks.apply_large [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import machine_line, mib, run_child, table

#: (width, height, tile) of each measurement; tile None is the whole image at once.
#: One run of each: each runs in its own process, its peak memory is deterministic, and the two runs of each
#: case in an earlier full run agreed within a few percent in time (BENCHMARKS.md, 09:42).
FULL = {"cases": ((4000, 3000, 512), (4000, 3000, None), (2000, 1500, 512)), "repeats": 1}
QUICK = {"cases": ((512, 384, 256), (512, 384, None)), "repeats": 1}
MODEL_KWARGS = {"channels": 32, "num_residual": 5}


@dataclass
class Row:
    width: int
    height: int
    tile: int | None
    seconds: list[float]  # one per fresh process
    peak_bytes: int  # the largest peak RSS of those processes
    rise_bytes: int  # the largest rise of the RSS during the call

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def buffers_bytes(self) -> int:
        """The image buffers any apply must hold: the float32 RGB input and the uint8 RGB output."""
        return self.width * self.height * 3 * (4 + 1)


# -- the measured process ----------------------------------------------------------------------------


def _rss_kib(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def child(checkpoint: str, image: str, out_dir: str, tile: int | None) -> dict[str, float]:
    """Apply the checkpoint to the image in this process; return seconds, peak and baseline RSS in bytes."""
    from lossnet.inference import apply_files, apply_model, load_model

    model = load_model(checkpoint, "cpu")
    apply_model(model, torch.rand(1, 3, 256, 256), tile=tile)  # warm-up: thread pools, kernels
    before = _rss_kib("VmRSS")
    start = time.perf_counter()
    summary = apply_files(model, image, out_dir, tile=tile, device="cpu")
    seconds = time.perf_counter() - start
    if not summary.ok:
        raise RuntimeError(f"apply failed: {summary.failed}")
    return {"seconds": seconds, "peak": _rss_kib("VmHWM") * 1024, "before": before * 1024}


# -- the driver --------------------------------------------------------------------------------------


def synthetic_image(path: Path, width: int, height: int) -> Path:
    """A photo-like JPEG: smooth random colour fields (bilinear from a coarse grid) plus mild noise."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, max(2, height // 200), max(2, width // 200), generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    noisy = (smooth + 0.03 * torch.randn(1, 3, height, width, generator=g)).clamp(0, 1)
    array = (noisy[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).save(path, quality=95)
    return path


def _checkpoint(path: Path) -> Path:
    from lossnet.models import build_model, model_spec
    from lossnet.checkpoint import save_checkpoint

    spec = model_spec("TransformerNet", **MODEL_KWARGS)
    torch.manual_seed(0)
    save_checkpoint(path, build_model(spec).state_dict(), {"model": spec, "task": "style", "step": 0})
    return path


def measure(width: int, height: int, tile: int | None, repeats: int, tmp: Path) -> Row:
    image = tmp / f"synthetic_{width}x{height}.jpg"
    if not image.exists():
        synthetic_image(image, width, height)
    checkpoint = tmp / "style.safetensors"
    if not checkpoint.exists():
        _checkpoint(checkpoint)
    results = []
    for i in range(repeats):
        out = tmp / f"out_{width}_{tile}_{i}"
        args = [str(checkpoint), str(image), str(out), "--tile", str(tile or 0)]
        results.append(run_child("benchmarks.apply_large", args))
    return Row(
        width,
        height,
        tile,
        [r["seconds"] for r in results],
        max(int(r["peak"]) for r in results),
        max(int(r["peak"] - r["before"]) for r in results),
    )


def run(quick: bool = False, log: Callable[[str], None] = print) -> list[Row]:
    grid = QUICK if quick else FULL
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height, tile in grid["cases"]:
            row = measure(width, height, tile, grid["repeats"], Path(tmp))
            log(
                f"e. {width}x{height} tile {tile or 'none'}: {row.median:.1f} s, peak RSS {mib(row.peak_bytes)} MiB "
                f"(+{mib(row.rise_bytes)} MiB during the call)"
            )
            rows.append(row)
    return rows


def report(rows: list[Row]) -> str:
    header = [
        "image",
        "tile",
        "s (median)",
        "runs",
        "peak RSS MiB",
        "rise in the call MiB",
        "of which image buffers MiB",
    ]
    header.append("working memory MiB")
    body = [
        [
            f"{r.width}x{r.height}",
            str(r.tile) if r.tile else "none (whole image)",
            f"{r.median:.1f}",
            str(len(r.seconds)),
            mib(r.peak_bytes),
            mib(r.rise_bytes),
            mib(r.buffers_bytes),
            mib(max(0, r.rise_bytes - r.buffers_bytes)),
        ]
        for r in rows
    ]
    lines = [table(header, body), ""]
    largest = max((r.width * r.height for r in rows), default=0)
    tiled = next((r for r in rows if r.width * r.height == largest and r.tile), None)
    whole = next((r for r in rows if r.width * r.height == largest and not r.tile), None)
    if tiled and whole:
        lines.append(
            f"- {tiled.width}x{tiled.height}: tiled (tile {tiled.tile}) rises by {mib(tiled.rise_bytes)} MiB, the whole "
            f"image at once by {mib(whole.rise_bytes)} MiB ({whole.rise_bytes / max(1, tiled.rise_bytes):.1f}x); "
            f"time tiled {tiled.median:.1f} s, whole {whole.median:.1f} s ({tiled.median / whole.median:.2f}x)"
        )
    small = [r for r in rows if r.tile and r.width * r.height < largest]
    if tiled and small:
        s = small[0]
        lines.append(
            f"- tiled working memory (rise less the input and output buffers) at {s.width}x{s.height}: "
            f"{mib(max(0, s.rise_bytes - s.buffers_bytes))} MiB; at {tiled.width}x{tiled.height}: "
            f"{mib(max(0, tiled.rise_bytes - tiled.buffers_bytes))} MiB: bounded by the tile size, not the image"
        )
    lines.append(
        "- time covers reading the JPEG, the network and writing the PNG; the image buffers are the float32 input "
        "and the uint8 output (3 x (4 + 1) bytes a pixel); the working memory is the rest of the rise (activations, "
        "the row of tiles, the decoder's and encoder's buffers)"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 512x384 image, tile 256")
    parser.add_argument("--child", nargs=3, metavar=("CKPT", "IMAGE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, default=512, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, tile=args.tile or None)))
        return 0
    print(f"machine: {machine_line(torch.device('cpu'))}", flush=True)
    print(report(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
