"""Kept for imports of ``lossnet.precision``: the names now live in :mod:`lossnet.runtime`.

>>> PRECISIONS["bf16"]
torch.bfloat16
>>> with autocast("fp32", "cpu"):
...     pass
"""

from __future__ import annotations

from lossnet.runtime import PRECISION_CHOICES, PRECISIONS, Runtime, autocast, resolve

__all__ = ["PRECISIONS", "PRECISION_CHOICES", "Runtime", "autocast", "resolve"]
