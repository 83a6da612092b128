"""LPIPS's distance of one layer (Zhang et al. 2018, eq. 1), plain and fused.

For features ``x``, ``y`` of one layer and non-negative channel weights ``w``:
``d = mean_{h,w} sum_c w_c (x̂_c - ŷ_c)^2`` with ``x̂ = x / sqrt(|x|^2 + eps^2)`` the feature vector
at each position divided by its norm over channels.

The lpips reference divides by ``|x| + eps``, with the eps outside the square root: the gradient of
``|x|`` at a zero vector (a common ReLU output) is then 0/0, and training with LPIPS turns NaN. Inside
the root the gradient stays finite, and the value differs from the reference's by a relative
``eps / |x|`` (1e-10 / |x|).

:func:`lpips_layer_distance` computes it a slice of positions at a time, in float32, with the gradient
written by hand: the plain composition of tensor operations makes about ten float32 tensors the size
of the layer (normalised copies, their difference, its square...) and autograd keeps several for the
backward, which at relu1_2 of a 256 px batch of 4 is 67 MB each. Here nothing of that size is made
besides the gradient itself, and half-precision features are never copied to float32 whole. The
values are the plain ones up to the order of the sums.
"""

from __future__ import annotations

import torch

#: Added (squared) to the squared feature norm before dividing by its square root.
LPIPS_EPS = 1e-10
#: Bytes of float32 working memory per slice of positions (all samples together).
CHUNK_BYTES = 1 << 20


def unit_normalise(f: torch.Tensor) -> torch.Tensor:
    """Divide every feature vector of ``(B, C, H, W)`` (over channels) by ``sqrt(|f|^2 + LPIPS_EPS^2)``."""
    return f * torch.rsqrt(f.square().sum(1, keepdim=True) + LPIPS_EPS**2)


def lpips_layer_map(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_c w_c (x̂_c - ŷ_c)^2`` at every position, ``(B, 1, H, W)``, in float32 (float64 stays float64).

    Args:
        x, y: ``(B, C, H, W)`` features (``y`` may have batch 1).
        w: ``(C,)`` non-negative weights.
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    a, b = unit_normalise(x.to(dtype)), unit_normalise(y.to(dtype))
    return ((a - b).square() * w.to(a).view(1, -1, 1, 1)).sum(1, keepdim=True)


def _by_position(t: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """A view of ``(B, C, H, W)`` as ``(B, P, C)`` (channels-last) or ``(B, C, P)``, and its position dim; no copy."""
    if t.ndim != 4:
        return None
    b, c, h, w = t.shape
    if t.is_contiguous():
        return t.reshape(b, c, h * w), 2
    if t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(b, h * w, c), 1
    return None


def _fused_applies(x: torch.Tensor, y: torch.Tensor) -> bool:
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.bfloat16, torch.float16) or y.dtype != x.dtype:
        return False
    if y.requires_grad or y.shape[1:] != x.shape[1:] or y.shape[0] not in (1, x.shape[0]):
        return False  # a target that needs its own gradient takes the plain path
    vx, vy = _by_position(x), _by_position(y)
    return vx is not None and vy is not None and vx[1] == vy[1]


def _slice_length(batch: int, channels: int) -> int:
    """Positions per slice: about ``CHUNK_BYTES`` of float32 for the whole batch."""
    return max(64, CHUNK_BYTES // (4 * batch * channels))


def _inverse_norm(a: torch.Tensor, cdim: int) -> torch.Tensor:
    """``(|a|^2 + eps^2)^(-1/2)`` over ``cdim``, kept as a size-1 dim."""
    return torch.linalg.vector_norm(a, dim=cdim, keepdim=True).square_().add_(LPIPS_EPS**2).rsqrt_()


def _weighted_sum(t: torch.Tensor, w: torch.Tensor, cdim: int) -> torch.Tensor:
    """``sum_c w_c t_c`` over the channel dim of a by-position view, ``(B, P)``."""
    return t @ w if cdim == 2 else (t * w.view(1, -1, 1)).sum(1)


def _unit_difference(a: torch.Tensor, b: torch.Tensor, cdim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x̂, x̂ - ŷ, r_x)`` of a float32 slice pair."""
    ra = _inverse_norm(a, cdim)
    unit = a * ra
    return unit, unit - b * _inverse_norm(b, cdim), ra  # not addcmul: its fused rounding breaks exact zeros


class _FusedLpips(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, y, w)
        (xv, dim), (yv, _) = _by_position(x), _by_position(y)  # type: ignore[misc]
        cdim, weights = 3 - dim, w.float()
        positions = xv.shape[dim]
        total = torch.zeros(x.shape[0], dtype=torch.float32, device=x.device)
        step = _slice_length(x.shape[0], x.shape[1])
        for s in range(0, positions, step):
            n = min(step, positions - s)
            _, d, _ = _unit_difference(xv.narrow(dim, s, n).float(), yv.narrow(dim, s, n).float(), cdim)
            total += _weighted_sum(d.square_(), weights, cdim).sum(1)
        ctx.view = (dim, step)
        return total / positions

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:  # type: ignore[override]
        x, y, w = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        dim, step = ctx.view
        cdim, weights = 3 - dim, w.float()
        (xv, _), (yv, _) = _by_position(x), _by_position(y)  # type: ignore[misc]
        channel_weights = weights.view(1, 1, -1) if cdim == 2 else weights.view(1, -1, 1)
        positions = xv.shape[dim]
        gx = torch.empty_like(x)  # the features' dtype and memory layout
        gv, _ = _by_position(gx)  # type: ignore[misc]
        scale = (2.0 * grad.float() / positions).view(-1, 1, 1)
        for s in range(0, positions, step):
            n = min(step, positions - s)
            unit, d, ra = _unit_difference(xv.narrow(dim, s, n).float(), yv.narrow(dim, s, n).float(), cdim)
            # loss = sum_c w_c d_c^2 with d = x̂ - ŷ, so d loss / d x̂ = 2 w d. x̂ = x r, r = (|x|^2 + eps^2)^(-1/2),
            # has the exact Jacobian r (I - x̂ x̂^T): g_x = 2 r (w d - x̂ (x̂ . w d)).
            dot = _weighted_sum(unit * d, weights, cdim).unsqueeze(cdim)
            g = d.mul_(channel_weights).addcmul_(unit, dot, value=-1.0).mul_(ra * scale)
            gv.narrow(dim, s, n).copy_(g)
        return gx, None, None


def lpips_layer_distance(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``mean_{h,w} sum_c w_c (x̂_c - ŷ_c)^2`` per sample, ``(B,)`` float32 (float64 for float64 features).

    Computed a slice of positions at a time (see the module docstring) for CPU features in float32,
    bfloat16 or float16 when ``y`` needs no gradient; otherwise as :func:`lpips_layer_map`'s mean.

    Example:
        >>> x, y = torch.rand(2, 8, 5, 5), torch.rand(2, 8, 5, 5)
        >>> w = torch.rand(8)
        >>> torch.allclose(lpips_layer_distance(x, y, w), lpips_layer_map(x, y, w).mean((1, 2, 3)))
        True
    """
    if _fused_applies(x, y):
        return _FusedLpips.apply(x, y, w)
    return lpips_layer_map(x, y, w).flatten(1).mean(1)
