"""Probes that observe and return (they never assert), and the `expect_*` comparisons the
tests call. The suite's own tests (tests/integration) call the same functions with the lab
broken on purpose, to show each check fails when its invariant does not hold."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

import pytest

from e2e.drivers.base import Driver, Pod
from e2e.drivers.cni import client_probe
from lab import netmath
from lab import reachability as rm
from lab.adapters.ssh import SshChannel
from lab.commands import cmd
from lab.config import Lab
from lab.parse import parse_ip_addr_addresses
from lab.render import render_pod_routes

PROBE_PARALLELISM = 6


def pod_endpoint(pod: Pod) -> rm.Endpoint:
    return rm.Endpoint(pod.name, pod.node, str(pod.ip))


def observe_cell(driver: Driver, source: Pod | str, target: Pod) -> rm.Observation:
    """Connect from a pod (its `echo` container) or a node to the target's echo server; the
    server answers with the client address it saw."""
    start = time.monotonic()
    argv = client_probe(target.ip)
    if isinstance(source, str):
        res = driver.exec_on_node(source, argv, timeout=20)
    else:
        res = driver.exec(source, "echo", argv, timeout=20)
    seen = res.stdout.strip().splitlines()[-1] if res.ok and res.stdout.strip() else None
    return rm.Observation(
        reachable=seen is not None,
        seen_source=seen,
        reproduce=res.reproduce,
        detail="" if seen else (res.stderr or res.stdout or f"exit {res.exit_code}"),
        seconds=time.monotonic() - start,
    )


def observe(
    matrix: rm.Matrix, probe: dict[str, Pod | str], targets: dict[str, Pod], driver: Driver
) -> rm.Matrix:
    """Fill `matrix.observed` for every expected cell, probes running concurrently."""
    cells = list(matrix.expected)
    with ThreadPoolExecutor(max_workers=PROBE_PARALLELISM) as pool:
        results = pool.map(lambda c: observe_cell(driver, probe[c[0]], targets[c[1]]), cells)
        matrix.observed.update(zip(cells, results, strict=True))
    return matrix


def pod_matrix(driver: Driver, pods: Sequence[Pod], faults: rm.Faults = rm.NO_FAULTS) -> rm.Matrix:
    matrix = rm.pod_matrix([pod_endpoint(p) for p in pods], faults)
    by_name = {p.name: p for p in pods}
    return observe(matrix, dict(by_name), by_name, driver)


def node_addresses(driver: Driver, node: str) -> tuple[str, ...]:
    """Every IPv4 address the node owns (private, management, bridge, overlay)."""
    res = driver.exec_on_node(node, ("ip", "-j", "-4", "addr", "show"))
    if not res.ok:
        return ()
    addrs = parse_ip_addr_addresses(json.loads(res.stdout))
    return tuple(str(a) for values in addrs.values() for a in values)


def node_matrix(
    driver: Driver, lab: Lab, pods: Sequence[Pod], faults: rm.Faults = rm.NO_FAULTS
) -> rm.Matrix:
    nodes = [
        rm.Endpoint(n.name, n.name, str(n.ip), node_addresses(driver, n.name)) for n in lab.nodes
    ]
    matrix = rm.node_matrix(nodes, [pod_endpoint(p) for p in pods], faults)
    return observe(matrix, {n.name: n.name for n in lab.nodes}, {p.name: p for p in pods}, driver)


@dataclass(frozen=True)
class PodAddresses:
    pod: str
    interfaces: dict[str, tuple[IPv4Address, ...]]  # non-loopback interfaces -> IPv4
    reproduce: str

    @property
    def all(self) -> tuple[IPv4Address, ...]:
        return tuple(a for addrs in self.interfaces.values() for a in addrs)


def pod_addresses(driver: Driver, pod: Pod, container: str = "echo") -> PodAddresses:
    res = driver.exec(pod, container, ("ip", "-j", "-4", "addr", "show"))
    links = json.loads(res.stdout) if res.ok else []
    found = {k: v for k, v in parse_ip_addr_addresses(links).items() if k != "lo" and v}
    return PodAddresses(pod.name, found, res.reproduce)


def pod_mtu(driver: Driver, pod: Pod, ifname: str = "eth0") -> int:
    res = driver.exec(pod, "echo", ("ip", "-j", "link", "show", ifname))
    return int(json.loads(res.stdout)[0]["mtu"])


def netns_inode(driver: Driver, pod: Pod, container: str) -> str:
    res = driver.exec(pod, container, ("readlink", "/proc/self/ns/net"))
    return res.stdout.strip()


# --- checks returning problems (the tests and the suite's own breakage tests share them) --


def pod_identity_problems(driver: Driver, pod: Pod, peer: Pod) -> list[str]:
    """One IP per pod; the pod's own view == the runtime's report == what a peer sees."""
    own = pod_addresses(driver, pod)
    seen = driver.exec(pod, "echo", client_probe(peer.ip))
    problems = []
    if len(own.all) != 1:
        problems.append(
            f"{pod.name} has {len(own.all)} IPv4 addresses on its interfaces "
            f"({own.interfaces}); one expected\n    reproduce: {own.reproduce}"
        )
    elif own.all[0] != pod.ip:
        problems.append(
            f"{pod.name} sees itself as {own.all[0]} but the runtime reports "
            f"{pod.ip}\n    reproduce: {own.reproduce}"
        )
    if seen.stdout.strip() != str(pod.ip):
        problems.append(
            f"peer {peer.name} saw {pod.name} as "
            f"{seen.stdout.strip() or '(no answer)'}, not {pod.ip}\n"
            f"    reproduce: {seen.reproduce}"
        )
    return problems


def shared_netns_problems(
    driver: Driver, pod: Pod, client: str, server: str, port: int, banner: str
) -> list[str]:
    """Containers of one pod: one network namespace, one address, reachable on localhost."""
    problems = []
    inodes = {c.name: netns_inode(driver, pod, c.name) for c in pod.containers}
    if len(set(inodes.values())) != 1:
        problems.append(f"containers are in different network namespaces: {inodes}")
    addresses = {c.name: pod_addresses(driver, pod, c.name).all for c in pod.containers}
    if set(addresses.values()) != {(pod.ip,)}:
        problems.append(f"containers see different addresses: {addresses}; pod IP {pod.ip}")
    web = driver.exec(
        pod, client, ("timeout", "5", "socat", "-u", f"TCP:127.0.0.1:{port},connect-timeout=3", "-")
    )
    if banner not in web.stdout:
        problems.append(
            f"{client} did not reach {server} on localhost:{port}: "
            f"{(web.stdout + web.stderr).strip() or f'exit {web.exit_code}'}\n"
            f"    reproduce: {web.reproduce}"
        )
    return problems


def pod_subnet_problems(
    pods: Sequence[Pod], subnets: dict[str, tuple[IPv4Network, ...]]
) -> list[str]:
    problems = []
    for pod in pods:
        owner = netmath.containing(
            pod.ip, [(node, net) for node, nets in subnets.items() for net in nets]
        )
        if owner != pod.node:
            problems.append(
                f"{pod.name} on {pod.node} has {pod.ip}, which is in "
                f"{owner or 'no node'}'s subnet; {pod.node} hands out "
                f"{', '.join(map(str, subnets[pod.node]))}"
            )
    return problems


def node_subnet_problems(
    cidr: IPv4Network, subnets: dict[str, tuple[IPv4Network, ...]]
) -> list[str]:
    return netmath.allocation_problems(
        cidr,
        dict(sorted(subnets.items())),
        missing=lambda node: f"{node} hands out no pod subnet",
        outside=lambda node, net: f"{node}: subnet {net} is outside the cluster pod CIDR {cidr}",
        overlap=lambda a, x, b, y: f"{a}'s subnet {x} overlaps {b}'s subnet {y}",
    )


def mtu_problems(driver: Driver, source: Pod, target: Pod) -> list[str]:
    """A DF packet of exactly the pod MTU crosses; one byte more is refused (DF honoured)."""
    mtu = pod_mtu(driver, source)
    payload = mtu - 28  # IPv4 + ICMP headers
    fits = driver.exec(
        source,
        "echo",
        ("ping", "-M", "do", "-c", "2", "-W", "3", "-s", str(payload), str(target.ip)),
    )
    too_big = driver.exec(
        source,
        "echo",
        ("ping", "-M", "do", "-c", "1", "-W", "3", "-s", str(payload + 1), str(target.ip)),
    )
    problems = []
    if not fits.ok:
        problems.append(
            f"{payload}-byte DF ping (packet = MTU {mtu}) {source.name} -> "
            f"{target.name} failed: {(fits.stdout + fits.stderr).strip()[-300:]}\n"
            f"    reproduce: {fits.reproduce}"
        )
    if too_big.ok:
        problems.append(
            f"a DF packet one byte over MTU {mtu} went through: DF is not "
            f"honoured, so the first ping proves nothing\n"
            f"    reproduce: {too_big.reproduce}"
        )
    return problems


# --- expectations (assert, hiding their own frames) -------------------------------------------


def expect_matrix(matrix: rm.Matrix, context: Callable[[], str] | None = None) -> None:
    """One comparison: on failure the whole table, every wrong cell and its command, then
    `context()` (e.g. a namespace dump), computed only on failure."""
    __tracebackhide__ = True
    bad = matrix.mismatches()
    if bad:
        extra = f"\n\n{context()}" if context else ""
        pytest.fail(
            f"{len(bad)} of {len(matrix.expected)} cells wrong\n{matrix.render()}{extra}",
            pytrace=False,
        )


def expect_no_problems(
    problems: Sequence[str],
    what: str,
    reproduce: Sequence[str] = (),
    context: Callable[[], str] | None = None,
) -> None:
    """Fail with every problem, the commands that reproduce them and `context()`."""
    __tracebackhide__ = True
    if not problems:
        return
    lines = [f"{what}: {len(problems)} problem(s)", *(f"  - {p}" for p in problems)]
    if reproduce:
        lines += ["reproduce:", *(f"  {r}" for r in dict.fromkeys(reproduce))]
    if context:
        lines += ["", context()]
    pytest.fail("\n".join(lines), pytrace=False)


GUIDE_SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.ip_forward": "1",
}


def guide_state_problems(node: SshChannel, lab: Lab, name: str) -> list[str]:
    """What the guide's OS steps leave on a node, read live: sysctls, swap off, br_netfilter,
    the hostname, and on the CI lab the host-gw routes to every other node's pod subnet."""
    problems = []
    for key, want in GUIDE_SYSCTLS.items():
        got = node.run(cmd("sysctl", "-n", key), check=False).stdout.strip()
        if got != want:
            problems.append(f"{name}: {key} = {got!r}, expected {want}")
    swaps = node.run(cmd("cat", "/proc/swaps", sudo=False)).stdout.splitlines()[1:]
    if swaps:
        problems.append(f"{name}: swap is on: {swaps}")
    if "br_netfilter " not in node.run(cmd("cat", "/proc/modules", sudo=False)).stdout:
        problems.append(f"{name}: br_netfilter is not loaded")
    hostname = node.run(cmd("hostname", sudo=False)).stdout.strip()
    if hostname != name:
        problems.append(f"{name}: hostname is {hostname!r}")
    if lab.pod_network.driver == "host-routes":
        routes = node.run(cmd("ip", "-4", "route", "show", sudo=False)).stdout
        problems += [
            f"{name}: no route {r.destination} via {r.via} dev {r.device}"
            for r in render_pod_routes(lab, lab.node(name))
            if f"{r.destination} via {r.via} dev {r.device}" not in routes
        ]
    return problems
