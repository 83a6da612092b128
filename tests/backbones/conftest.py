"""Fixtures shared by the backbone tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub directory; returns its checkpoints folder (not created)."""
    hub = tmp_path / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))  # what torch.hub.set_dir sets, restored afterwards
    assert Path(torch.hub.get_dir()) == hub
    return hub / "checkpoints"
