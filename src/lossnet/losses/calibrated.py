"""LPIPS and DISTS as training losses: :class:`PerceptualLoss` configurations with one term each.

Inside a :class:`PerceptualLoss` with other terms (``lpips_weight=``, ``dists_weight=``) they
share its trunk pass; these modules are for using one of them alone, as
``loss = l1 + LPIPSLoss()(pred, target)`` in a latent-diffusion autoencoder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from lossnet.backbones.weights import LoadedWeights
from lossnet.losses.perceptual import PerceptualLoss
from lossnet.runtime import Runtime
from lossnet.validation import Range


class LPIPSLoss(PerceptualLoss):
    """LPIPS (Zhang et al. 2018) as a differentiable loss, key ``"lpips"`` in :meth:`terms`.

    The same number as :class:`lossnet.metrics.LPIPS` for the same trunk and heads, with gradients
    that stay finite where a feature vector is zero (see :func:`lossnet.terms.unit_normalise`).

    Args:
        arch: ``"vgg16"`` (default), ``"alexnet"`` or ``"squeezenet1_1"``.
        weights: the trunk's weights: ``"auto"`` (default) or ``"imagenet"``, which must load torchvision's
            ImageNet file (where ``"auto"`` falls back to HED the strict loss refuses); others need ``strict=False``.
        calibration: the heads: ``None`` (the lpips wheel's v0.1 file), a path, or ``{layer: (C_l,)}``.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` over the batch.
        input_range: the images' range.
        strict: refuse a trunk or heads other than the published ones; ``False`` names the term ``lpips_like``.
        compute_dtype: as :class:`PerceptualLoss`'s; the normalisation and distances stay float32.

    Shape:
        ``pred``, ``target``: ``(B, C, H, W)`` in ``input_range`` (``target`` may have batch 1).

    Example:
        >>> loss = LPIPSLoss(weights=None, strict=False)     # a random VGG16: lpips-like, not LPIPS
        >>> x = torch.rand(1, 3, 32, 32, requires_grad=True)
        >>> sorted(loss.terms(x, torch.rand(1, 3, 32, 32)))
        ['lpips_like', 'total']
    """

    def __init__(
        self,
        arch: str = "vgg16",
        weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
        calibration: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
        reduction: str = "mean",
        input_range: Range = (0.0, 1.0),
        strict: bool = True,
        compute_dtype: torch.dtype | str | Runtime | None = None,
    ) -> None:
        super().__init__(
            arch,
            weights,
            lpips_weight=1.0,
            lpips_calibration=calibration,
            reduction=reduction,
            input_range=input_range,
            strict=strict,
            compute_dtype=compute_dtype,
        )


class DISTSLoss(PerceptualLoss):
    """DISTS (Ding, Ma, Wang & Simoncelli 2020) as a differentiable loss, key ``"dists"`` in :meth:`terms`.

    It runs its own trunk, VGG16 with L2 pooling: it shares a pass only with terms on that trunk
    (``PerceptualLoss(pooling="l2", dists_weight=...)``), not with the max-pooled VGG of the
    feature and Gram terms.

    Args:
        weights: the VGG16 weights: ``"auto"`` (default) or ``"imagenet"``, which must load torchvision's
            ImageNet file (where ``"auto"`` falls back to HED the strict loss refuses); others need ``strict=False``.
        calibration: alpha/beta file, or ``None`` for the DISTS_pytorch wheel's.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` over the batch.
        input_range: the images' range.
        strict: refuse a trunk or weights other than the published ones; ``False`` names the term ``dists_like``.
        compute_dtype: as :class:`PerceptualLoss`'s; the statistics stay float32.

    Shape:
        ``pred``, ``target``: ``(B, C, H, W)`` in ``input_range`` (``target`` may have batch 1), at least 16x16.

    Example:
        >>> loss = DISTSLoss(weights=None, strict=False)     # a random VGG16: dists-like, not DISTS
        >>> x = torch.rand(1, 3, 32, 32)
        >>> float(loss(x, x)) < 1e-5
        True
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
        calibration: str | os.PathLike[str] | None = None,
        reduction: str = "mean",
        input_range: Range = (0.0, 1.0),
        strict: bool = True,
        compute_dtype: torch.dtype | str | Runtime | None = None,
    ) -> None:
        super().__init__(
            "vgg16",
            weights,
            dists_weight=1.0,
            dists_calibration=calibration,
            pooling="l2",
            reduction=reduction,
            input_range=input_range,
            strict=strict,
            compute_dtype=compute_dtype,
        )


def lpips_loss(pred: torch.Tensor, target: torch.Tensor, **kwargs: object) -> torch.Tensor:
    """Functional form of :class:`LPIPSLoss` (builds it, so the trunk loads each call; keep a module to train)."""
    return LPIPSLoss(**kwargs).to(pred.device)(pred, target)  # type: ignore[arg-type]


def dists_loss(pred: torch.Tensor, target: torch.Tensor, **kwargs: object) -> torch.Tensor:
    """Functional form of :class:`DISTSLoss` (builds it, so the trunk loads each call; keep a module to train)."""
    return DISTSLoss(**kwargs).to(pred.device)(pred, target)  # type: ignore[arg-type]
