"""Integration tests run real VMs of labs/ci-debian12.yaml inside the lab's network namespace.

The tests of this directory share one lab in file order (lifecycle, provisioning, the suite's
own breakage tests, destroy, interrupted up): bringing up TCG VMs is the expensive part."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.hosts.machines import LabMachines
from lab.model import paths
from lab.model.config import Lab
from lab.model.labfile import load_lab

LAB = "ci-debian12"


@pytest.fixture(scope="session")
def ci_lab() -> Lab:
    return load_lab(paths.resolve_lab_path(LAB))


@pytest.fixture(scope="session")
def lab_runtime(ci_lab: Lab) -> Iterator[LabMachines]:
    """The CI lab, prepared (libvirtd started, the box built or reused, files rendered, this
    process in the lab's namespace: before any thread starts, so the first VM test asks for
    it); started by the first test that needs it running. Destroyed at the end of the session
    whatever happened. Tests that need no VM (the CRI host test) never prepare the host."""
    rt = LabMachines(ci_lab, log_tag="integration")
    rt.prepare()
    rt.sweep()  # leftovers of an earlier run
    yield rt
    rt.destroy()


@pytest.fixture(scope="session")
def running(lab_runtime: LabMachines) -> LabMachines:
    states = lab_runtime.states()
    if not states or any(s.state != "running" for s in states.values()):
        lab_runtime.up()
    return lab_runtime
