"""Mean/std statistics term: the AdaIN statistics as a style loss (Huang & Belongie, ICCV 2017).

AdaIN transfers style by giving each channel of the content's features the style's mean and standard
deviation. The loss that trains it compares exactly those statistics, per layer:

``MS_l(x, y) = mean_c (mu_c(F^x_l) - mu_c(F^y_l))^2 + mean_c (sigma_c(F^x_l) - sigma_c(F^y_l))^2``

with ``mu_c`` and ``sigma_c = sqrt(var_c + eps)`` taken over the positions of channel ``c``. It is a
cheaper, smaller description of a style than a Gram matrix (``2C`` numbers instead of ``C^2``),
indifferent to where things are, and matches images of any size.

Departures from the paper (eq. 11 sums ``||mu(x) - mu(y)||_2 + ||sigma(x) - sigma(y)||_2`` over
layers): the squared distances are averaged over channels instead of taken as L2 norms, so the
gradient stays finite when the statistics agree and the value does not grow with the channel count;
the variance is the biased one (over ``H*W`` positions) plus ``eps = 1e-5``, as their AdaIN layer;
statistics are computed in float32 whatever the trunk's compute dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from lossnet.errors import InputError
from lossnet.functional.adain import ADAIN_EPS, channel_mean_std
from lossnet.functional.reduction import reduce
from lossnet.terms.base import Features, Statistics, Term
from lossnet.validation import check_tensor, check_weight

#: Added to the variance before its square root, as in AdaIN.
MEAN_STD_EPS = ADAIN_EPS


def mean_std_distance(
    x_stats: tuple[torch.Tensor, torch.Tensor], y_stats: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """``mean_c (mu_x - mu_y)^2 + mean_c (sigma_x - sigma_y)^2`` per sample, ``(B,)``, from :func:`channel_mean_std`."""
    (mx, sx), (my, sy) = x_stats, y_stats
    if my.shape[-1] != mx.shape[-1] or my.shape[0] not in (1, mx.shape[0]):
        raise InputError(
            f"mean/std statistics of {tuple(mx.shape)} and {tuple(my.shape)} (batch, channels) do not match: take both "
            "from the same layer, and one style image or one per prediction"
        )
    return (mx - my).pow(2).mean(1) + (sx - sy).pow(2).mean(1)


def mean_std_loss(x: torch.Tensor, y: torch.Tensor, eps: float = MEAN_STD_EPS, reduction: str = "mean") -> torch.Tensor:
    """The AdaIN statistics loss between two feature maps (see the module docstring).

    Args:
        x: the prediction's features ``(B, C, H, W)``.
        y: the target's features ``(B, C, H', W')`` or ``(1, C, H', W')`` (broadcast); any size.
        eps: added to the variance before its square root.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (``(B,)``) over the batch.

    Returns:
        ``>= 0``; 0 when the per-channel statistics agree (e.g. ``y`` a rearrangement of ``x``'s positions).

    Example:
        >>> x = torch.zeros(1, 2, 4, 4)
        >>> float(mean_std_loss(x, x + 1.0))  # every channel's mean is 1 off, the stds agree
        1.0
    """
    x, y = check_tensor(x, "x", 4), check_tensor(y, "y", 4)
    return reduce(mean_std_distance(channel_mean_std(x, eps), channel_mean_std(y, eps)), reduction)


class MeanStdLoss(nn.Module):
    """Module form of :func:`mean_std_loss`; takes the same arguments.

    Example:
        >>> MeanStdLoss(reduction="none")(torch.rand(3, 4, 5, 5), torch.rand(1, 4, 9, 9)).shape
        torch.Size([3])
    """

    def __init__(self, eps: float = MEAN_STD_EPS, reduction: str = "mean") -> None:
        super().__init__()
        self.eps, self.reduction = eps, reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mean_std_loss(x, y, self.eps, self.reduction)


class MeanStdTerm(Term):
    """The mean/std statistics term at one layer, key ``"mean_std.<layer>"``; it keeps the target's 2C statistics."""

    def __init__(self, layer: str, weight: float = 1.0, eps: float = MEAN_STD_EPS, key: str | None = None) -> None:
        super().__init__()
        self.layers = (layer,)
        self.key = key or f"mean_std.{layer}"
        self.weight = check_weight(weight, f"mean_std weight of {layer!r}")
        self.eps = eps

    def target_statistics(self, image: torch.Tensor, features: Features) -> Statistics:
        mean, std = channel_mean_std(features[self.layers[0]], self.eps)
        return {"mean": mean, "std": std}

    def per_sample(self, image: torch.Tensor, features: Features, target: Statistics | None) -> torch.Tensor:
        stats = channel_mean_std(features[self.layers[0]], self.eps)
        return mean_std_distance(stats, (target["mean"], target["std"]))  # type: ignore[index]


#: The family's public functions and modules (exported at the top level from its table entry).
EXPORTS = (MeanStdLoss, mean_std_loss)
