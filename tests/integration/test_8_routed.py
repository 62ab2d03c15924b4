"""The suite's own tests on the routed underlay (labs/ci-debian12-routed-bgp.yaml: two nodes on
two segments, a router VM between them, the Calico-shaped BGP backend): the router and the
nodes are provisioned and converge (a second run: 0 commands); the model holds across the
router with routes bird learned; and each BGP breakage is caught with exactly the cells it
breaks and its cause named: a session down on one node (its state from `birdc show
protocols`), a route withdrawn. host-gw forced onto this underlay (what `validate` refuses)
fails: the kernel will not route via a gateway across the router."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator

import pytest

from e2e import scenarios, underlay
from e2e.drivers.base import Pod
from e2e.drivers.cni import CniDriver, CniHandle
from lab.common import waits
from lab.common.commands import cmd
from lab.hosts.machines import LabMachines, new_instance
from lab.model import paths
from lab.model.config import Lab, validate_lab
from lab.model.labfile import load_lab
from lab.net.reachability import Matrix
from lab.podnet.bgp import BLOCKS, peers
from lab.podnet.hostroutes import render_pod_routes
from provision.apply import provision
from provision.podnet.hostroutes import DROPIN, ROUTES
from provision.run import run_provision
from tests.integration.conftest import on, provisioned_instance, selftest_pods

ROUTED_LAB = "ci-debian12-routed-bgp"
HEALED = waits.Policy("the pod matrix clean again after the BGP breakage", timeout_s=90)


@pytest.fixture(scope="module")
def routed() -> Iterator[LabMachines]:
    """An instance of the routed BGP lab for this module, up and provisioned (the host
    prepared for it: libvirt, the box, this process in the lab's namespace, as the session's
    lab does); destroyed after it."""
    definition = load_lab(paths.resolve_lab_path(ROUTED_LAB))
    yield from provisioned_instance(
        new_instance(definition, "it" + secrets.token_hex(2)),
        "a fresh router and fresh nodes need work",
    )


@pytest.fixture(scope="module")
def lab(routed: LabMachines) -> Lab:
    return routed.lab


@pytest.fixture(scope="module")
def driver(routed: LabMachines) -> CniDriver:
    return CniDriver(routed.lab, routed.channels())


@pytest.fixture(scope="module")
def pods(driver: CniDriver, lab: Lab) -> Iterator[list[Pod[CniHandle]]]:
    yield from selftest_pods(driver, lab.node_names)


def crossing(pods: list[Pod[CniHandle]]) -> set[tuple[str, str]]:
    one = {p.name for p in pods if p.node == "node1"}
    two = {p.name for p in pods if p.node == "node2"}
    return {(a, b) for a in one for b in two} | {(b, a) for a in one for b in two}


def wrong(matrix: Matrix) -> set[tuple[str, str]]:
    return {(m.source, m.target) for m in matrix.mismatches()}


def healed(driver: CniDriver, pods: list[Pod[CniHandle]]) -> None:
    waits.wait_until(HEALED, lambda: scenarios.pod_matrix(driver, pods), lambda m: not wrong(m))


def test_the_router_and_the_nodes_converge(routed: LabMachines) -> None:
    reports = run_provision(routed)
    assert [r.node for r in reports] == ["tor", "node1", "node2"]
    assert [(r.node, r.commands) for r in reports] == [(r.node, 0) for r in reports]


def test_the_model_holds_across_the_router_with_routes_bird_learned(
    driver: CniDriver, pods: list[Pod[CniHandle]], lab: Lab
) -> None:
    assert scenarios.pod_matrix(driver, pods).mismatches() == []
    node_matrix = scenarios.node_matrix(driver, lab, pods)
    assert node_matrix.mismatches() == [], node_matrix.render()
    for node in lab.node_names:
        assert underlay.bgp_problems(driver, lab, node) == []
        route = on(driver, node, "ip", "-4", "route", "show", "proto", "bird")
        assert "via" in route, route  # learned, through the router on the node's segment
    a, b = pods[0], pods[-1]
    assert scenarios.mtu_problems(driver, lab, a, b) == []
    assert not underlay.node_path_mtu(driver, lab, "node1", "node2").short
    assert not underlay.pod_path_mtu(driver, lab, a, b).short


def test_a_bgp_session_down_on_one_node_fails_its_cells_and_names_the_session_state(
    driver: CniDriver, pods: list[Pod[CniHandle]], lab: Lab
) -> None:
    (tor,) = peers(lab, lab.node("node2"))
    on(driver, "node2", "birdc", "disable", tor.protocol)
    try:
        matrix = scenarios.pod_matrix(driver, pods)
        problems = underlay.bgp_problems(driver, lab, "node2")
        seen_from_node1 = underlay.bgp_problems(driver, lab, "node1")
    finally:
        on(driver, "node2", "birdc", "enable", tor.protocol)
    assert wrong(matrix) == crossing(pods), matrix.render()
    assert set(matrix.cells_with("X")) == crossing(pods)
    assert any(
        p.startswith(f"node2: BGP session {tor.protocol} to tor {tor.address} (AS 64512) is down")
        for p in problems
    ), problems
    assert any("no route to node2's pod subnet 10.244.1.0/24" in p for p in seen_from_node1)
    healed(driver, pods)


def test_a_withdrawn_route_fails_the_cells_of_its_pods_and_is_named(
    driver: CniDriver, pods: list[Pod[CniHandle]], lab: Lab
) -> None:
    on(driver, "node2", "birdc", "disable", BLOCKS)
    try:
        matrix = scenarios.pod_matrix(driver, pods)
        on_node2 = underlay.bgp_problems(driver, lab, "node2")
        on_node1 = underlay.bgp_problems(driver, lab, "node1")
    finally:
        on(driver, "node2", "birdc", "enable", BLOCKS)
    assert wrong(matrix) == crossing(pods), matrix.render()
    assert on_node2 == [
        f"node2: bird's static protocol {BLOCKS} (its pod subnet 10.244.1.0/24) is down: the "
        f"subnet is withdrawn from every peer (`birdc enable {BLOCKS}`)"
    ]
    assert len(on_node1) == 1
    assert on_node1[0].startswith(
        "node1: no route to node2's pod subnet 10.244.1.0/24 learned by BGP (proto bird; "
        "expected via "
    )
    healed(driver, pods)


def test_host_gw_forced_onto_the_routed_underlay_fails_with_the_kernels_reason(
    driver: CniDriver, pods: list[Pod[CniHandle]], lab: Lab, routed: LabMachines
) -> None:
    """What `validate` refuses, done anyway: with bird stopped (no learned route to hide it),
    host-gw's routes via the other node's private IP cannot be installed (the next hop is
    across the router, not on-link), provisioning cannot make them hold, and the cells
    between the nodes fail."""
    forced = dataclasses.replace(
        lab, pod_network=dataclasses.replace(lab.pod_network, driver="host-routes")
    )
    assert any("not on the same subnet" in str(p) for p in validate_lab(forced))
    (route,) = render_pod_routes(forced, forced.node("node1"))
    for node in lab.node_names:
        on(driver, node, "systemctl", "stop", "bird")
    try:
        direct = driver.exec_on_node(
            "node1", ("ip", "route", "add", str(route.destination), "via", str(route.via))
        )
        reports = provision(forced, routed.channels(), (ROUTES,))
        matrix = scenarios.pod_matrix(driver, pods)
    finally:
        for node in lab.node_names:
            dropin = f"/etc/systemd/network/50-vagrant-eth1.network.d/{DROPIN}"
            driver.exec_on_node(node, ("rm", "-f", dropin))
            driver.exec_on_node(node, ("networkctl", "reload"))
            driver.exec_on_node(node, ("networkctl", "reconfigure", "eth1"))
            driver.exec_on_node(node, ("systemctl", "start", "bird"))
    assert not direct.ok
    assert "Nexthop has invalid gateway" in direct.stderr, direct
    assert all("did not converge" in r.error for r in reports), [r.error for r in reports]
    assert wrong(matrix) == crossing(pods), matrix.render()
    run_provision(routed)  # and the BGP lab is whole again
    healed(driver, pods)
    learned = routed.channels()["node1"].run(cmd("ip", "route", "show", str(route.destination)))
    assert "proto bird" in learned.stdout, learned.stdout
