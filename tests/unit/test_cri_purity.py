"""The pure modules of the CRI foundations import nothing with side effects (the same rule as
the import-linter contract "pure core imports no adapters", checked here for the new modules
until the contract lists them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PURE = (
    "lab/runtime/oci.py",
    "lab/runtime/images.py",
    "lab/runtime/containerd.py",
    "lab/runtime/cri/messages.py",
)
FORBIDDEN = (
    "lab.adapters",
    "lab.lifecycle",
    "subprocess",
    "grpc",
    "fabric",
    "paramiko",
    "vagrant",
    "libvirt",
    "socket",
)


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_side_effects(module: str) -> None:
    bad = sorted(
        name
        for name in imported_modules(REPO / module)
        for forbidden in FORBIDDEN
        if name == forbidden or name.startswith(forbidden + ".")
    )
    assert bad == [], f"{module} imports {bad}: move that code to lab/adapters/"
