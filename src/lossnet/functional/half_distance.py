"""Per-sample distances of half-precision features, computed in float32 a slice at a time.

Under bf16 autocast the features that feed a distance are bf16, and the distance must be
taken in float32 (a mean of many small differences is where bf16 loses the signal). Converting
both activations to float32 first allocates two float32 copies the size of the layer, and
autograd keeps one for the backward. Here the float32 arithmetic runs on slices of pixels
that stay in cache, nothing float32 is kept for the backward (it recomputes the difference
from the half-precision tensors, which are alive anyway), and the gradient comes back in the
features' dtype. The values are the float32 ones: only the order of the sum differs.
"""

from __future__ import annotations

import torch

#: Bytes of float32 working memory per slice (all samples of the batch together).
CHUNK_BYTES = 2 << 20

HALF_DTYPES = (torch.float16, torch.bfloat16)


def _flat(x: torch.Tensor) -> torch.Tensor | None:
    """``(B, N)`` in memory order without a copy (contiguous or channels-last), else ``None``."""
    if x.is_contiguous():
        return x.reshape(x.shape[0], -1)
    if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
    return None


def fused_applies(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether :func:`half_distance` can take ``x`` and ``y``: half precision, one shape, one memory layout."""
    return (
        x.dtype in HALF_DTYPES
        and y.dtype == x.dtype
        and x.shape == y.shape
        and x.ndim >= 2
        and x.stride() == y.stride()
        and x.device.type == "cpu"
        and _flat(x) is not None
    )


def _slice_length(batch: int) -> int:
    """Elements per sample in one slice: about ``CHUNK_BYTES`` of float32 for the whole batch."""
    return max(4096, CHUNK_BYTES // (4 * batch))


def _derivative(d: torch.Tensor, criterion: str, eps: float) -> torch.Tensor:
    if criterion == "l1":
        return d.sign()
    if criterion == "mse":
        return 2.0 * d
    return d / torch.sqrt(d * d + eps * eps)


def _value(d: torch.Tensor, criterion: str, eps: float) -> torch.Tensor:
    if criterion == "l1":
        return d.abs()
    if criterion == "mse":
        return d * d
    return torch.sqrt(d * d + eps * eps) - eps


class _HalfDistance(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, y: torch.Tensor, criterion: str, eps: float
    ) -> torch.Tensor:
        ctx.save_for_backward(x, y)
        ctx.criterion, ctx.eps = criterion, eps
        xf, yf = _flat(x), _flat(y)
        b, n = xf.shape
        total = torch.zeros(b, dtype=torch.float32, device=x.device)
        step = _slice_length(b)
        for s in range(0, n, step):
            d = xf[:, s : s + step].float() - yf[:, s : s + step].float()
            total += _value(d, criterion, eps).sum(1)
        return total / n

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        x, y = ctx.saved_tensors
        xf, yf = _flat(x), _flat(y)
        b, n = xf.shape
        gx = torch.empty_like(x)  # same dtype and memory layout as x
        gxf = _flat(gx)
        scale = (grad.float() / n).unsqueeze(1)
        step = _slice_length(b)
        for s in range(0, n, step):
            d = xf[:, s : s + step].float() - yf[:, s : s + step].float()
            gxf[:, s : s + step] = _derivative(d, ctx.criterion, ctx.eps).mul_(scale)
        need_x, need_y = ctx.needs_input_grad[:2]
        return (gx if need_x else None), (-gx if need_y else None), None, None


def half_distance(x: torch.Tensor, y: torch.Tensor, criterion: str, eps: float) -> torch.Tensor:
    """Per-sample float32 mean of the element-wise ``criterion`` of two half-precision tensors, ``(B,)``.

    Call only where :func:`fused_applies` holds. Second derivatives are not available (the backward
    is not itself differentiable); convert to float32 first where they are needed.
    """
    return _HalfDistance.apply(x, y, criterion, eps)
