"""The suite's own tests on the tunnel lab (labs/ci-debian12-vxlan.yaml): the flannel-shaped
VXLAN data plane is provisioned (a second run: 0 commands), the suite's checks pass on it, and
each classic failure of that data plane is caught with exactly the cells it breaks and a hint:
a lost FDB entry, a lost neighbour, a pod MTU of 1500 inside the 1450 tunnel, a VTEP bound to
the management NIC, a connect that needed a SYN retransmit (the "63 second" checksum bug), and
pod packets routed around the tunnel (a host-gw route on the private NIC), which every cell
survives and only the packets' count catches."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest

from e2e import mtu, scenarios, tunnelproof
from e2e.drivers.base import Pod, Probe
from e2e.drivers.cni import CniDriver, CniHandle
from lab.hosts.machines import LabMachines, new_instance
from lab.model import paths
from lab.model.config import Lab
from lab.model.labfile import load_lab
from lab.net import reachability as rm
from lab.podnet import tunnel
from lab.podnet.vxlan import VXLAN_DEVICE, vtep_mac, vteps
from provision.run import run_provision
from tests.integration.conftest import on, provisioned_instance, selftest_pods

TUNNEL_LAB = "ci-debian12-vxlan"


@pytest.fixture(scope="module")
def vx_lab(lab_runtime: LabMachines) -> Lab:
    """An instance of the tunnel lab for this module (after the host is prepared): beside
    the session's and any person's lab."""
    return new_instance(load_lab(paths.resolve_lab_path(TUNNEL_LAB)), "it" + secrets.token_hex(2))


@pytest.fixture(scope="module")
def vx(vx_lab: Lab) -> Iterator[LabMachines]:
    """The tunnel lab, up and provisioned for this module; destroyed after it."""
    yield from provisioned_instance(vx_lab, "a fresh node must need work")


@pytest.fixture(scope="module")
def driver(vx: LabMachines) -> CniDriver:
    return CniDriver(vx.lab, vx.channels())


@pytest.fixture(scope="module")
def pods(driver: CniDriver, vx_lab: Lab) -> Iterator[list[Pod[CniHandle]]]:
    yield from selftest_pods(driver, vx_lab.node_names)


def tunnel_state(driver: CniDriver, node: str) -> tunnel.TunnelState:
    outputs = driver.runner.probe(node, *tunnel.probe_tunnel_state())
    return tunnel.parse_tunnel_state(*(o.stdout if o.ok else "" for o in outputs))


def crossing(pods: list[Pod[CniHandle]]) -> set[tuple[str, str]]:
    one = {p.name for p in pods if p.node == "node1"}
    two = {p.name for p in pods if p.node == "node2"}
    return {(a, b) for a in one for b in two} | {(b, a) for a in one for b in two}


def test_the_tunnel_is_provisioned_as_flannel_programs_it_and_converges(
    vx: LabMachines, driver: CniDriver, vx_lab: Lab
) -> None:
    for node in vx_lab.nodes:
        state = tunnel_state(driver, node.name)
        assert tunnel.tunnel_problems(vx_lab, node, state) == []
        assert state.device is not None
        assert (state.device.vni, state.device.port, state.device.mtu) == (1, 8472, 1450)
    reports = run_provision(vx)
    assert [(r.node, r.commands) for r in reports] == [(r.node, 0) for r in reports]


def test_the_model_holds_over_the_tunnel(
    driver: CniDriver, pods: list[Pod[CniHandle]], vx_lab: Lab
) -> None:
    assert scenarios.pod_matrix(driver, pods).mismatches() == []
    node_matrix = scenarios.node_matrix(driver, vx_lab, pods)
    assert node_matrix.mismatches() == [], node_matrix.render()
    assert scenarios.subnet_problems(vx_lab, pods, driver.node_subnets()) == []
    a, b = pods[0], pods[-1]
    assert scenarios.mtu_problems(driver, vx_lab, a, b) == []
    assert mtu.observe_mtu(driver, vx_lab, pods) == []
    assert tunnelproof.prove_crossings(driver, vx_lab, pods, "it-model") == []
    assert all(o.connect_s is not None for o in node_matrix.observed.values())


def test_a_lost_fdb_entry_fails_exactly_the_cells_between_the_two_nodes(
    driver: CniDriver, pods: list[Pod[CniHandle]], vx_lab: Lab, vx: LabMachines
) -> None:
    peer = vx_lab.node("node2")
    entry = (vtep_mac(peer), "dev", VXLAN_DEVICE, "dst", str(peer.ip))
    on(driver, "node1", "bridge", "fdb", "del", *entry)
    try:
        matrix = scenarios.pod_matrix(driver, pods)
        problems = tunnel.tunnel_problems(
            vx_lab, vx_lab.node("node1"), tunnel_state(driver, "node1")
        )
    finally:
        run_provision(vx)  # heals it, as the nightly does
    assert set(matrix.cells_with("X")) == crossing(pods), matrix.render()
    assert {(m.source, m.target) for m in matrix.mismatches()} == crossing(pods)
    assert len(problems) == 1, problems
    assert f"no FDB entry {vtep_mac(peer)} -> {peer.ip}" in problems[0]
    assert "its pods cannot reach node2's" in problems[0]
    assert scenarios.pod_matrix(driver, pods).mismatches() == [], "provisioning healed it"


def test_a_lost_neighbour_fails_exactly_the_cells_between_the_two_nodes(
    driver: CniDriver, pods: list[Pod[CniHandle]], vx_lab: Lab, vx: LabMachines
) -> None:
    remote = vteps(vx_lab)["node2"]
    on(driver, "node1", "ip", "neigh", "del", str(remote.address), "dev", VXLAN_DEVICE)
    try:
        matrix = scenarios.pod_matrix(driver, pods)
        problems = tunnel.tunnel_problems(
            vx_lab, vx_lab.node("node1"), tunnel_state(driver, "node1")
        )
    finally:
        run_provision(vx)
    assert {(m.source, m.target) for m in matrix.mismatches()} == crossing(pods), matrix.render()
    assert any(f"no permanent neighbour {remote.address}" in p for p in problems), problems


def test_a_pod_mtu_of_1500_inside_the_1450_tunnel_is_named(
    driver: CniDriver, pods: list[Pod[CniHandle]], vx_lab: Lab
) -> None:
    source = next(p for p in pods if p.node == "node1")
    target = next(p for p in pods if p.node == "node2")
    netns = ("ip", "netns", "exec", source.name)
    on(driver, "node1", *netns, "ip", "link", "set", "eth0", "mtu", "1500")
    try:
        problems = scenarios.mtu_problems(driver, vx_lab, source, target)
        everywhere = mtu.observe_mtu(driver, vx_lab, pods)
    finally:
        on(driver, "node1", *netns, "ip", "link", "set", "eth0", "mtu", "1450")
    assert any("eth0 MTU is 1500; the lab's pod network MTU is 1450" in p for p in problems)
    assert any("1472-byte DF ping (packet = MTU 1500)" in p for p in problems), problems
    wrong = f"{source.name}'s eth0 MTU is 1500; the lab's pod network MTU is 1450"
    assert [p for p in everywhere if p.startswith(wrong)], everywhere


def test_a_vtep_bound_to_the_management_nic_is_named_with_the_fix(
    driver: CniDriver, vx_lab: Lab, vx: LabMachines
) -> None:
    """What flannel does without --iface on a Vagrant box: the VTEP takes the default-route
    NIC. On libvirt the management network joins the nodes too, so pod traffic may still
    flow, over the wrong network: the tunnel check is what catches it."""
    node = vx_lab.node("node1")
    mgmt = driver.exec_on_node("node1", ("ip", "-o", "-4", "addr", "show", "dev", "eth0"))
    address = mgmt.stdout.split()[3].split("/")[0]
    wrong = (
        "ip", "link", "add", VXLAN_DEVICE, "address", vtep_mac(node), "type", "vxlan", "id",
        "1", "local", address, "dev", "eth0", "dstport", "8472", "nolearning",
    )  # fmt: skip
    on(driver, "node1", "ip", "link", "delete", VXLAN_DEVICE)
    try:
        on(driver, "node1", *wrong)
        on(driver, "node1", "ip", "link", "set", VXLAN_DEVICE, "up")
        problems = tunnel.device_problems(vx_lab, node, tunnel_state(driver, "node1").device)
    finally:
        run_provision(vx)  # flannel.1 is incompatible: deleted and created again
    assert len(problems) == 1, problems
    assert f"sends from {address} on eth0, not from the private IP {node.ip} on eth1" in problems[0]
    assert "pass --iface=eth1" in problems[0]
    assert tunnel.device_problems(vx_lab, node, tunnel_state(driver, "node1").device) == []


def test_a_connect_that_needed_a_syn_retransmit_fails_with_the_offload_hint(
    driver: CniDriver, pods: list[Pod[CniHandle]]
) -> None:
    """The guide era's "63 second" delay: the tunnel drops the first SYNs (a bad UDP checksum,
    kubernetes#88986). Here the first SYN of each source into node2's pods is dropped."""
    source = next(p for p in pods if p.node == "node1")
    target = next(p for p in pods if p.node == "node2")
    drop_first = (
        "-i", VXLAN_DEVICE, "-p", "tcp", "--syn", "-m", "recent", "--name", "nlsyn",
        "!", "--rcheck", "--seconds", "30", "-m", "recent", "--name", "nlsyn", "--set",
        "-j", "DROP",
    )  # fmt: skip
    on(driver, "node2", "iptables", "-I", "FORWARD", *drop_first)
    try:
        seen = driver.observe([Probe("slow", source, target)])["slow"]
    finally:
        on(driver, "node2", "iptables", "-D", "FORWARD", *drop_first)
        with contextlib.suppress(AssertionError):
            on(driver, "node2", "sh", "-c", "echo / > /proc/net/xt_recent/nlsyn")
    matrix = rm.pod_matrix([source.endpoint, target.endpoint])
    matrix.observed[(source.name, target.name)] = seen
    assert seen.retransmits >= 1, seen
    assert matrix.symbol(source.name, target.name) == "S"
    assert "ethtool -K flannel.1 tx-checksum-ip-generic off" in matrix.render()


def test_a_host_gw_route_around_the_tunnel_fails_the_packet_proof_naming_the_route(
    driver: CniDriver, pods: list[Pod[CniHandle]], vx_lab: Lab
) -> None:
    """A route for the peer's pod subnet via the private NIC (flannel's host-gw next to its
    vxlan, or a route a backend switch left): node1 sends node2's pods their packets plain on
    eth1; node2 forwards them, and the answers come back through the tunnel, so every cell
    still answers. The tagged datagrams are counted neither leaving node1 nor arriving at
    node2 as VXLAN packets, and the failure names the route node1 took."""
    peer, remote = vx_lab.node("node2"), vteps(vx_lab)["node2"]
    nic = vx_lab.vm.private_nic
    on(
        driver,
        "node1",
        "ip",
        "route",
        "replace",
        str(remote.subnet),
        "via",
        str(peer.ip),
        "dev",
        nic,
    )
    try:
        matrix = scenarios.pod_matrix(driver, pods)
        problems = tunnelproof.prove_crossings(driver, vx_lab, pods, "it-around")
    finally:
        tunnelled = (str(remote.subnet), "via", str(remote.address), "dev", VXLAN_DEVICE, "onlink")
        on(driver, "node1", "ip", "route", "replace", *tunnelled)
    print("what the tunnel proof said:", *problems, sep="\n  ")  # the integration log shows it
    assert matrix.mismatches() == [], "every cell still answers:\n" + matrix.render()
    assert problems, "the packets went around the tunnel: the proof must fail"
    assert all(p.startswith("node1 -> node2: ") for p in problems), problems
    taken = f"via {peer.ip} dev {nic} src {vx_lab.node('node1').ip}"
    named = [p for p in problems if "did not take the tunnel" in p]
    assert named
    assert all(taken in p and f"(through {nic}, not flannel.1)" in p for p in named)
    assert tunnelproof.prove_crossings(driver, vx_lab, pods, "it-healed") == []
