"""Signs that a training run has collapsed, read from its validation outputs.

A network whose output saturates to one flat colour still reports a moving training loss
(each batch differs), so nothing looks wrong until someone opens a sample sheet. The
trainer asks :class:`CollapseWatch` at every validation and warns in the log and the
progress bar when:

- **flat**: every validation output is (nearly) one colour, while the targets are not;
- **frozen**: the validation outputs have not changed for ``patience`` validations in a
  row although the learning rate is not near zero (a saturated output passes no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

#: An output whose pixels vary by less than this (std in [0, 1] units) is called flat.
FLAT_STD = 2e-3
#: Outputs that move by less than this (max abs, [0, 1] units) between validations are called frozen.
FROZEN_CHANGE = 1e-6


def spatial_std(images: Tensor) -> Tensor:
    """Per-image spatial standard deviation, the largest over channels: ``(B, C, H, W) -> (B,)``.

    >>> spatial_std(torch.zeros(2, 3, 4, 4)).tolist()
    [0.0, 0.0]
    """
    return images.float().flatten(2).std(dim=2).amax(dim=1)


@dataclass
class CollapseWatch:
    """Watches validation outputs for a collapsed network.

    Args:
        patience: validations in a row with unchanged outputs before "frozen" is reported.

    Example:
        >>> watch = CollapseWatch()
        >>> target = torch.rand(1, 3, 8, 8)
        >>> watch.check(torch.full((1, 3, 8, 8), 0.5), target, lr=1e-3, step=10)
        'step 10: the validation outputs are flat (one colour per image) while the targets are not; the network has collapsed'
        >>> watch.check(target, target, lr=1e-3, step=20) is None
        True
    """

    patience: int = 2
    _previous: Tensor | None = field(default=None, repr=False)
    _unchanged: int = 0

    def check(self, outputs: Tensor, targets: Tensor, lr: float, step: int) -> str | None:
        """A warning when the outputs ``(B, C, H, W)`` in ``[0, 1]`` look collapsed, else ``None``."""
        outputs = outputs.detach().float().cpu()
        problem = None
        if bool((spatial_std(outputs) < FLAT_STD).all()) and bool((spatial_std(targets) >= 10 * FLAT_STD).any()):
            problem = "the validation outputs are flat (one colour per image) while the targets are not"
        elif self._previous is not None and self._previous.shape == outputs.shape:
            still = float((outputs - self._previous).abs().max()) < FROZEN_CHANGE
            self._unchanged = self._unchanged + 1 if still and lr > 0 else 0
            if self._unchanged >= self.patience:
                problem = (
                    f"the validation outputs have not changed over the last {self._unchanged + 1} validations "
                    f"although the learning rate is {lr:.3g} (a saturated output passes no gradient)"
                )
        self._previous = outputs
        if problem is None:
            return None
        return f"step {step}: {problem}; the network has collapsed"
