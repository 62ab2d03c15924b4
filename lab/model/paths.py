"""Where things live: the repo, lab files, per-lab state and caches."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABS_DIR = REPO / "labs"
VENDOR_DIR = LABS_DIR / "vendor"


def state_root() -> Path:
    return Path(os.environ.get("NETLAB_STATE", REPO / ".lab"))


def cache_root() -> Path:
    return Path(os.environ.get("NETLAB_CACHE", REPO / ".cache"))


def state_dir(lab_name: str) -> Path:
    return state_root() / lab_name


def resolve_lab_path(name_or_path: str) -> Path:
    """`ci-debian12` -> labs/ci-debian12.yaml; a path is taken as it is."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return LABS_DIR / f"{name_or_path}.yaml"
