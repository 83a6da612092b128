"""lossnet.models exports the networks and their building blocks."""

from __future__ import annotations

import lossnet.models as models


def test_public_names_exist_and_are_documented() -> None:
    for name in models.__all__:
        obj = getattr(models, name)
        if callable(obj):
            assert obj.__doc__, name
    assert {"TransformerNet", "SuperResNet", "UNet", "icnr_", "PixelShuffleICNR"} <= set(models.__all__)
