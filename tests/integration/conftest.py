"""Integration tests run real VMs of labs/ci-debian12.yaml inside the lab's network namespace.

The tests of this directory share one lab in file order (lifecycle, provisioning, the suite's
own breakage tests, destroy, interrupted up): bringing up TCG VMs is the expensive part. That
lab is an instance of ci-debian12 of the session's own (lab/model/instance.py: its own name,
libvirt objects and ranges), so a person's running ci-debian12 is never touched: the first
test brings up another lab as a person would (or finds theirs), the last shows it untouched."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from e2e.drivers.base import Pod, PodRequest
from e2e.drivers.cni import CniDriver, CniHandle
from lab.hosts.machines import LabMachines, new_instance
from lab.model import paths
from lab.model.config import Lab
from lab.model.labfile import load_lab
from provision.run import run_provision

LAB = "ci-debian12"


def provisioned_instance(lab: Lab, fresh_needs_work: str) -> Iterator[LabMachines]:
    """A lab instance of a module's own, up and provisioned (the host prepared for it, as the
    session's lab is: libvirt, the box, this process in the lab's namespace; a fresh machine
    must need work: `fresh_needs_work` says why not), destroyed after it."""
    machines = LabMachines(lab, log_tag="integration")
    machines.prepare()
    machines.sweep()
    try:
        machines.up()
        reports = run_provision(machines)
        assert all(r.changed for r in reports), fresh_needs_work
        yield machines
    finally:
        machines.destroy()


def on(driver: CniDriver, node: str, *argv: str) -> str:
    """A command as root on a node that must succeed (the module's own setup or undo)."""
    res = driver.exec_on_node(node, argv)
    assert res.ok, f"{node}: {' '.join(argv)}: {res.stderr}"
    return res.stdout


def selftest_pods(driver: CniDriver, nodes: Sequence[str]) -> Iterator[list[Pod[CniHandle]]]:
    """Two CNI-direct pods per node for a module's own tests, deleted after them (a module's
    fixture yields from it)."""
    made = driver.create_pods(
        [
            PodRequest(f"nl-selftest-{n}-{i}", n, driver.fleet_containers())
            for n in nodes
            for i in range(2)
        ]
    )
    yield made
    driver.delete_pods(made)


@pytest.fixture(scope="session")
def ci_definition() -> Lab:
    return load_lab(paths.resolve_lab_path(LAB))


@pytest.fixture(scope="session")
def ci_lab(ci_definition: Lab) -> Lab:
    """This session's instance of the CI lab (starts libvirt, in the lab's namespace)."""
    return new_instance(ci_definition, "it" + secrets.token_hex(2))


@pytest.fixture(scope="session")
def lab_runtime(ci_lab: Lab) -> Iterator[LabMachines]:
    """The CI lab's instance, prepared (libvirtd started, the box built or reused, files
    rendered, this process in the lab's namespace: before any thread starts, so the first VM
    test asks for it); started by the first test that needs it running. Destroyed at the end
    of the session whatever happened. Tests that need no VM (the CRI host test) never prepare
    the host."""
    machines = LabMachines(ci_lab, log_tag="integration")
    machines.prepare()
    yield machines
    machines.destroy()


@pytest.fixture(scope="session")
def running(lab_runtime: LabMachines) -> LabMachines:
    states = lab_runtime.states()
    if not states or any(s.state != "running" for s in states.values()):
        lab_runtime.up()
    return lab_runtime


@dataclass
class OthersLabs:
    """Every lab domain running when the session began (name -> libvirt UUID), and the lab
    the session brought up as a person would, when none of that name was running."""

    domains: dict[str, str]
    ours: LabMachines | None


PERSONS_LAB = "ci-debian12-vxlan"  # its name extends ci-debian12's: the old prefix trap
PERSONS_UP_S = 1200


def running_lab_domains(machines: LabMachines) -> dict[str, str]:
    """Every running lab domain but this session's instance's: name -> libvirt UUID."""
    found = machines.libvirt.list_lab_objects("netlab-").domains
    names = [d for d in found if not d.startswith(machines.lab.prefix)]
    return {name: dom.uuid for name, dom in machines.libvirt.running_domains(names).items()}


@pytest.fixture(scope="session")
def others_labs(lab_runtime: LabMachines) -> Iterator[OthersLabs]:
    """A lab running beside the session's, as a person runs one: theirs when they have it
    (`make lab LAB=ci-debian12-vxlan`, kept as it is), else brought up here the way they
    would (`python -m lab up ci-debian12-vxlan`) and destroyed at the end."""
    definition = load_lab(paths.resolve_lab_path(PERSONS_LAB))
    theirs = LabMachines(definition, log_tag="integration")
    ours = None
    if not theirs.leftovers().domains and not (theirs.state / ".vagrant").exists():
        done = subprocess.run(
            [sys.executable, "-m", "lab", "up", PERSONS_LAB],
            cwd=paths.REPO,
            capture_output=True,
            text=True,
            timeout=PERSONS_UP_S,
            check=False,
        )
        assert done.returncode == 0, f"`python -m lab up {PERSONS_LAB}`: {done.stdout[-2000:]}"
        ours = theirs
    try:
        yield OthersLabs(running_lab_domains(lab_runtime), ours)
    finally:
        if ours is not None:
            ours.destroy()
