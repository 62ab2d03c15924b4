"""The network-model scenarios, written once against the driver protocol (e2e/drivers/base.py):
pod to pod and node to pod without NAT, one IP per pod seen alike by all, containers of a pod in
one network namespace, per-node pod subnets, the MTU. Every driver (CNI-direct, Kubernetes, CRI)
runs the same scenario with its own pods, echo server and client probe.

Scenarios observe and return (matrices, problem lists); they never assert. The tests call the
`expect_*` comparisons of e2e/checks.py on what they return. Expectations come from the lab file
(pure models in lab/), never from what the run itself rendered or observed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from e2e.drivers.base import Driver, GuidePod, Pod, PodRequest, Probe, Source
from e2e.probes import Proto
from lab.common.commands import cmd
from lab.hosts.parse import (
    PROC_NET_FILES,
    parse_ip_oneline_addresses,
    parse_link_mtu,
    parse_proc_net,
    parse_route_get_text,
)
from lab.model.config import Lab
from lab.net import netmath
from lab.net import reachability as rm
from lab.podnet import backend_of

P = TypeVar("P", bound=Pod[Any])
T = TypeVar("T")
OVERLAY_DEVICES = ("flannel.1",)  # the vxlan backend's VTEP: a legitimate node source


# --- the fleet ---------------------------------------------------------------------------------


def fleet_slots(lab: Lab, pods_per_node: int) -> list[tuple[str, int]]:
    """(node, index) of every fleet pod, from the lab definition: sorted, never live state."""
    if pods_per_node < 1:
        raise ValueError(f"--pods-per-node must be at least 1, got {pods_per_node}")
    if len(lab.nodes) * pods_per_node < 2 or len(lab.nodes) < 2:
        raise ValueError(
            f"lab {lab.name} has {len(lab.nodes)} node(s) x {pods_per_node} pod(s): the pod "
            "matrix needs at least two nodes, so that a cell crosses the pod network"
        )
    return sorted((node, i) for node in lab.node_names for i in range(pods_per_node))


def slot_name(run_id: str, driver: str, slot: tuple[str, int]) -> str:
    return f"nl-{run_id}-{driver}-{slot[0]}-p{slot[1]}"


def fleet_requests(
    driver: Driver[Any], run_id: str, slots: Sequence[tuple[str, int]]
) -> list[PodRequest]:
    """Every slot's pod, with the containers the driver gives the node's pod of that index."""
    return [
        PodRequest(slot_name(run_id, driver.name, s), s[0], driver.fleet_containers(s[1]))
        for s in slots
    ]


def expected_cells(slots: Sequence[tuple[str, int]], nodes: int) -> tuple[int, int]:
    """How many cells the pod and node matrices must have, from the lab alone."""
    pods = len(slots)
    return pods * (pods - 1), nodes * pods


# --- matrices ----------------------------------------------------------------------------------


def observe(
    driver: Driver[Any],
    matrix: rm.Matrix,
    sources: Mapping[str, Source],
    targets: Mapping[str, Pod[Any]],
    proto: Proto = "tcp",
) -> rm.Matrix:
    """Fill `matrix.observed` for every expected cell in one batched call of the driver (each
    cell over `proto`: a TCP connection or a UDP datagram to the target's echo server)."""
    suffix = "" if proto == "tcp" else f"/{proto}"
    cells = [
        Probe(f"{s}->{t}{suffix}", sources[s], targets[t], proto=proto)
        for (s, t) in matrix.expected
    ]
    seen = driver.observe(cells)
    for cell, (s, t) in zip(cells, matrix.expected, strict=True):
        matrix.observed[(s, t)] = seen[cell.id]
    return matrix


def pod_matrix(
    driver: Driver[Any],
    pods: Sequence[Pod[Any]],
    faults: rm.Faults = rm.NO_FAULTS,
    proto: Proto = "tcp",
) -> rm.Matrix:
    title = f"pod -> pod{_over(proto)} [{driver.name}]"
    matrix = rm.pod_matrix([p.endpoint for p in pods], faults, title=title)
    by_name = {p.name: p for p in pods}
    return observe(driver, matrix, dict(by_name), by_name, proto)


def _over(proto: Proto) -> str:
    return "" if proto == "tcp" else f" ({proto.upper()})"


@dataclass(frozen=True)
class NodeRoutes:
    """What one node's kernel says about reaching the pods: the source address it picks for
    each pod IP (`ip route get`), and the addresses it may legitimately send pod traffic from
    (its private IP, and its addresses on the pod bridge or the overlay device)."""

    node: str
    route_sources: Mapping[str, str | None]  # pod IP -> prefsrc
    allowed: tuple[str, ...]
    reproduce: str


def node_routes(
    driver: Driver[Any], lab: Lab, node: str, pod_ips: Sequence[IPv4Address]
) -> NodeRoutes:
    """One round trip: `ip route get` for every pod IP and `ip -o addr show` (the text forms
    every iproute2 prints, CentOS 7's 4.11 included)."""
    commands = [cmd("ip", "-4", "route", "get", str(ip)) for ip in pod_ips]
    outputs = driver.runner.probe(node, *commands, cmd("ip", "-o", "-4", "addr", "show"))
    sources: dict[str, str | None] = {}
    for ip, out in zip(pod_ips, outputs, strict=False):
        sources[str(ip)] = parse_route_get_text(out.stdout) if out.ok else None
    addrs = parse_ip_oneline_addresses(outputs[-1].stdout) if outputs[-1].ok else {}
    devices = (lab.pod_network.bridge, *OVERLAY_DEVICES)
    allowed = [str(lab.node(node).ip)]
    allowed += [str(a) for dev in devices for a in addrs.get(dev, ())]
    reproduce = driver.runner.channels[node].reproduce(
        f"ip -4 route get {pod_ips[0]}" if pod_ips else "ip -4 route"
    )
    return NodeRoutes(node, sources, tuple(allowed), reproduce)


def node_matrix(
    driver: Driver[Any],
    lab: Lab,
    pods: Sequence[Pod[Any]],
    faults: rm.Faults = rm.NO_FAULTS,
    proto: Proto = "tcp",
) -> rm.Matrix:
    """Every node to every pod. The receiver must report exactly the source address the
    sending node's kernel picks for that route, and that address must be one the node may send
    pod traffic from: never loopback, its management address or another node's."""
    ips = [p.ip for p in pods]
    routes = driver.runner.on_each_node(
        {n.name: None for n in lab.nodes}, lambda n, _: node_routes(driver, lab, n, ips)
    )
    endpoints = [rm.Endpoint(n.name, n.name, str(n.ip), routes[n.name].allowed) for n in lab.nodes]
    route_sources = {
        (n, p.name): src
        for n, r in routes.items()
        for p in pods
        if (src := r.route_sources.get(str(p.ip)))
    }
    matrix = rm.node_matrix(
        endpoints,
        [p.endpoint for p in pods],
        faults,
        title=f"node -> pod{_over(proto)} [{driver.name}]",
        route_sources=route_sources,
    )
    nodes = {n.name: n.name for n in lab.nodes}
    return observe(driver, matrix, nodes, {p.name: p for p in pods}, proto)


# --- one pod -----------------------------------------------------------------------------------


def side_by_side(pods: Sequence[P], check: Callable[[P], list[str]]) -> list[str]:
    """`check` on every pod at once (pods on different nodes: the nodes work together, not in
    turn); each problem names its pod, its IP and its node."""
    with ThreadPoolExecutor(max_workers=max(1, len(pods))) as pool:
        found = list(pool.map(check, pods))
    return [
        f"{pod.name} ({pod.ip}) on {pod.node}: {p}"
        for pod, problems in zip(pods, found, strict=True)
        for p in problems
    ]


def each_node(nodes: Sequence[str], work: Callable[[str], T]) -> list[T]:
    """`work(node)` for every node at once (the nodes work side by side, not in turn), in the
    order of `nodes`."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return list(pool.map(work, nodes))


class EveryNodeOnFirstUse(dict[str, T]):
    """node -> what `make(node)` gave, made for every node at once (side by side) on the first
    lookup. A node whose making raised raises that error again at each of its lookups; the
    other nodes keep what they made."""

    def __init__(self, make: Callable[[str], T], nodes: Sequence[str]) -> None:
        super().__init__()
        self.make = make
        self.nodes = tuple(nodes)
        self.failed: dict[str, Exception] = {}
        self._made = False

    def _make(self, node: str) -> T | Exception:
        try:
            return self.make(node)
        except Exception as exc:  # noqa: BLE001 (raised again at that node's lookups)
            return exc

    def __missing__(self, node: str) -> T:
        if node not in self.nodes:
            raise KeyError(node)
        if not self._made:
            self._made = True
            made = each_node(self.nodes, self._make)
            for name, result in zip(self.nodes, made, strict=True):
                if isinstance(result, Exception):
                    self.failed[name] = result
                else:
                    self[name] = result
        if node in self.failed:
            raise self.failed[node]
        return self[node]


@dataclass(frozen=True)
class PodAddresses:
    pod: str
    interfaces: dict[str, tuple[IPv4Address, ...]]  # non-loopback interfaces -> IPv4
    reproduce: str
    error: str = ""

    @property
    def all(self) -> tuple[IPv4Address, ...]:
        return tuple(a for addrs in self.interfaces.values() for a in addrs)


def pod_addresses(driver: Driver[Any], pod: Pod[Any], container: str) -> PodAddresses:
    """The pod's own view, from inside the container (its image's `ip`, iproute2 or busybox)."""
    res = driver.exec(pod, container, ("ip", "-o", "-4", "addr", "show"))
    parsed = parse_ip_oneline_addresses(res.stdout) if res.ok else {}
    found = {k: v for k, v in parsed.items() if k != "lo" and v}
    error = "" if res.ok else f"exit {res.exit_code}: {(res.stderr or res.stdout).strip()[:200]}"
    return PodAddresses(pod.name, found, res.reproduce, error)


def pod_identity_problems(driver: Driver[Any], pod: Pod[Any], peer: Pod[Any]) -> list[str]:
    """One IP per pod; the pod's own view == the runtime's report == what a peer sees."""
    own = pod_addresses(driver, pod, driver.client_of(pod))
    (seen,) = driver.observe([Probe("identity", pod, peer)]).values()
    problems = []
    if own.error:
        problems.append(
            f"cannot read {pod.name}'s addresses ({own.error})\n    reproduce: {own.reproduce}"
        )
    elif len(own.all) != 1:
        problems.append(
            f"{pod.name} has {len(own.all)} IPv4 addresses on its interfaces "
            f"({own.interfaces}); one expected\n    reproduce: {own.reproduce}"
        )
    elif own.all[0] != pod.ip:
        problems.append(
            f"{pod.name} sees itself as {own.all[0]} but the runtime reports "
            f"{pod.ip}\n    reproduce: {own.reproduce}"
        )
    if seen.seen_source != str(pod.ip):
        problems.append(
            f"peer {peer.name} saw {pod.name} as {seen.seen_source or '(no answer)'}, not "
            f"{pod.ip}{'' if seen.reachable else f' ({seen.detail.strip()[:200]})'}\n"
            f"    reproduce: {seen.reproduce}"
        )
    return problems


@dataclass(frozen=True)
class NetnsView:
    """A container's network namespace as `cat` shows it from inside (its interfaces, its
    IPv4 addresses), or why it could not be read."""

    interfaces: tuple[str, ...]
    addresses: tuple[IPv4Address, ...]
    reproduce: str
    error: str = ""


def netns_view(driver: Driver[Any], pod: Pod[Any], container: str) -> NetnsView:
    """Read with `cat` alone, which every image has (the guide's nginx:1.19, Debian buster-slim,
    has no `ip`: `ip` there exits 126)."""
    res = driver.exec(pod, container, ("cat", *PROC_NET_FILES))
    try:
        view = parse_proc_net(res.stdout) if res.ok else None
    except ValueError as exc:
        return NetnsView((), (), res.reproduce, str(exc))
    if view is None:
        error = f"exit {res.exit_code}: {(res.stderr or res.stdout).strip()[:200]}"
        return NetnsView((), (), res.reproduce, error)
    return NetnsView(view.interfaces, view.all, res.reproduce)


def shared_netns_problems(driver: Driver[Any], pod: Pod[Any], guide: GuidePod) -> list[str]:
    """Containers of one pod: one network namespace, one address, reachable on localhost."""
    problems = []
    inodes = {}
    for c in pod.containers:
        res = driver.exec(pod, c.name, ("readlink", "/proc/self/ns/net"))
        inodes[c.name] = res.stdout.strip() if res.ok else f"(exit {res.exit_code})"
    if len(set(inodes.values())) != 1 or not all(v.startswith("net:[") for v in inodes.values()):
        problems.append(f"containers are in different network namespaces: {inodes}")
    views = {c.name: netns_view(driver, pod, c.name) for c in pod.containers}
    problems += [
        f"cannot read {name}'s network namespace ({v.error})\n    reproduce: {v.reproduce}"
        for name, v in views.items()
        if v.error
    ]
    addresses = {name: v.addresses for name, v in views.items()}
    if set(addresses.values()) != {(pod.ip,)}:
        problems.append(f"containers see different addresses: {addresses}; pod IP {pod.ip}")
    interfaces = {name: v.interfaces for name, v in views.items()}
    if len(set(interfaces.values())) != 1:
        problems.append(f"containers see different interfaces: {interfaces}")
    web = driver.exec(pod, guide.client, local_fetch_argv(guide.port))
    if guide.banner not in web.stdout:
        problems.append(
            f"{guide.client} did not reach {guide.server} on localhost:{guide.port}: "
            f"{(web.stdout + web.stderr).strip()[:300] or f'exit {web.exit_code}'}\n"
            f"    reproduce: {web.reproduce}"
        )
    return problems


def local_fetch_argv(port: int) -> tuple[str, ...]:
    """Read what a server on localhost:port answers (busybox or socat, whichever is there)."""
    script = (
        f"if command -v socat >/dev/null; then timeout 5 socat -u TCP:127.0.0.1:{port} -; "
        f"else wget -qO- -T 5 http://127.0.0.1:{port}/; fi"
    )
    return ("sh", "-c", script)


# --- subnets -----------------------------------------------------------------------------------


def subnet_problems(
    lab: Lab, pods: Sequence[Pod[Any]], observed: Mapping[str, tuple[IPv4Network, ...]]
) -> list[str]:
    """Per-node pod subnets as the nodes report them (`observed`): each node has one, inside
    the cluster CIDR, no two overlap, every pod's IP is in its own node's; and where the lab
    plans the allocation itself (host-routes, vxlan), each is the one the lab file implies."""
    cidr = lab.pod_network.cidr
    problems = netmath.allocation_problems(
        cidr,
        dict(sorted(observed.items())),
        missing=lambda node: f"{node} hands out no pod subnet (no address on its pod bridge)",
        outside=lambda node, net: f"{node}: subnet {net} is outside the cluster pod CIDR {cidr}",
        overlap=lambda a, x, b, y: f"{a}'s subnet {x} overlaps {b}'s subnet {y}",
    )
    planned = backend_of(lab).planned_subnets(lab)  # None: the cluster allots them
    if planned is not None:
        for node, nets in sorted(observed.items()):
            if nets and nets != (planned[node],):
                problems.append(
                    f"{node} hands out {', '.join(map(str, nets))}; the lab file allots it "
                    f"{planned[node]}"
                )
    owners = [(node, net) for node, nets in observed.items() for net in nets]
    for pod in pods:
        owner = netmath.containing(pod.ip, owners)
        if owner != pod.node:
            problems.append(
                f"{pod.name} on {pod.node} has {pod.ip}, which is in "
                f"{owner or 'no node'}'s subnet; {pod.node} hands out "
                f"{', '.join(map(str, observed.get(pod.node, ()))) or 'nothing'}"
            )
    return problems


# --- MTU ---------------------------------------------------------------------------------------

TOO_LONG = re.compile(r"message too long, mtu\s*=\s*(\d+)", re.IGNORECASE)
FRAG_NEEDED = re.compile(r"frag(?:mentation)? needed and DF set \(mtu = (\d+)\)", re.IGNORECASE)


def df_refusal_mtu(ping_output: str) -> int | None:
    """The MTU a refused don't-fragment ping names (iputils: the kernel's EMSGSIZE
    "message too long, mtu=N", or an ICMP "Frag needed and DF set (mtu = N)"); None when
    the output carries no such evidence (a timeout, a lost reply, anything else)."""
    for pattern in (TOO_LONG, FRAG_NEEDED):
        m = pattern.search(ping_output)
        if m:
            return int(m.group(1))
    return None


def interface_mtu(
    driver: Driver[Any], pod: Pod[Any], ifname: str = "eth0"
) -> tuple[int | None, str]:
    res = driver.netns_exec(pod, ("ip", "-o", "link", "show", ifname))
    return (parse_link_mtu(res.stdout) if res.ok else None), res.reproduce


def mtu_problems(driver: Driver[Any], lab: Lab, source: Pod[Any], target: Pod[Any]) -> list[str]:
    """The pod's interface has the lab's pod MTU; a don't-fragment packet of exactly that size
    crosses to a pod on another node; one byte more is refused with the kernel's or the path's
    evidence naming that MTU (not merely lost)."""
    want = backend_of(lab).pod_mtu(lab)
    mtu, reproduce = interface_mtu(driver, source)
    problems = []
    if mtu is None:
        return [f"cannot read {source.name}'s eth0 MTU\n    reproduce: {reproduce}"]
    if mtu != want:
        problems.append(
            f"{source.name}'s eth0 MTU is {mtu}; the lab's pod network MTU is {want}\n"
            f"    reproduce: {reproduce}"
        )
    payload = mtu - 28  # IPv4 + ICMP headers
    ping = ("ping", "-n", "-M", "do", "-W", "3", "-i", "0.2")
    fits = driver.netns_exec(source, (*ping, "-c", "2", "-s", str(payload), str(target.ip)))
    too_big = driver.netns_exec(source, (*ping, "-c", "1", "-s", str(payload + 1), str(target.ip)))
    if not fits.ok:
        problems.append(
            f"{payload}-byte DF ping (packet = MTU {mtu}) {source.name} -> {target.name} "
            f"failed: {(fits.stdout + fits.stderr).strip()[-300:]}\n    reproduce: {fits.reproduce}"
        )
    refused_at = df_refusal_mtu(too_big.stdout + too_big.stderr)
    if too_big.ok:
        problems.append(
            f"a DF packet one byte over MTU {mtu} went through: DF is not honoured, so the "
            f"first ping proves nothing\n    reproduce: {too_big.reproduce}"
        )
    elif refused_at is None:
        problems.append(
            f"a DF packet one byte over MTU {mtu} failed without evidence of a refusal "
            f"(no EMSGSIZE, no 'Frag needed'): {(too_big.stdout + too_big.stderr).strip()[-200:]}"
            f"\n    reproduce: {too_big.reproduce}"
        )
    elif refused_at != mtu:
        problems.append(
            f"the over-size DF packet was refused at MTU {refused_at}, not at the pod's {mtu}: "
            f"the path is narrower than the pod's interface\n    reproduce: {too_big.reproduce}"
        )
    return problems
