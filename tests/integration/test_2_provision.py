"""Provisioning the CI lab for real: the guide's OS steps and the host-routes pod network hold,
a second run changes nothing, and a node keeps its state across `vagrant reload`."""

from __future__ import annotations

import pytest

from e2e.checks import guide_state_problems
from lab.config import Lab
from lab.machines import LabMachines
from provision.run import run_provision
from provision.steps import steps_for


@pytest.fixture(scope="module")
def provisioned(running: LabMachines) -> LabMachines:
    reports = run_provision(running)
    assert all(r.changed for r in reports), "a fresh node must need work"
    return running


def expect_guide_state(rt: LabMachines, lab: Lab) -> None:
    __tracebackhide__ = True
    problems = [p for n, node in rt.channels().items() for p in guide_state_problems(node, lab, n)]
    assert problems == []


def test_provisioning_leaves_the_guides_state_on_every_node(
    provisioned: LabMachines, ci_lab: Lab
) -> None:
    expect_guide_state(provisioned, ci_lab)


def test_a_second_provisioning_run_applies_zero_commands(provisioned: LabMachines) -> None:
    reports = run_provision(provisioned)
    assert [(r.node, r.commands, r.changed) for r in reports] == [(r.node, 0, []) for r in reports]
    steps = len(steps_for(provisioned.lab))
    assert all(len(r.done) == steps for r in reports), reports


def test_a_node_keeps_its_state_across_vagrant_reload(
    provisioned: LabMachines, ci_lab: Lab
) -> None:
    provisioned.reload("node2")
    expect_guide_state(provisioned, ci_lab)
    reports = run_provision(provisioned)
    assert sum(r.commands for r in reports) == 0, "nothing to redo after a reboot"
