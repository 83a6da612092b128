"""Deprecated, use :mod:`lossnet.inference`; removed in 0.3.

The names below are re-exported from where they live now (:mod:`lossnet.inference` and
:mod:`lossnet.checkpoint`), so ``from lossnet.apply import ...`` keeps working for one release.
"""

from lossnet.checkpoint import ModelInfo
from lossnet.inference import (
    BIT_DEPTHS,
    FORMATS,
    ApplySummary,
    apply_files,
    apply_model,
    load_model,
    read_model_info,
    size_rule,
)

__all__ = [
    "BIT_DEPTHS",
    "FORMATS",
    "ApplySummary",
    "ModelInfo",
    "apply_files",
    "apply_model",
    "load_model",
    "read_model_info",
    "size_rule",
]
