"""The package's layers (DESIGN.md): every module imports only from its own layer's package or below."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lossnet"
#: Bottom-layer modules: they import only each other.
BOTTOM = {
    "errors", "validation", "atomic", "hardware", "memory", "runtime", "checkpoint", "card", "viz", "_version",
    "precision", "offline",
}  # fmt: skip
_BASE = {"functional"}
_FEATURES = _BASE | {"backbones"}
_COMPARE = _FEATURES | {"terms"}
_LIBRARY = _COMPARE | {"metrics", "losses", "models", "data"}
#: What each package may import from lossnet besides itself and the bottom layer.
ALLOWED = {
    "functional": set(),
    "backbones": _BASE,
    "models": _FEATURES,  # AdaINNet's encoder is a frozen trunk
    "data": set(),
    "terms": _FEATURES,
    "metrics": _COMPARE,
    "losses": _COMPARE,
    "tasks": _LIBRARY,
    "inference": _LIBRARY | {"tasks"},
    "evaluation": _LIBRARY | {"tasks", "inference"},
    "explore": _LIBRARY | {"tasks", "inference"},
    "train": _LIBRARY | {"tasks", "inference", "evaluation"},
    "export": _LIBRARY | {"tasks", "inference"},
    "demo": _LIBRARY | {"tasks", "inference", "evaluation", "explore", "train"},
}


def lossnet_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "lossnet":
                names = [f"lossnet.{a.name}" for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("lossnet.")}
    return found


def _files(unit: str) -> list[Path]:
    return sorted((SRC / unit).rglob("*.py")) if (SRC / unit).is_dir() else [SRC / f"{unit}.py"]


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_imports_point_down(unit: str) -> None:
    for path in _files(unit):
        upward = lossnet_imports(path) - BOTTOM - ALLOWED[unit] - {unit}
        assert not upward, f"{path.relative_to(SRC)} imports {sorted(upward)} from above its layer"


def test_bottom_imports_only_bottom() -> None:
    for unit in sorted(BOTTOM):
        upward = lossnet_imports(SRC / f"{unit}.py") - BOTTOM
        assert not upward, f"{unit}.py imports {sorted(upward)}; the bottom layer imports only itself"


def test_every_module_is_in_a_layer() -> None:
    # The top (cli, __init__, __main__) and the deprecated aliases may import anything.
    top = {"cli", "__init__", "__main__", "apply", "evaluate"}
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert units <= set(ALLOWED) | BOTTOM | top, sorted(units - set(ALLOWED) - BOTTOM - top)


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
