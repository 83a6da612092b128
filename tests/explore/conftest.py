"""Fixtures for the explore tests: the explore subcommands wired into the CLI, and tiny image files."""

from __future__ import annotations

import pytest
import torch

import lossnet.cli
from lossnet.cli import core, explore
from lossnet.data.io import save_image


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """``lossnet.cli.main`` with the explore subcommands registered (harmless once they are wired in)."""
    modules = tuple(lossnet.cli.COMMAND_MODULES)
    if explore not in modules:
        monkeypatch.setattr(lossnet.cli, "COMMAND_MODULES", (*modules, explore) if core in modules else (core, explore))
    return lossnet.cli.main


@pytest.fixture
def image_files(tmp_path):
    """A 40x32 content image with structure and a 32x32 striped style image, as PNG files."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 40), indexing="ij")
    content = torch.stack([x, y, (x * y).sqrt()]).unsqueeze(0)
    stripes = (torch.arange(32) // 4 % 2).float()
    style = torch.stack([stripes.expand(32, 32), 0.3 * torch.ones(32, 32), stripes.expand(32, 32).T]).unsqueeze(0)
    return save_image(content, tmp_path / "content.png"), save_image(style, tmp_path / "style.png")
