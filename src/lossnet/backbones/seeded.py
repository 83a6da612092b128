"""Trunks that are the same wherever they are built, random ones included.

AdaIN's network encodes with a frozen trunk and its loss compares on the same trunk (the content
term's target is the network's own AdaIN output), so the two must hold the same weights. A named
weight source gives that by itself; a random trunk (``weights=None``, for tests and experiments) is
drawn here from a fixed seed, without touching the caller's random state.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from lossnet.backbones.extractor import FeatureExtractor

#: The seed every random trunk of :func:`shared_extractor` is drawn with.
RANDOM_TRUNK_SEED = 0


def shared_extractor(
    arch: str, layers: Iterable[str], weights: str | os.PathLike[str] | None, **kwargs: object
) -> FeatureExtractor:
    """A :class:`FeatureExtractor` whose weights are the same on every call with the same ``arch`` and ``weights``.

    >>> a = shared_extractor("vgg11", ["relu1_1"], None)
    >>> b = shared_extractor("vgg11", ["relu2_1"], None)
    >>> torch.equal(a.features[0].weight, b.features[0].weight)
    True
    """
    if weights is not None:
        return FeatureExtractor(arch, layers, weights, **kwargs)  # type: ignore[arg-type]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_TRUNK_SEED)
        return FeatureExtractor(arch, layers, None, **kwargs)  # type: ignore[arg-type]
