from __future__ import annotations

import pytest

import lossnet
from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path, load_default_image


@pytest.mark.parametrize("name", sorted(DEFAULT_IMAGES))
def test_every_default_image_exists(name: str) -> None:
    assert default_image_path(name).is_file()


def test_load_default_image_resizes_longer_side() -> None:
    x = load_default_image("chelsea", size=64)  # chelsea is 451 x 300 (w x h)
    assert x.shape == (1, 3, 43, 64)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.05


def test_unknown_name_suggests() -> None:
    with pytest.raises(lossnet.InputError, match="Did you mean 'astronaut'"):
        default_image_path("astronot")


def test_missing_scikit_image_is_a_clear_error(monkeypatch) -> None:
    import importlib.util

    from lossnet.errors import DataUnavailableError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataUnavailableError, match="scikit-image"):
        default_image_path("astronaut")
