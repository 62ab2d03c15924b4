"""The suite's own tests: each check, run against the provisioned CI lab broken on purpose,
fails and names exactly what is wrong. Every breakage is undone in a finally block."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from e2e import scenarios
from e2e.drivers.base import Container, GuidePod, Pod, PodRequest
from e2e.drivers.cni import CniDriver, CniHandle
from e2e.fleets import wait_for_echo_servers
from lab.common.commands import cmd
from lab.hosts.machines import LabMachines
from lab.model.config import Lab
from lab.net.netmath import gateway
from lab.net.reachability import Matrix
from lab.podnet import backend_of, node_pod_subnets
from provision.run import run_provision


@pytest.fixture(scope="module")
def driver(running: LabMachines) -> CniDriver:
    run_provision(running)  # idempotent: the lab test_2 provisioned, or a fresh one
    return CniDriver(running.lab, running.channels())


@pytest.fixture(scope="module")
def pods(driver: CniDriver, ci_lab: Lab) -> Iterator[list[Pod[CniHandle]]]:
    made = driver.create_pods(
        [
            PodRequest(f"nl-selftest-{n}-{i}", n, driver.fleet_containers())
            for n in ci_lab.node_names
            for i in range(2)
        ]
    )
    wait_for_echo_servers(driver, made)
    yield made
    driver.delete_pods(made)


def on(driver: CniDriver, node: str, *argv: str) -> None:
    res = driver.exec_on_node(node, argv)
    assert res.ok, f"{node}: {' '.join(argv)}: {res.stderr}"


def cells(matrix: Matrix, symbol: str) -> set[tuple[str, str]]:
    return set(matrix.cells_with(symbol))


def test_healthy_lab_passes_every_check(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    assert scenarios.pod_matrix(driver, pods).mismatches() == []
    assert scenarios.pod_matrix(driver, pods, proto="udp").mismatches() == []
    assert scenarios.node_matrix(driver, ci_lab, pods, proto="udp").mismatches() == []
    assert scenarios.node_matrix(driver, ci_lab, pods).mismatches() == []
    assert scenarios.pod_identity_problems(driver, pods[0], pods[-1]) == []
    assert scenarios.mtu_problems(driver, ci_lab, pods[0], pods[-1]) == []
    subnets = driver.node_subnets()
    assert scenarios.subnet_problems(ci_lab, pods, subnets) == []


def test_an_snat_rule_on_one_node_fails_exactly_the_cells_it_translates(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    subnets = node_pod_subnets(ci_lab)
    rule = ("-s", str(subnets["node1"]), "-o", ci_lab.vm.private_nic, "-j", "MASQUERADE")
    on(driver, "node1", "iptables", "-t", "nat", "-I", "POSTROUTING", *rule)
    try:
        matrix = scenarios.pod_matrix(driver, pods)
    finally:
        on(driver, "node1", "iptables", "-t", "nat", "-D", "POSTROUTING", *rule)
    node1 = {p.name for p in pods if p.node == "node1"}
    node2 = {p.name for p in pods if p.node == "node2"}
    assert cells(matrix, "N") == {(a, b) for a in node1 for b in node2}
    assert {(m.source, m.target) for m in matrix.mismatches()} == cells(matrix, "N")
    text = matrix.render()
    assert f"seen as {ci_lab.node('node1').ip}" in text, "the receiver reports node1's address"
    assert f"reproduce: python -m lab ssh {ci_lab.name} node1 -- " in text


def test_a_udp_only_masquerade_on_one_node_fails_exactly_the_udp_cells_from_its_pods(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    """What treats UDP otherwise (flannel's masquerade covers UDP too) shows only in UDP
    cells: the TCP matrix stays clean, the UDP one names node1's address as the source."""
    subnets = node_pod_subnets(ci_lab)
    rule = (
        "-s",
        str(subnets["node1"]),
        "-p",
        "udp",
        "-o",
        ci_lab.vm.private_nic,
        "-j",
        "MASQUERADE",
    )
    on(driver, "node1", "iptables", "-t", "nat", "-I", "POSTROUTING", *rule)
    try:
        udp = scenarios.pod_matrix(driver, pods, proto="udp")
        tcp = scenarios.pod_matrix(driver, pods)
    finally:
        on(driver, "node1", "iptables", "-t", "nat", "-D", "POSTROUTING", *rule)
    node1 = {p.name for p in pods if p.node == "node1"}
    node2 = {p.name for p in pods if p.node == "node2"}
    assert tcp.mismatches() == []
    assert {(m.source, m.target) for m in udp.mismatches()} == {
        (a, b) for a in node1 for b in node2
    }
    assert cells(udp, "N") == {(a, b) for a in node1 for b in node2}
    assert f"seen as {ci_lab.node('node1').ip}" in udp.render()


def test_a_deleted_route_shows_as_the_missing_cells(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    route = (str(node_pod_subnets(ci_lab)["node2"]), "via", str(ci_lab.node("node2").ip))
    on(driver, "node1", "ip", "route", "del", *route)
    try:
        matrix = scenarios.pod_matrix(driver, pods)
    finally:
        on(driver, "node1", "ip", "route", "replace", *route)
    node1 = {p.name for p in pods if p.node == "node1"}
    node2 = {p.name for p in pods if p.node == "node2"}
    crossing = {(a, b) for a in node1 for b in node2} | {(b, a) for a in node1 for b in node2}
    assert cells(matrix, "X") == crossing
    assert {(m.source, m.target) for m in matrix.mismatches()} == crossing


def test_node_traffic_translated_on_arrival_breaks_the_node_to_pod_policy(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    gw = str(gateway(node_pod_subnets(ci_lab)["node2"]))
    rule = (
        "-s",
        str(ci_lab.node("node1").ip),
        "-o",
        ci_lab.pod_network.bridge,
        "-j",
        "SNAT",
        "--to-source",
        gw,
    )
    on(driver, "node2", "iptables", "-t", "nat", "-I", "POSTROUTING", *rule)
    try:
        matrix = scenarios.node_matrix(driver, ci_lab, pods)
    finally:
        on(driver, "node2", "iptables", "-t", "nat", "-D", "POSTROUTING", *rule)
    node2_pods = {p.name for p in pods if p.node == "node2"}
    assert cells(matrix, "N") == {("node1", p) for p in node2_pods}
    assert f"seen as {gw}" in matrix.render()


def test_a_second_address_in_a_pod_breaks_one_ip_per_pod(
    driver: CniDriver, pods: list[Pod[CniHandle]]
) -> None:
    pod = pods[0]
    extra = str(IPv4Address(int(pod.ip) + 100)) + "/24"
    on(driver, pod.node, "ip", "netns", "exec", pod.name, "ip", "addr", "add", extra, "dev", "eth0")
    try:
        problems = scenarios.pod_identity_problems(driver, pod, pods[-1])
    finally:
        on(
            driver,
            pod.node,
            "ip",
            "netns",
            "exec",
            pod.name,
            "ip",
            "addr",
            "del",
            extra,
            "dev",
            "eth0",
        )
    assert len(problems) == 1
    assert "has 2 IPv4 addresses" in problems[0]


def test_a_container_outside_the_pod_namespace_is_caught(
    driver: CniDriver, pods: list[Pod[CniHandle]]
) -> None:
    pod = pods[0]
    stray = driver.exec_on_node(
        pod.node,
        cmd("systemd-run", "--unit=nl-selftest-stray", "--collect", "--quiet", "sleep", "600").argv,
    )
    assert stray.ok, stray.stderr
    try:
        pid = driver.exec_on_node(
            pod.node, ("systemctl", "show", "-p", "MainPID", "--value", "nl-selftest-stray")
        ).stdout.strip()
        assert pid.isdigit(), f"no MainPID for the stray process: {pid!r}"
        assert pid != "0", "the stray process is not running (MainPID 0)"
        broken = dataclasses.replace(
            pod,
            containers=(*pod.containers, Container("stray", ())),
            handle=CniHandle(pod.handle.result, {**pod.handle.pids, "stray": int(pid)}),
        )
        # the pod's own echo server answers on localhost; the stray process must be caught
        guide = GuidePod(broken.containers, "echo", "echo", 8080, "")
        problems = scenarios.shared_netns_problems(driver, broken, guide)
    finally:
        driver.exec_on_node(pod.node, ("systemctl", "stop", "nl-selftest-stray"))
    assert any("different network namespaces" in p for p in problems), problems


def test_overlapping_node_subnets_and_a_pod_outside_its_subnet_are_named(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    subnets = driver.node_subnets()
    assert scenarios.subnet_problems(ci_lab, pods, subnets) == []
    overlapping = {**subnets, "node2": subnets["node1"]}
    problems = scenarios.subnet_problems(ci_lab, [], overlapping)
    assert (
        f"node1's subnet {subnets['node1'][0]} overlaps node2's subnet {subnets['node1'][0]}"
        in problems
    )
    first = next(p for p in pods if p.node == "node1")
    moved = [dataclasses.replace(first, node="node2")]
    assert any(
        "which is in node1's subnet" in p for p in scenarios.subnet_problems(ci_lab, moved, subnets)
    )


def test_a_smaller_mtu_on_the_path_fails_the_df_check(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    nic = ci_lab.vm.private_nic
    mtu = driver.exec_on_node("node1", ("cat", f"/sys/class/net/{nic}/mtu")).stdout.strip()
    assert mtu.isdigit(), f"cannot read {nic}'s MTU on node1: {mtu!r}"
    on(driver, "node1", "ip", "link", "set", nic, "mtu", "1400")
    try:
        problems = scenarios.mtu_problems(
            driver,
            ci_lab,
            next(p for p in pods if p.node == "node1"),
            next(p for p in pods if p.node == "node2"),
        )
    finally:
        on(driver, "node1", "ip", "link", "set", nic, "mtu", mtu)
    # the packet of the pod's MTU is refused on the way, and so (with the path MTU the kernel
    # learnt from that refusal) is the over-size one: both name the narrower path
    assert len(problems) == 2, problems
    assert "1472-byte DF ping (packet = MTU 1500)" in problems[0]
    assert "Frag needed and DF set (mtu = 1400)" in problems[0]
    assert "refused at MTU 1400, not at the pod's 1500" in problems[1]


def test_a_pod_mtu_other_than_the_labs_is_named(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    source = next(p for p in pods if p.node == "node1")
    target = next(p for p in pods if p.node == "node2")
    want = backend_of(ci_lab).pod_mtu(ci_lab)
    on(
        driver,
        "node1",
        "ip",
        "netns",
        "exec",
        source.name,
        "ip",
        "link",
        "set",
        "eth0",
        "mtu",
        "1400",
    )
    try:
        problems = scenarios.mtu_problems(driver, ci_lab, source, target)
    finally:
        on(
            driver,
            "node1",
            "ip",
            "netns",
            "exec",
            source.name,
            "ip",
            "link",
            "set",
            "eth0",
            "mtu",
            str(want),
        )
    assert any(f"eth0 MTU is 1400; the lab's pod network MTU is {want}" in p for p in problems), (
        problems
    )


def test_node_traffic_translated_to_its_own_management_address_fails_exactly_those_cells(
    driver: CniDriver, pods: list[Pod[CniHandle]], ci_lab: Lab
) -> None:
    """The node's own address, but the wrong one: the management NIC's. A policy that takes
    any address the node owns would pass this; the route's source address does not."""
    out = driver.exec_on_node("node1", ("ip", "-o", "-4", "addr", "show", "dev", "eth0"))
    mgmt = out.stdout.split()[3].split("/")[0]
    assert IPv4Address(mgmt) in ci_lab.network.management, out.stdout
    remote = str(node_pod_subnets(ci_lab)["node2"])
    rule = ("-s", str(ci_lab.node("node1").ip), "-d", remote, "-j", "SNAT", "--to-source", mgmt)
    on(driver, "node1", "iptables", "-t", "nat", "-I", "POSTROUTING", *rule)
    try:
        matrix = scenarios.node_matrix(driver, ci_lab, pods)
    finally:
        on(driver, "node1", "iptables", "-t", "nat", "-D", "POSTROUTING", *rule)
    node2_pods = {p.name for p in pods if p.node == "node2"}
    assert cells(matrix, "N") == {("node1", p) for p in node2_pods}, matrix.render()
    assert {(m.source, m.target) for m in matrix.mismatches()} == cells(matrix, "N")
    # what the receiver sees: the management address, or (when the host's bridge filters
    # bridged traffic through iptables) the address libvirt's masquerade rule gives it
    translated = cells(matrix, "N")
    seen = {o.seen_source for cell, o in matrix.observed.items() if cell in translated}
    assert seen, matrix.render()
    assert str(ci_lab.node("node1").ip) not in seen, matrix.render()
