"""Gram matrices of feature maps: the statistics that style losses compare."""

from __future__ import annotations

import torch

from lossnet.validation import check_tensor

#: On CPU, half-precision features are converted to float32 this many bytes at a time (a slice
#: of pixels for the whole batch) and their products summed into the Gram, instead of converting
#: the whole activation first. The slice stays in cache and no large float32 copy is allocated:
#: for (4, 64, 256, 256) bf16 features this took the forward from 43 ms to 17 ms (BENCHMARKS.md).
CPU_CHUNK_BYTES = 2 << 20


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """Batched Gram matrix, normalised by ``C * H * W``.

    ``G[b, i, j] = sum_{h, w} x[b, i, h, w] * x[b, j, h, w] / (C * H * W)``, as in Johnson et
    al. 2016, eq. 3 (Gatys et al. 2016 use the unnormalised sum). It is accumulated in
    float32 even under autocast, so bf16/fp16 features do not lose the sum; float64
    inputs stay float64.

    Half-precision features are saved for the backward as they are (no float32 copy is
    kept), and the backward of bf16 features runs in bf16: their gradient is bf16 anyway,
    and the one product ``(dG + dG^T) x`` rounds once, to that dtype (fp16 uses a float32
    product, where the scaled ``dG`` could underflow). Channels-last features are read as
    ``(B, H*W, C)`` without a copy.

    Args:
        x: features ``(B, C, H, W)``, any real values.

    Returns:
        ``(B, C, C)``, symmetric, positive semi-definite, float32 (or float64).

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
        >>> gram_matrix(x)
        tensor([[[1.2500, 2.7500],
                 [2.7500, 6.2500]]])
    """
    check_tensor(x, "gram_matrix input (features (B, C, H, W))", ndim=4)
    return _Gram.apply(x)


def _as_matrix(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(B, H*W, C)`` (pixels first) for channels-last features, without a copy; else ``(B, C, H*W)``."""
    b, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return x.permute(0, 2, 3, 1).reshape(b, h * w, c), True
    return x.reshape(b, c, h * w), False


def _accumulate_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _gram_sum(f: torch.Tensor, pixels_first: bool, dtype: torch.dtype) -> torch.Tensor:
    """The unnormalised ``(B, C, C)`` product of the matrix view ``f``, in ``dtype``."""
    if f.dtype == dtype:
        return f.transpose(1, 2) @ f if pixels_first else f @ f.transpose(1, 2)
    b, c, n = (f.shape[0], f.shape[2], f.shape[1]) if pixels_first else f.shape
    step = n if f.device.type != "cpu" else max(256, CPU_CHUNK_BYTES // (b * c * dtype.itemsize))
    out = torch.zeros(b, c, c, dtype=dtype, device=f.device)
    for start in range(0, n, step):
        part = (f[:, start : start + step] if pixels_first else f[..., start : start + step]).to(dtype)
        if pixels_first:
            out.baddbmm_(part.transpose(1, 2), part)
        else:
            out.baddbmm_(part, part.transpose(1, 2))
    return out


class _Gram(torch.autograd.Function):
    """``gram_matrix`` with a backward that keeps half-precision features as they are (see its docstring)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ctx.scale = 1.0 / (c * h * w)
        ctx.save_for_backward(x)
        with torch.autocast(x.device.type, enabled=False):
            f, pixels_first = _as_matrix(x)
            return _gram_sum(f, pixels_first, _accumulate_dtype(x)).mul_(ctx.scale)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        b, c, h, w = x.shape
        with torch.autocast(x.device.type, enabled=False):
            f, pixels_first = _as_matrix(x)
            # d/dx of sum(grad * x x^T) is (grad + grad^T) x: one product instead of autograd's two.
            sym = (grad + grad.transpose(1, 2)) * ctx.scale
            if x.dtype == torch.bfloat16:
                sym = sym.to(x.dtype)
            else:
                f = f.to(sym.dtype)
            df = f @ sym if pixels_first else sym @ f
            df = df.to(x.dtype)
            return df.reshape(b, h, w, c).permute(0, 3, 1, 2) if pixels_first else df.reshape(b, c, h, w)
