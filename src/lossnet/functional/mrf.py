"""MRF (patch) loss (Li & Wand, CVPR 2016): each feature patch pulled to its nearest style patch.

The prediction's features at one layer are cut into ``k x k`` patches (stride 1). Each patch
``p_i`` is matched to the style patch ``s_NN(i)`` of highest normalised cross-correlation,

``NN(i) = argmax_j <p_i, s_j> / (|p_i| |s_j|)``,

and the loss is the mean squared difference ``mean_i mean (p_i - s_NN(i))^2`` (Li & Wand sum it;
a mean keeps layers and sizes comparable, as lossnet's other terms do). The matching is not
differentiated: the gradient pulls each patch towards its current match.

The style patches are fixed: :class:`MRFLoss` cuts and normalises them once
(:meth:`MRFLoss.set_target`), as :class:`~lossnet.losses.PerceptualLoss` caches style Grams.

**Memory and work.** The matching is a convolution of the prediction's features with the
``P`` normalised style patches: ``B x P x H x W`` scores. They are computed in chunks of style
patches within ``memory_budget`` bytes; ``style_stride`` > 1 takes fewer style patches
(CNNMRF uses 2 at the deeper layers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossnet.errors import InputError
from lossnet.functional.reduction import reduce
from lossnet.validation import check_positive_int, check_tensor

#: Default bound on the memory of one chunk of matching scores (bytes).
DEFAULT_MEMORY_BUDGET = 256 * 2**20
_EPS = 1e-8


def style_patches(style: torch.Tensor, patch_size: int = 3, stride: int = 1) -> torch.Tensor:
    """Cut style features ``(1, C, H, W)`` into ``(P, C, k, k)`` patches (the target of :func:`mrf_loss`).

    Example:
        >>> style_patches(torch.rand(1, 2, 4, 5), 3).shape   # (4 - 2) * (5 - 2) positions
        torch.Size([6, 2, 3, 3])
    """
    check_tensor(style, "style features", ndim=4)
    patch_size, stride = check_positive_int(patch_size, "patch_size"), check_positive_int(stride, "style_stride")
    if style.shape[0] != 1:
        raise InputError(f"the MRF target is one style image's features (batch 1); got batch {style.shape[0]}")
    if min(style.shape[-2:]) < patch_size:
        raise InputError(
            f"style features {tuple(style.shape[-2:])} are smaller than patch_size {patch_size}; use a shallower "
            "layer or a larger style image"
        )
    c = style.shape[1]
    cols = F.unfold(style, patch_size, stride=stride)  # (1, C k k, P)
    return cols[0].T.reshape(-1, c, patch_size, patch_size).contiguous()


def mrf_loss(
    x: torch.Tensor,
    patches: torch.Tensor,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    reduction: str = "mean",
) -> torch.Tensor:
    """The MRF loss of prediction features against fixed style patches (see the module docstring).

    Args:
        x: prediction features ``(B, C, H, W)``, H and W at least the patch size.
        patches: style patches ``(P, C, k, k)`` from :func:`style_patches`.
        memory_budget: bytes one chunk of matching scores may take (default 256 MiB).
        reduction: ``'none'`` gives ``(B,)``, ``'mean'``/``'sum'`` a scalar.

    Returns:
        values ``>= 0``; 0 when every prediction patch is one of the style patches.

    Example:
        >>> style = torch.rand(1, 4, 6, 6)
        >>> float(mrf_loss(style, style_patches(style)))   # the style itself: every patch matches exactly
        0.0
    """
    check_tensor(x, "prediction features", ndim=4)
    check_tensor(patches, "style patches", ndim=4)
    k = patches.shape[-1]
    if patches.shape[1] != x.shape[1] or patches.shape[-2] != k:
        raise InputError(
            f"style patches {tuple(patches.shape)} do not fit features {tuple(x.shape)}: expected (P, {x.shape[1]}, k, k)"
        )
    if min(x.shape[-2:]) < k:
        raise InputError(f"features {tuple(x.shape[-2:])} are smaller than the {k}x{k} patches; use a shallower layer")
    patches = patches.to(x.dtype) if x.dtype in (torch.float32, torch.float64) else patches.float()
    x = x.to(patches.dtype)
    match = _nearest(x.detach(), patches, check_positive_int(memory_budget, "memory_budget"))  # (B, L)
    cols = F.unfold(x, k).transpose(1, 2)  # (B, L, C k k)
    targets = patches.flatten(1)[match]  # (B, L, C k k)
    return reduce((cols - targets).square().flatten(1).mean(1), reduction)


@torch.no_grad()
def _nearest(x: torch.Tensor, patches: torch.Tensor, budget: int) -> torch.Tensor:
    """Index of the best-correlated style patch for every prediction patch: ``(B, L)``."""
    k = patches.shape[-1]
    normed = patches / (patches.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + _EPS)
    b, positions = x.shape[0], (x.shape[-2] - k + 1) * (x.shape[-1] - k + 1)
    per_patch = b * positions * x.element_size() * 2
    if per_patch > budget:
        raise InputError(
            f"MRF matching of features {tuple(x.shape)} needs {per_patch / 2**20:.1f} MiB per style patch, over "
            f"memory_budget={budget / 2**20:.1f} MiB; use smaller crops, a deeper layer or raise the budget"
        )
    chunk = max(1, budget // per_patch)
    best_score = torch.full((b, positions), -torch.inf, dtype=x.dtype, device=x.device)
    best_index = torch.zeros((b, positions), dtype=torch.long, device=x.device)
    for start in range(0, normed.shape[0], chunk):
        scores = F.conv2d(x, normed[start : start + chunk]).flatten(2)  # (B, n, L); |p_i| does not change argmax
        value, index = scores.max(1)
        better = value > best_score
        best_score = torch.where(better, value, best_score)
        best_index = torch.where(better, index + start, best_index)
    return best_index
