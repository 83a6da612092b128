"""The engine's layer: functional below backbones, the engine below both losses and metrics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "lossnet"
BOTTOM = {"errors", "validation", "atomic", "runtime", "checkpoint", "viz", "_version"}
#: What each package may import from lossnet (besides itself and the bottom layer).
ALLOWED = {
    "functional": set(),
    "backbones": {"functional"},
    "terms": {"functional", "backbones"},
    "metrics": {"functional", "backbones", "terms"},
    "losses": {"functional", "backbones", "terms"},
}


def lossnet_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found |= {n.split(".")[1] for n in names if n.startswith("lossnet.")}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down(package: str) -> None:
    for path in sorted((SRC / package).glob("*.py")):
        upward = lossnet_imports(path) - BOTTOM - ALLOWED[package] - {package}
        assert not upward, f"{path.relative_to(SRC)} imports {sorted(upward)} from above its layer"
