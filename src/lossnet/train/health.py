"""Signs that a training run has collapsed, read from its validation outputs.

A network whose output saturates to one flat colour still reports a moving training loss
(each batch differs), so nothing looks wrong until someone opens a sample sheet. The
trainer asks :class:`CollapseWatch` at every validation and warns in the log and the
progress bar when:

- **flat**: every validation output is (nearly) one colour, while the targets are not;
- **frozen**: the validation outputs have not changed for ``patience`` validations in a
  row although the learning rate is not near zero (a saturated output passes no gradient);
- **lost** (style transfer, given the style image): at ``patience`` validations in a row, every
  validation output has lost its content's layout (correlation below :data:`LOST_LAYOUT`) and is
  no closer to the style than the content was, in colour or in texture
  (:func:`lossnet.metrics.style.style_measures`): a wash or blobs that a falling style loss can
  hide. One such validation is not enough: an untrained style network's output is lost by
  construction (the ``style`` recipe's follows neither at step 4), and a run's first validation
  can come that early. Measured on HED's VGG16, 64 px crops:
  Johnson's recipe (``--loss paper``, seed 2, brick) ended with layout -0.03 and -0.35 and
  texture ratios 1.44 and 1.37 on the held-out images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lossnet.metrics.style import style_measures

#: An output whose pixels vary by less than this (std in [0, 1] units) is called flat.
FLAT_STD = 2e-3
#: Outputs that move by less than this (max abs, [0, 1] units) between validations are called frozen.
FROZEN_CHANGE = 1e-6
#: A style output whose layout correlation with its content is below this has lost the content.
LOST_LAYOUT = 0.2


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
        patience: validations in a row with unchanged outputs before "frozen" is reported, and
            validations in a row with lost style outputs before "lost" is.

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
    _lost_in_row: int = 0

    def check(
        self, outputs: Tensor, targets: Tensor, lr: float, step: int, styles: Sequence[Tensor] | None = None
    ) -> str | None:
        """A warning when the outputs ``(B, C, H, W)`` in ``[0, 1]`` look collapsed, else ``None``.

        ``styles`` (one ``(1, 3, H', W')`` in [0, 1] per output): the style images of a style
        transfer, whose ``targets`` are the content images; they turn on the "lost" check.
        """
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
        if problem is None and styles is not None:
            lost = _lost(outputs, targets.detach().float().cpu(), [s.detach().float().cpu() for s in styles])
            self._lost_in_row = self._lost_in_row + 1 if lost else 0
            problem = lost if self._lost_in_row >= self.patience else None
        if problem is None:
            return None
        return f"step {step}: {problem}; the network has collapsed"


def _lost(outputs: Tensor, contents: Tensor, styles: list[Tensor]) -> str | None:
    """The "lost" sign (module docstring) for style outputs, their content and style images, or ``None``."""
    found = [style_measures(o[None], c[None], s) for o, c, s in zip(outputs, contents, styles)]
    if not found or not all(m.layout < LOST_LAYOUT and max(m.colour, m.texture) >= 1.0 for m in found):
        return None
    layout = ", ".join(f"{m.layout:.2f}" for m in found)
    ratios = ", ".join(f"{m.colour:.2f}/{m.texture:.2f}" for m in found)
    return (
        f"the style outputs follow neither their content images (layout correlation {layout}; a kept layout is "
        f"above 0.5) nor the style (colour/texture ratios {ratios}: no closer to the style than the content was)"
    )
