"""Deprecated alias of :mod:`lossnet.evaluation` (kept for one release): import from there instead.

Re-exports only; every name here is defined in :mod:`lossnet.evaluation`.
"""

from lossnet.evaluation import (
    DEFAULT_JPEG_QUALITY,
    EVAL_TASKS,
    NOT_AVAILABLE,
    EvalResult,
    Metric,
    evaluate,
    method_names,
    score,
    write_tables,
)

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "EVAL_TASKS",
    "NOT_AVAILABLE",
    "EvalResult",
    "Metric",
    "evaluate",
    "method_names",
    "score",
    "write_tables",
]
