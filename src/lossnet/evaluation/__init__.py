"""Evaluation: the metrics registry and its one scoring function, the ``lossnet eval`` run and its tables.

- :mod:`~lossnet.evaluation.scoring`: :class:`Metric` (each column declared once) and
  :func:`score`, which ``lossnet eval``, the trainer's validation and the demo all call;
- :mod:`~lossnet.evaluation.run`: :func:`evaluate`, networks and their task's baseline on
  ground-truth images;
- :mod:`~lossnet.evaluation.tables`: :class:`EvalResult` and its CSV and Markdown tables,
  :func:`write_tables`.
"""

from lossnet.evaluation.run import DEFAULT_JPEG_QUALITY, EVAL_TASKS, evaluate, method_names
from lossnet.evaluation.scoring import PIXEL_METRICS, Metric, feature_metric, headline_metrics, lpips_metric, score
from lossnet.evaluation.tables import NOT_AVAILABLE, EvalResult, write_tables

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "EVAL_TASKS",
    "NOT_AVAILABLE",
    "PIXEL_METRICS",
    "EvalResult",
    "Metric",
    "evaluate",
    "feature_metric",
    "headline_metrics",
    "lpips_metric",
    "method_names",
    "score",
    "write_tables",
]
