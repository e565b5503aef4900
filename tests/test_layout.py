"""The layout a fork relies on: imports point one way, and modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO_ROOT

SRC = REPO_ROOT / "src"
# Lowest first. A package imports only from lower layers; entry points may also import each other.
LAYERS = [
    {"utils"},
    {"regularizers", "nets", "data", "metrics", "optim"},
    {"models", "callbacks", "evaluation"},
    {"defaults"},
    {"cli"},
]
MAX_LINES = 320


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else path.stem


def _layer(package: str) -> int:
    return next((i for i, layer in enumerate(LAYERS) if package in layer), len(LAYERS))


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("src.") and name.count(".") >= 1}
    return found


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for path in SRC.rglob("*.py"):
        package = _package(path)
        for target in _imports(path) - {package}:
            top = _layer(package) == len(LAYERS) and _layer(target) == len(LAYERS)
            if _layer(target) >= _layer(package) and not top:
                wrong.append(f"{path.relative_to(REPO_ROOT)} imports src.{target}")
    assert not wrong, "imports against the layering (see README, Project layout):\n" + "\n".join(
        sorted(wrong)
    )


def test_modules_hold_one_job_each() -> None:
    long = {
        str(p.relative_to(REPO_ROOT)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
