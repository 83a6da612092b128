"""The result of an evaluation and its tables: :class:`EvalResult` (CSV, Markdown) and :func:`write_tables`."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from lossnet.atomic import write_text
from lossnet.errors import InputError, InputTypeError
from lossnet.evaluation.scoring import Metric
from lossnet.tasks import get_task

#: What a metric that cannot be computed shows in the tables.
NOT_AVAILABLE = "n/a"


@dataclass
class EvalResult:
    """What :func:`lossnet.evaluation.evaluate` measured.

    Attributes:
        task: ``'superres'``, ``'restore'`` or ``'colorize'``.
        scale: the upscaling factor (1 unless ``superres``).
        shave: pixels cropped from every border before scoring.
        images: the ground-truth images' names, in order.
        methods: the baseline first, then the networks, in the order given.
        metrics: the columns, in order.
        scores: ``(image, method) -> {metric key: value}``; a value is ``None`` where the metric
            is unavailable (see :attr:`notes`).
        models: method -> what it is (the baseline's recipe, or the checkpoint and its network).
        notes: one line per caveat: the feature network's weights, why LPIPS is unavailable,
            images that could not be read, and images the task or a network could not take (too small, say).
    """

    task: str
    scale: int
    shave: int
    images: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    scores: dict[tuple[str, str], dict[str, float | None]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> str:
        """The baseline's method name (the first method)."""
        return self.methods[0]

    def mean(self, method: str) -> dict[str, float | None]:
        """The mean over the images of each metric of ``method`` (``None`` where unavailable)."""
        out: dict[str, float | None] = {}
        for m in self.metrics:
            values = [self.scores[(image, method)][m.key] for image in self.images]
            out[m.key] = None if any(v is None for v in values) else math.fsum(values) / len(values)  # type: ignore[arg-type]
        return out

    def rows(self) -> list[tuple[str, str, dict[str, float | None]]]:
        """``(image, method, scores)`` for every image and method, then ``('mean', method, means)``."""
        out = [(image, method, self.scores[(image, method)]) for image in self.images for method in self.methods]
        return out + [("mean", method, self.mean(method)) for method in self.methods]

    def to_csv(self) -> str:
        """The table as CSV: ``image,method,<metric keys>``; full precision, ``n/a`` where unavailable."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["image", "method", *(m.key for m in self.metrics)])
        for image, method, scores in self.rows():
            writer.writerow([image, method, *(_cell(scores[m.key], None) for m in self.metrics)])
        return buffer.getvalue()

    def to_markdown(self) -> str:
        """The table as Markdown, a title line above it and the notes below it."""
        what = get_task(self.task).title.format(scale=self.scale)
        higher = ", ".join(m.label for m in self.metrics if m.higher_is_better)
        lower = ", ".join(m.label for m in self.metrics if not m.higher_is_better)
        arrows = f"higher is better: {higher}" + (f"; lower is better: {lower}" if lower else "")
        shave = f"{self.shave} px border shaved" if self.shave else "whole images"
        lines = [
            f"Evaluation: {what}, {len(self.images)} images, {shave} ({arrows}).",
            "",
            "| image | method | " + " | ".join(m.label for m in self.metrics) + " |",
            "|---|---|" + "---:|" * len(self.metrics),
        ]
        for image, method, scores in self.rows():
            cells = [_cell(scores[m.key], m.digits) for m in self.metrics]
            name = f"**{image}**" if image == "mean" else image
            lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += [f"- {method}: {self.models[method]}" for method in self.methods]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _cell(value: float | None, digits: int | None) -> str:
    if value is None:
        return NOT_AVAILABLE
    if digits is None:
        return repr(float(value))
    return f"{value:.{digits}f}"


def write_tables(result: EvalResult, out_dir: str | os.PathLike[str], stem: str = "eval") -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` into ``out_dir`` (created if needed), each atomically.

    Returns:
        ``(csv_path, md_path)``.
    """
    if not isinstance(result, EvalResult):
        raise InputTypeError(f"result must be an EvalResult (from evaluate); got {type(result).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; --out must be a folder (the tables go inside it)")
    return write_text(out / f"{stem}.csv", result.to_csv()), write_text(out / f"{stem}.md", result.to_markdown())


__all__ = ["NOT_AVAILABLE", "EvalResult", "write_tables"]
