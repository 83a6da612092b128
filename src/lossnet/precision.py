"""Precision names shared by training, apply and eval: one map from name to autocast dtype.

>>> PRECISIONS["bf16"]
torch.bfloat16
>>> with autocast("fp32", "cpu"):
...     pass
"""

from __future__ import annotations

import contextlib

import torch

from lossnet.validation import check_choice

#: ``fp32`` runs as is; ``bf16`` and ``fp16`` run under ``torch.autocast`` with that dtype.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in for ``precision`` on ``device_type`` (``'cpu'``, ``'cuda'``)."""
    dtype = PRECISIONS[check_choice(precision, list(PRECISIONS), "precision")]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)
