"""Provisioning the CI lab for real: the guide's OS steps and the host-routes pod network hold,
a second run changes nothing, and a node keeps its state across `vagrant reload`."""

from __future__ import annotations

import pytest

from lab.commands import cmd
from lab.config import Lab
from lab.lifecycle import Runtime
from lab.render import render_pod_routes
from provision.cli import run_provision

EXPECTED_SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.ip_forward": "1",
}


@pytest.fixture(scope="module")
def provisioned(running: Runtime) -> Runtime:
    reports = run_provision(running, quiet=True)
    assert all(r.changed for r in reports), "a fresh node must need work"
    return running


def expect_guide_state(rt: Runtime, lab: Lab) -> None:
    __tracebackhide__ = True
    for name, node in rt.nodes().items():
        for key, value in EXPECTED_SYSCTLS.items():
            got = node.run(cmd("sysctl", "-n", key)).stdout.strip()
            assert got == value, f"{name}: {key} = {got}, expected {value}"
        swaps = node.run(cmd("cat", "/proc/swaps", sudo=False)).stdout.splitlines()[1:]
        assert swaps == [], f"{name}: swap is on: {swaps}"
        modules = node.run(cmd("cat", "/proc/modules", sudo=False)).stdout
        assert "br_netfilter " in modules, f"{name}: br_netfilter not loaded"
        assert node.run(cmd("hostname", sudo=False)).stdout.strip() == name
        routes = node.run(cmd("ip", "-4", "route", "show", sudo=False)).stdout
        for r in render_pod_routes(lab, lab.node(name)):
            assert f"{r.destination} via {r.via} dev {r.device}" in routes, f"{name}: {routes}"


def test_provisioning_leaves_the_guides_state_on_every_node(
    provisioned: Runtime, ci_lab: Lab
) -> None:
    expect_guide_state(provisioned, ci_lab)


def test_a_second_provisioning_run_applies_zero_commands(provisioned: Runtime) -> None:
    reports = run_provision(provisioned, quiet=True)
    assert [(r.node, r.commands, r.changed) for r in reports] == [(r.node, 0, []) for r in reports]
    assert all(len(r.done) == 6 for r in reports), reports


def test_a_node_keeps_its_state_across_vagrant_reload(provisioned: Runtime, ci_lab: Lab) -> None:
    provisioned.reload("node2")
    expect_guide_state(provisioned, ci_lab)
    reports = run_provision(provisioned, quiet=True)
    assert sum(r.commands for r in reports) == 0, "nothing to redo after a reboot"
