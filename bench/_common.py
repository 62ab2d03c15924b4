"""Shared by the benchmarks: load the lab and join its namespace before any thread starts."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from lab import paths
from lab.config import Lab, load_lab
from lab.lifecycle import prepare_host


def setup() -> Lab:
    name = sys.argv[1] if len(sys.argv) > 1 else "ci-debian12"
    lab = load_lab(paths.resolve_lab_path(name))
    prepare_host(lab)
    return lab


def timed(label: str, fn: Callable[[], object]) -> float:
    start = time.monotonic()
    fn()
    seconds = time.monotonic() - start
    print(f"{label:44} {seconds:8.1f} s", flush=True)
    return seconds
