"""What a training run leaves for the user to read: CSV logs, TensorBoard events, sample sheets.

- :class:`CsvLog` appends one row per logged step; on resume it first drops the rows
  after the checkpoint's step, so the log reads as one uninterrupted run.
- :class:`TensorBoardLog` mirrors the scalars when ``tensorboard`` is installed, and
  does nothing otherwise.
- :func:`sample_sheet` lays out input | output | target per validation image (content |
  output | style image for style transfer).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lossnet.atomic import write_text
from lossnet.data.io import save_image
from lossnet.viz import Cell, contact_sheet

log = logging.getLogger("lossnet")


class CsvLog:
    """A CSV file of scalars, one row per step, columns fixed by the first row.

    Args:
        path: the ``.csv`` file (created with its folder).
        resume_step: keep only the existing rows with ``step <= resume_step`` (rewritten
            atomically); ``None`` starts a new file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> with CsvLog(p) as f:
    ...     f.write({"step": 1, "loss": 0.5}); f.write({"step": 2, "loss": 0.25})
    >>> with CsvLog(p, resume_step=1) as f:
    ...     f.write({"step": 2, "loss": 0.125})
    >>> p.read_text().split()
    ['step,loss', '1,0.5', '2,0.125']
    """

    def __init__(self, path: str | os.PathLike[str], resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] | None = None
        if resume_step is not None and self.path.exists():
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            if rows:
                self.columns = list(rows[0])
                kept = [r for r in rows if int(float(r["step"])) <= resume_step]
                lines = [",".join(self.columns)] + [",".join(r[c] for c in self.columns) for r in kept]
                write_text(self.path, "\n".join(lines) + "\n")
        elif self.path.exists():
            self.path.unlink()
        self._file = self.path.open("a", newline="")
        self._writer: csv.DictWriter | None = None

    def write(self, row: Mapping[str, float | int | str]) -> None:
        """Append a row; its keys must be the columns of the first row (missing ones are left empty)."""
        if self._writer is None:
            if self.columns is None:
                self.columns = list(row)
                self._file.write(",".join(self.columns) + "\n")
            self._writer = csv.DictWriter(self._file, self.columns, extrasaction="ignore", lineterminator="\n")
        self._writer.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CsvLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fmt(v: float | int | str) -> str:
    return f"{v:.7g}" if isinstance(v, float) else str(v)


class TensorBoardLog:
    """TensorBoard scalars under ``<out_dir>/tensorboard`` when the ``tensorboard`` package is installed."""

    def __init__(self, out_dir: str | os.PathLike[str], purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            log.debug("tensorboard is not installed; writing CSV logs only")
            self._writer = None
            return
        self._writer = SummaryWriter(str(Path(out_dir) / "tensorboard"), purge_step=purge_step)

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def write(self, step: int, scalars: Mapping[str, float], prefix: str = "") -> None:
        if self._writer is not None:
            for k, v in scalars.items():
                self._writer.add_scalar(f"{prefix}{k}", v, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def sample_sheet(
    inputs: Sequence[torch.Tensor],
    outputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    path: str | os.PathLike[str],
    title: str = "",
    cell_size: int = 192,
    style: torch.Tensor | Sequence[torch.Tensor] | None = None,
    split_input: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> Path:
    """Write a PNG with one row per image: input | output | target (atomically).

    Args:
        inputs, outputs, targets: ``(1, C, H, W)`` images in [0, 1], one per row; a
            1-channel image is shown in grey, and a smaller input (super-resolution)
            is enlarged with nearest neighbours so its pixels stay visible.
        path: the ``.png`` to write.
        title: a line above the grid (e.g. the step).
        style: for style transfer, the style image ``(1, 3, H, W)``, or one per row (a multi-style
            network): each row is then content (the input) | output | style, and ``targets`` (the content
            again) are not shown.
        split_input: for a task whose input carries its style image beside the content
            (:attr:`lossnet.tasks.Task.split_input`): ``(content, style)`` of an input, each ``(1, 3, H, W)``;
            each row is then content | output | style, and ``targets`` are not shown.
    """
    rows = []
    styles = [style] * len(inputs) if isinstance(style, torch.Tensor) else style
    for i, (x, y, t) in enumerate(zip(inputs, outputs, targets, strict=True)):
        if split_input is not None:  # a content and its style image in one input
            content, x_style = split_input(x)
            rows.append([Cell(_rgb(content), "content"), Cell(_rgb(y), "output"), Cell(_rgb(x_style), "style")])
            continue
        if styles is not None:
            rows.append([Cell(_rgb(x), "content"), Cell(_rgb(y), "output"), Cell(_rgb(styles[i]), "style")])
            continue
        if x.shape[-2:] != t.shape[-2:]:
            x = F.interpolate(x.float(), size=t.shape[-2:], mode="nearest")
        rows.append([Cell(_rgb(x), "input"), Cell(_rgb(y), "output"), Cell(_rgb(t), "target")])
    return save_image(contact_sheet(rows, cell_size=cell_size, title=title), path)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().float().cpu().clamp(0, 1)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def short_term(term: str) -> str:
    """``feature.relu2_2`` -> ``f.relu2_2`` for the progress bar."""
    head, _, tail = term.partition(".")
    return f"{head[0]}.{tail}" if tail else term


def checksum(model: nn.Module) -> str:
    """sha256 prefix of the parameters (what DDP keeps equal by averaging gradients)."""
    h = hashlib.sha256()
    for k, v in sorted(model.named_parameters()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


#: Seconds between a bar's redraws when stderr is a file or a pipe (``nohup``, CI, ``2> log``), not a terminal.
LOGGED_BAR_INTERVAL = 30.0


def progress_bar(progress: bool | str, default: str, start: int, stop: int) -> Any:
    """A tqdm bar over steps ``start .. stop`` named ``progress`` (a string) or ``default``; ``None`` when off.

    On a terminal (or in a notebook) it redraws as tqdm does by default. Written to a file or a pipe, each redraw
    is appended, about 250 characters with the loss terms, so it redraws every :data:`LOGGED_BAR_INTERVAL`
    seconds instead: a 160k-step run logs a few hundred redraws, not 160k.
    """
    if not progress:
        return None
    from tqdm.auto import tqdm

    desc = progress if isinstance(progress, str) else default
    logged = not sys.stderr.isatty() and "ipykernel" not in sys.modules
    interval = LOGGED_BAR_INTERVAL if logged else 0.1  # 0.1: tqdm's own default
    return tqdm(total=stop, initial=start, desc=desc, unit="step", dynamic_ncols=True, mininterval=interval)


def log_skipped(new: Sequence[tuple[Path, str]]) -> int:
    """Log newly skipped unreadable training files ``(path, reason)`` as one warning; returns how many."""
    if new:
        log.warning(
            "skipped %d unreadable training file%s: %s",
            len(new),
            "s" if len(new) > 1 else "",
            "; ".join(f"{p} ({reason})" for p, reason in new),
        )
    return len(new)
