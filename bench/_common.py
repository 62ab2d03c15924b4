"""Shared by the benchmarks: the lab's machines, prepared (libvirt up, box built, files
rendered, this process in the lab namespace) before any thread starts."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from lab.hosts.machines import LabMachines
from lab.model import paths
from lab.model.labfile import load_lab


def setup() -> LabMachines:
    name = sys.argv[1] if len(sys.argv) > 1 else "ci-debian12"
    machines = LabMachines(load_lab(paths.resolve_lab_path(name)))
    machines.prepare()
    return machines


def prepared(name: str) -> LabMachines:
    machines = LabMachines(load_lab(paths.resolve_lab_path(name)))
    machines.prepare()
    return machines


def timed(label: str, fn: Callable[[], object]) -> float:
    start = time.monotonic()
    fn()
    seconds = time.monotonic() - start
    print(f"{label:44} {seconds:8.1f} s", flush=True)
    return seconds
