"""Plain tensor maths under the losses and the metrics: no networks, no modules.

- :func:`reduce`: the one ``'none' | 'mean' | 'sum'`` batch reduction;
- :func:`elementwise` and :func:`distance`: the ``l1`` / ``mse`` / ``charbonnier`` criteria, with
  their fused half-precision form (:mod:`lossnet.functional.half_distance`);
- :func:`gram_matrix`: Gram matrices of feature maps;
- :func:`total_variation`: anisotropic and isotropic TV.

Losses (:mod:`lossnet.losses`) and metrics (:mod:`lossnet.metrics`) both build on these; the
module forms (``TotalVariation``, ...) live in :mod:`lossnet.losses`.
"""

from lossnet.functional.criteria import CHARBONNIER_EPS, CRITERIA, distance, elementwise
from lossnet.functional.gram import gram_matrix
from lossnet.functional.reduction import REDUCTIONS, Reduction, reduce
from lossnet.functional.total_variation import TV_KINDS, total_variation

__all__ = [
    "CHARBONNIER_EPS",
    "CRITERIA",
    "REDUCTIONS",
    "TV_KINDS",
    "Reduction",
    "distance",
    "elementwise",
    "gram_matrix",
    "reduce",
    "total_variation",
]
