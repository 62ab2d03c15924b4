"""Provisioning the CI lab for real: the guide's OS steps and the host-routes pod network hold,
a second run changes nothing, an image removed from a node is imported again, and a node keeps
its state across `vagrant reload`."""

from __future__ import annotations

import pytest

from e2e.checks import guide_state_problems
from lab.common.commands import cmd
from lab.hosts.machines import LabMachines
from lab.model.config import Lab
from lab.runtime import containerd
from provision.containerd import SOCKET
from provision.run import run_provision, runtime_images
from provision.steps import steps_for


@pytest.fixture(scope="module")
def provisioned(running: LabMachines) -> LabMachines:
    reports = run_provision(running)
    assert all(r.changed for r in reports), "a fresh node must need work"
    return running


def expect_guide_state(machines: LabMachines, lab: Lab) -> None:
    __tracebackhide__ = True
    channels = machines.channels().items()
    problems = [p for n, node in channels for p in guide_state_problems(node, lab, n)]
    assert problems == []


def test_provisioning_leaves_the_guides_state_on_every_node(
    provisioned: LabMachines, ci_lab: Lab
) -> None:
    expect_guide_state(provisioned, ci_lab)


def test_a_second_provisioning_run_applies_zero_commands(provisioned: LabMachines) -> None:
    reports = run_provision(provisioned)
    assert [(r.node, r.commands, r.changed) for r in reports] == [(r.node, 0, []) for r in reports]
    steps = len(steps_for(provisioned.lab, images=runtime_images(provisioned.lab, build=False)))
    assert all(len(r.done) == steps for r in reports), reports


def test_an_image_missing_on_a_node_is_streamed_to_it_and_imported_again(
    provisioned: LabMachines,
) -> None:
    """The netlab box carries the lab's images, so provisioning imported none above; where one
    is missing (another box, or removed by hand) the archive is streamed over SSH to
    `ctr images import -`, and only there."""
    images = runtime_images(provisioned.lab)
    assert images is not None, "the CI lab runs containerd"
    node = provisioned.channels()["node1"]

    def listed() -> set[str]:
        argv = containerd.ctr_argv(SOCKET, "images", "list", "--quiet")
        return set(node.run(cmd(*argv)).stdout.split())

    wanted = {ref for _, ref in images.refs}
    assert wanted <= listed(), "the box brought every image"
    node.run(cmd(*containerd.ctr_argv(SOCKET, "images", "rm", images.ref("client"))))
    assert images.ref("client") not in listed()
    reports = {r.node: r for r in run_provision(provisioned)}
    assert all(r.commands == 0 for n, r in reports.items() if n != "node1"), reports
    assert (len(reports["node1"].changed), reports["node1"].commands) == (1, 1), reports["node1"]
    assert "containerd" in reports["node1"].changed[0]
    assert wanted <= listed()


def test_a_node_keeps_its_state_across_vagrant_reload(
    provisioned: LabMachines, ci_lab: Lab
) -> None:
    provisioned.reload("node2")
    expect_guide_state(provisioned, ci_lab)
    reports = run_provision(provisioned)
    assert sum(r.commands for r in reports) == 0, "nothing to redo after a reboot"
