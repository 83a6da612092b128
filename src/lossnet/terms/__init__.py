"""The feature-comparison engine: weighted terms over one backbone pass.

Every deep comparison in lossnet is a configuration of :class:`TermEngine`:
:class:`~lossnet.PerceptualLoss`, the explore objective (:class:`~lossnet.explore.objective.ImageObjective`),
:func:`~lossnet.metrics.feature_distance` / :class:`~lossnet.metrics.FeatureDistance`,
:class:`~lossnet.metrics.LPIPS` and :func:`~lossnet.explore.maps.feature_difference_maps`.
It sits below both :mod:`lossnet.losses` and :mod:`lossnet.metrics` (it needs only
:mod:`lossnet.functional` and :mod:`lossnet.backbones`), so metrics do not import losses.

How a call runs:

1. one backbone pass over the prediction, cut after the deepest layer any term reads;
2. one pass over the target, under ``no_grad``, cut after the deepest layer that a term without a
   fixed target reads (none when every such term has a fixed target, or reads no layer);
3. each term returns per-sample values ``(B,)``;
4. the engine reduces each term over the batch (:func:`lossnet.functional.reduce`, the one place),
   multiplies it by its weight, and adds ``total``.

The term interface (:class:`Term`), which new loss families implement:

- ``key``: the term's name in the output (``"feature.relu2_2"``, ``"style.relu1_1"``, ``"lpips"``);
- ``weight``: a float >= 0;
- ``layers``: the backbone layers it reads, of the prediction and of the target. ``()`` for
  image-space terms (pixel, TV, a focal-frequency term), which then cost no backbone pass;
- ``needs_target``: ``False`` for a regulariser of the prediction alone (TV);
- ``target_statistics(image, features)``: what the term keeps of a target, as named tensors: by
  default the target's features at ``layers`` (or its image when ``layers`` is empty); a Gram term
  keeps Gram matrices. An MRF/patch term would keep its patches, a focal-frequency term the
  spectrum. A fixed target (:meth:`TermEngine.fix_target`) has these computed once and kept as
  buffers, so a fixed style image costs nothing per call;
- ``per_sample(image, features, target)``: the unweighted value per sample, ``(B,)``, from the
  prediction's image and features and the target's statistics;
- ``spatial(...)`` (optional): the term as a ``(B, 1, h, w)`` map whose mean is ``per_sample``.

The term families (kinds of term) are one table, :data:`lossnet.terms.registry.FAMILIES` (an entry is a
:class:`lossnet.terms.spec.Family`): ``PerceptualLoss``'s keywords, the presets, the command-line flags,
``TrainConfig``'s term fields and the one layer union (:func:`lossnet.terms.registry.term_layers`) come
from it. A new family is its module (its functions, loss module and :class:`Term`) plus its entry.

A term runs on any backbone that returns its layers. Terms on different trunks (DISTS' L2-pooled
VGG, say) need their own engine with that trunk; one engine shares one pass.
"""

from lossnet.terms.base import Backbone, Features, LayerWeights, Statistics, Term, layer_weights
from lossnet.terms.engine import Selector, TermEngine, run_backbone
from lossnet.terms.calibrated import (
    LPIPS_EPS,
    DistsTerm,
    LpipsTerm,
    check_published,
    lpips_distance,
    lpips_layer_maps,
    unit_normalise,
)
from lossnet.terms.kinds import FeatureTerm, GramTerm, PixelTerm, TVTerm

__all__ = [
    "LPIPS_EPS",
    "Backbone",
    "DistsTerm",
    "FeatureTerm",
    "Features",
    "GramTerm",
    "LayerWeights",
    "LpipsTerm",
    "PixelTerm",
    "Selector",
    "Statistics",
    "TVTerm",
    "Term",
    "TermEngine",
    "check_published",
    "layer_weights",
    "lpips_distance",
    "lpips_layer_maps",
    "run_backbone",
    "unit_normalise",
]
