"""Value ranges of the networks' images: normalising inputs and squashing outputs.

The networks compute in a zero-centred range: an image in ``(lo, hi)`` enters as
``2 (x - lo) / (hi - lo) - 1``, so ``(0, 1)``, ``(-1, 1)`` and ``(0, 255)`` images all
reach the first convolution in ``[-1, 1]`` and the same initialisation suits all three.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lossnet.validation import Range, check_input_range


def to_signed(x: torch.Tensor, image_range: Range) -> torch.Tensor:
    """Map ``x`` from ``image_range = (lo, hi)`` to ``[-1, 1]``: ``2 (x - lo) / (hi - lo) - 1``.

    >>> to_signed(torch.tensor([0.0, 127.5, 255.0]), (0.0, 255.0))
    tensor([-1.,  0.,  1.])
    """
    lo, hi = image_range
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def from_signed(z: torch.Tensor, image_range: Range) -> torch.Tensor:
    """Map ``z`` from ``[-1, 1]`` to ``image_range = (lo, hi)``: ``lo + (hi - lo) (z + 1) / 2``.

    >>> from_signed(torch.tensor([-1.0, 0.0, 1.0]), (0.0, 1.0))
    tensor([0.0000, 0.5000, 1.0000])
    """
    lo, hi = image_range
    return lo + (hi - lo) * (z + 1.0) / 2.0


def check_ranges(output_range: Sequence[float], input_range: Sequence[float] | None) -> tuple[Range, Range]:
    """Validate a network's ``(output_range, input_range)``; the input range defaults to the output's.

    >>> check_ranges((0, 1), None)
    ((0.0, 1.0), (0.0, 1.0))
    """
    out = check_input_range(output_range, "output_range")
    return out, (out if input_range is None else check_input_range(input_range, "input_range"))


class ScaledTanh(nn.Module):
    """``lo + (hi - lo) (tanh(y) + 1) / 2``: any real ``y`` into ``output_range = (lo, hi)``.

    Johnson et al. (2016) end with a scaled tanh too; theirs, ``150 tanh(y) + 127.5``,
    slightly overshoots ``[0, 255]``, this one lands exactly on the range (its ends are
    reached only when tanh saturates).

    Args:
        output_range: ``(0, 1)``, ``(-1, 1)`` or ``(0, 255)``.

    Example:
        >>> ScaledTanh((0, 255))(torch.tensor([-100.0, 0.0, 100.0]))
        tensor([  0.0000, 127.5000, 255.0000])
    """

    def __init__(self, output_range: Sequence[float] = (0.0, 1.0)) -> None:
        super().__init__()
        self.output_range = check_input_range(output_range, "output_range")

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return from_signed(torch.tanh(y), self.output_range)

    def extra_repr(self) -> str:
        return f"output_range={self.output_range}"


class ClampST(torch.autograd.Function):
    """Clamp to ``[-1, 1]`` in the forward pass; pass the gradient through unchanged.

    A plain clamp has a zero gradient wherever it is active, so a pixel pushed past the range
    by one large step never learns its way back. With the identity gradient it does: for a
    pixel loss the gradient still points from the clamped value towards the target.

    >>> x = torch.tensor([-3.0, 0.5, 2.0], requires_grad=True)
    >>> y = ClampST.apply(x)
    >>> y.detach(), torch.autograd.grad(y.sum(), x)[0]
    (tensor([-1.0000,  0.5000,  1.0000]), tensor([1., 1., 1.]))
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.clamp(-1.0, 1.0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def clamp_st(x: torch.Tensor) -> torch.Tensor:
    """Clamp to ``[-1, 1]``: through :class:`ClampST` where autograd records, a plain clamp otherwise.

    Both give the same values. Without autograd (inference, and the trace that
    ``lossnet export`` records under ``no_grad``) the plain clamp is used, because a traced
    custom autograd function is a Python call that TorchScript cannot store.

    >>> x = torch.tensor([-3.0, 0.5, 2.0])
    >>> clamp_st(x), type(clamp_st(x.requires_grad_()).grad_fn).__name__
    (tensor([-1.0000,  0.5000,  1.0000]), 'ClampSTBackward')
    """
    return ClampST.apply(x) if x.requires_grad else x.clamp(-1.0, 1.0)
