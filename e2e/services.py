"""The Services of a lab without Kubernetes (a `services` section in its lab file): the suite's
own Services over its fleet pods, carried by kube-proxy-shaped rules (iptables mode of
v1.18, lab/net/kubeproxy.py; no kube-proxy runs) on every node, and a cluster DNS
(e2e/dnsd.py in a pod of its own per driver, behind the kube-dns ClusterIP, as CoreDNS is).
A lab with Kubernetes gets the same Services as real Service objects over its k8s pods,
carried by its own kube-proxy and CoreDNS (e2e/cluster_services.py).

Per driver D, in namespace `e2e-D`, allotted from the lab definition alone (never from live
state), ClusterIPs in order from the service CIDR's 11th address (the 10th is kube-dns's, as
kubeadm puts it), NodePorts in order from the range's start:
- `echo`: every fleet pod of D, TCP and UDP port 80 -> the echo server's 8080, NodePorts;
- `ep-NODE-pI`: that one fleet pod, TCP and UDP, NodePorts: a cell through it has one
  intended receiver, so "it is the intended receiver that answers" holds for Services too;
- `churn`: the endpoint-change test's own (ClusterIP only), its endpoints the test's to change.

The rules are one node-wide state (kube-proxy's syncProxyRules: every Service in one restore):
the maker of each driver's fleet adds its Services to the run's state file and programs every
node with the whole set, under a lock. The controller removes them at the end of the run and
says what any table still holds.

Scenarios here observe and return (matrices, problem lists); the tests assert
(e2e/test_services.py)."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from e2e import dnsd
from e2e.drivers import service_plane
from e2e.drivers.base import (
    Container,
    Driver,
    NodeRunner,
    Pod,
    Probe,
    pod_dns,
    service_namespace,
)
from lab.common.commands import Command, cmd
from lab.model.config import Lab, Services
from lab.net import kubeproxy as kp
from lab.net import reachability as rm
from lab.runtime.images import ECHO_PORT

SERVICE_PORT = 80
DNS_PORT = 53
FIRST_OFFSET = 11  # the service CIDR's 10th address is the cluster DNS's (kubeadm)
DNS_NAMESPACE, DNS_NAME = "kube-system", "kube-dns"
ECHO, CHURN = "echo", "churn"
PROTOCOLS: tuple[kp.Protocol, ...] = ("tcp", "udp")
STATE_FILE = "services.json"
BALANCE_ROUNDS = 10  # probes per endpoint in the balancing check: P(an endpoint missed) < n e^-10

Slot = tuple[str, int]


def namespace(driver: str) -> str:
    return service_namespace(driver)


def ep_name(slot: Slot) -> str:
    return f"ep-{slot[0]}-p{slot[1]}"


# --- the layout: names, ClusterIPs and NodePorts from the lab definition ---------------------


@dataclass(frozen=True)
class Layout:
    """Every Service of a run: (namespace, name) -> ClusterIP, (namespace, name, port name) ->
    NodePort, and the cluster domain its DNS names live in."""

    domain: str
    addresses: Mapping[tuple[str, str], IPv4Address]
    node_ports: Mapping[tuple[str, str, str], int]

    def fqdn(self, ns: str, name: str) -> str:
        return f"{name}.{ns}.svc.{self.domain}"

    def records(self) -> dict[str, list[str]]:
        """The cluster DNS zone: every Service's name -> its ClusterIP (a ClusterIP Service's
        A record, as CoreDNS's kubernetes plugin answers it)."""
        return {self.fqdn(ns, n): [str(ip)] for (ns, n), ip in sorted(self.addresses.items())}

    def zone(self) -> dict[str, Any]:
        return {"records": self.records(), "domain": self.domain, "port": DNS_PORT}


def allot(services: Services, drivers: Sequence[str], slots: Sequence[Slot]) -> Layout:
    """The run's Services, in a fixed order: kube-dns at the CIDR's 10th address, then per
    driver `echo`, `churn` and one `ep-*` per fleet slot. ValueError (with the fix) when the
    CIDR or the NodePort range is too small for the lab."""
    names: list[tuple[str, str]] = []
    for drv in drivers:
        ns = namespace(drv)
        names += [(ns, ECHO), (ns, CHURN), *((ns, ep_name(s)) for s in sorted(slots))]
    first = services.cidr.network_address + FIRST_OFFSET
    last = first + len(names) - 1 if names else first
    if last not in services.cidr or last == services.cidr.broadcast_address:
        raise ValueError(
            f"services.cidr {services.cidr} holds too few addresses for the suite's "
            f"{len(names)} Services (from its 11th address on): use a larger one, e.g. "
            "10.96.0.0/12"
        )
    addresses = {(DNS_NAMESPACE, DNS_NAME): services.dns_ip}
    addresses.update({name: first + i for i, name in enumerate(names)})
    with_ports = [(ns, n) for ns, n in names if n != CHURN]
    ports = services.node_ports
    wanted = len(with_ports) * len(PROTOCOLS)
    if wanted > len(ports):
        raise ValueError(
            f"services.node_port_range {services.node_port_range} has {len(ports)} ports; the "
            f"suite's Services need {wanted}: use a wider range, e.g. 30000-32767"
        )
    node_ports: dict[tuple[str, str, str], int] = {
        (ns, n, proto): ports[i * len(PROTOCOLS) + k]
        for i, (ns, n) in enumerate(with_ports)
        for k, proto in enumerate(PROTOCOLS)
    }
    return Layout(services.cluster_domain, addresses, node_ports)


# --- the Services with their endpoints ---------------------------------------------------------


def _service(layout: Layout, ns: str, name: str, endpoints: Sequence[IPv4Address]) -> kp.Service:
    ports = tuple(
        kp.ServicePort(
            proto, proto, SERVICE_PORT, ECHO_PORT, layout.node_ports.get((ns, name, proto), 0)
        )
        for proto in PROTOCOLS
    )
    return kp.Service(ns, name, layout.addresses[(ns, name)], ports, tuple(endpoints))


def service_in(layout: Layout, ns: str, name: str, endpoints: Sequence[IPv4Address]) -> kp.Service:
    """The layout's Service `ns/name` with `endpoints`."""
    return _service(layout, ns, name, endpoints)


@dataclass(frozen=True)
class DriverServices:
    """One driver's Services over its fleet (and its DNS pod's address)."""

    driver: str
    echo: kp.Service
    churn: kp.Service
    per_pod: Mapping[str, kp.Service]  # fleet pod name -> its `ep-*` Service
    dns_pod: IPv4Address | None

    def all(self) -> tuple[kp.Service, ...]:
        return (self.echo, self.churn, *self.per_pod.values())


def driver_services(
    layout: Layout,
    driver: str,
    fleet: Mapping[Slot, Pod[Any]],
    dns_pod: IPv4Address | None,
    churn: Sequence[IPv4Address] | None = None,
) -> DriverServices:
    """`churn`: the churn Service's endpoints (default: every fleet pod)."""
    ns = namespace(driver)
    ips = [fleet[s].ip for s in sorted(fleet)]
    return DriverServices(
        driver,
        _service(layout, ns, ECHO, ips),
        _service(layout, ns, CHURN, ips if churn is None else churn),
        {fleet[s].name: _service(layout, ns, ep_name(s), [fleet[s].ip]) for s in sorted(fleet)},
        dns_pod,
    )


def dns_service(layout: Layout, dns_pods: Sequence[IPv4Address]) -> kp.Service:
    port = kp.ServicePort("dns", "udp", DNS_PORT, DNS_PORT)
    return kp.Service(
        DNS_NAMESPACE,
        DNS_NAME,
        layout.addresses[(DNS_NAMESPACE, DNS_NAME)],
        (port,),
        tuple(dns_pods),
    )


def node_services(per_driver: Sequence[DriverServices], layout: Layout) -> list[kp.Service]:
    """What every node carries: each driver's Services and kube-dns over the DNS pods."""
    dns = [d.dns_pod for d in per_driver if d.dns_pod is not None]
    return [dns_service(layout, dns), *(s for d in per_driver for s in d.all())]


# --- what kubelet gives a pod: its resolv.conf ---------------------------------------------


RESOLVE = "import socket; print(socket.gethostbyname('echo'))"


def resolv_conf_problems(
    driver: Driver[Any], lab: Lab, svc: DriverServices, pod: Pod[Any]
) -> list[str]:
    """The pod's /etc/resolv.conf is kubelet's, and the libc resolver it sets up finds the
    short name `echo` (the search path, then the cluster DNS) at the echo Service's ClusterIP."""
    assert lab.services is not None
    want = pod_dns(lab.services, svc.driver).resolv_conf()
    script = f"cat /etc/resolv.conf; echo ---; python3 -c {shlex.quote(RESOLVE)}"
    res = driver.exec(pod, driver.client_of(pod), ("sh", "-c", script))
    conf, _, resolved = res.stdout.rpartition("---\n")  # the last: resolv.conf may hold one
    got = [line.strip() for line in conf.splitlines() if line.strip() and line[0] != "#"]
    problems = []
    if sorted(got) != sorted(want):  # containerd writes `search` first, kubelet `nameserver`
        problems.append(
            f"/etc/resolv.conf is {got}, kubelet's is {want}\n    reproduce: {res.reproduce}"
        )
    if resolved.strip() != str(svc.echo.cluster_ip):
        why = resolved.strip() or (res.stderr.strip()[-200:] or f"exit {res.exit_code}")
        problems.append(
            f"`echo` resolved to {why!r}, expected {svc.echo.cluster_ip} "
            f"(echo.{namespace(svc.driver)}.svc.{lab.services.cluster_domain})\n"
            f"    reproduce: {res.reproduce}"
        )
    return problems


# --- the DNS pod ---------------------------------------------------------------------------


def dns_pod_name(run_id: str, driver: str) -> str:
    return f"nl-{run_id}-{driver}-dns"


def dns_pod_node(node_names: Iterable[str]) -> str:
    """The node of the cluster DNS's pod: the last one. The run's one-node checks (the CNI
    contract's malformed configs, a Service's churn, every DNS readiness probe) start from the
    first node, whose 1-vCPU guest was the run's busiest with the DNS pod on it as well
    (docs/benchmarks.md, "The suite's time")."""
    return sorted(node_names)[-1]


def dns_container(driver: Driver[Any], layout: Layout) -> Container:
    """e2e/dnsd.py with the run's zone, in the image the driver's echo server runs in (the
    client image: it has python3), or the node's python3 for a driver without images."""
    echo = driver.fleet_containers(0)[0]
    source = Path(dnsd.__file__).read_text()
    return replace(
        echo, name="dns", argv=("python3", "-c", source, json.dumps(layout.zone(), sort_keys=True))
    )


# --- the run's state and the node rules ---------------------------------------------------------


def state_file(artifacts: Path) -> Path:
    return artifacts / STATE_FILE


@contextmanager
def locked_state(artifacts: Path) -> Iterator[dict[str, Any]]:  # pragma: no mutate block (I/O)
    """The run's Services state (driver -> its fleet's and DNS pod's addresses, the churn
    endpoints), read and written back under a file lock shared by the run's processes."""
    import fcntl

    path = state_file(artifacts)
    with (artifacts / "services.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
            yield state
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def state_entry(services: DriverServices) -> dict[str, Any]:
    return {
        "echo": [str(ip) for ip in services.echo.endpoints],
        "churn": [str(ip) for ip in services.churn.endpoints],
        "per_pod": {n: str(s.endpoints[0]) for n, s in services.per_pod.items()},
        "dns": str(services.dns_pod) if services.dns_pod else None,
    }


def services_from_state(layout: Layout, state: Mapping[str, Any]) -> list[DriverServices]:
    """The state file's drivers as Services again (pure; the order of the driver names)."""
    out = []
    for drv in sorted(state):
        entry = state[drv]
        ns = namespace(drv)
        per_pod = {}
        for pod, ip in sorted(entry["per_pod"].items()):
            slot_part = pod.split(f"-{drv}-", 1)[1]  # nl-RUN-DRIVER-NODE-pI
            node, _, index = slot_part.rpartition("-p")
            per_pod[pod] = _service(layout, ns, ep_name((node, int(index))), [IPv4Address(ip)])
        out.append(
            DriverServices(
                drv,
                _service(layout, ns, ECHO, [IPv4Address(a) for a in entry["echo"]]),
                _service(layout, ns, CHURN, [IPv4Address(a) for a in entry["churn"]]),
                per_pod,
                IPv4Address(entry["dns"]) if entry.get("dns") else None,
            )
        )
    return out


def udp_endpoints(services: Sequence[kp.Service]) -> set[tuple[IPv4Address, IPv4Address]]:
    """(ClusterIP, endpoint) of every UDP port: whose conntrack entries go when one leaves."""
    return {
        (s.cluster_ip, ep)
        for s in services
        for p in s.ports
        if p.protocol == "udp"
        for ep in s.endpoints
    }


def _per_jump(line: str) -> str:
    """`line` (with {t}, {c}, {r}: table, built-in chain, rule) for every jump."""
    return "\n".join(
        line.format(t=table, c=chain, r=" ".join(_shell_word(w) for w in rule))
        for table, chain, rule in kp.jump_rules()
    )


def ensure_jumps_script() -> str:
    """kube-proxy's EnsureRule for each jump into its chains: check, else insert first."""
    return _per_jump("iptables -w -t {t} -C {c} {r} 2>/dev/null || iptables -w -t {t} -I {c} {r}")


def delete_jumps_script() -> str:
    """Every copy of each jump deleted."""
    return _per_jump(
        "while iptables -w -t {t} -C {c} {r} 2>/dev/null; do iptables -w -t {t} -D {c} {r}; done"
    )


def _shell_word(word: str) -> str:
    return f"'{word}'" if " " in word or ";" in word else word


def conntrack_flush_script(gone: set[tuple[IPv4Address, IPv4Address]]) -> str:
    """kube-proxy's deleteEndpointConnections for UDP: the entries to a ClusterIP that were
    NATed to an endpoint no longer there (conntrack exits 1 when there is none)."""
    return "\n".join(
        f"conntrack -D -p udp --orig-dst {svc} --dst-nat {ep} >/dev/null 2>&1 || true"
        for svc, ep in sorted(gone)
    )


def program_node(
    runner: NodeRunner,
    lab: Lab,
    node: str,
    services: Sequence[kp.Service],
    gone: set[tuple[IPv4Address, IPv4Address]] = frozenset(),  # type: ignore[assignment]
) -> None:
    """One node's rules made `services` (one atomic restore, stale chains deleted), the jumps
    ensured, the UDP conntrack entries of endpoints that left removed."""
    (saved,) = runner.probe(node, cmd("iptables-save"))
    stale = kp.parse_held_chains(saved.stdout).get("nat", set()) if saved.ok else set()
    text = kp.render_restore(services, lab.pod_network.cidr, stale=stale)
    script = "\n".join(
        ["iptables-restore -w --noflush", ensure_jumps_script(), conntrack_flush_script(gone)]
    )
    runner.must(
        node,
        Command(("sh", "-ec", script), stdin=text),
        "program the kube-proxy-shaped Service rules (iptables-restore --noflush)",
    )


def program(
    runner: NodeRunner,
    lab: Lab,
    services: Sequence[kp.Service],
    gone: set[tuple[IPv4Address, IPv4Address]] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Every node at once."""
    runner.on_each_node(
        {n: None for n in lab.node_names}, lambda n, _: program_node(runner, lab, n, services, gone)
    )


def unprogram_node(runner: NodeRunner, node: str) -> str:
    """Every jump and chain of the kube-proxy-shaped rules gone from the node; what any
    table still holds of them ("" when nothing)."""
    (saved,) = runner.probe(node, cmd("iptables-save"))
    held = kp.parse_held_chains(saved.stdout) if saved.ok else {}
    script = delete_jumps_script()
    if any(held.values()):
        script += "\niptables-restore -w --noflush"
    runner.run(node, Command(("sh", "-ec", script), stdin=kp.render_removal(held)))
    (after,) = runner.probe(node, cmd("iptables-save"))
    left = [line for line in after.stdout.splitlines() if "KUBE-" in line]
    if not after.ok:
        return f"{node}: iptables-save failed after removing the Service rules"
    return f"{node}: {len(left)} line(s) of KUBE- rules left: {left[:3]}" if left else ""


def with_endpoints(service: kp.Service, endpoints: Sequence[IPv4Address]) -> kp.Service:
    return replace(service, endpoints=tuple(endpoints))


def set_churn(
    driver: Driver[Any], layout: Layout, artifacts: Path, endpoints: Sequence[IPv4Address]
) -> None:  # pragma: no mutate block (I/O)
    """The driver's `churn` Service given `endpoints`, every node resynced (the UDP conntrack
    entries to the endpoints that left removed). A driver whose Services are its cluster's
    relabels its pods and waits for the cluster instead (e2e/cluster_services.py)."""
    if service_plane(driver.name, driver.lab) == "cluster":
        from e2e import cluster_services

        cluster_services.set_churn(driver, layout, endpoints)
        return
    with locked_state(artifacts) as state:
        before = node_services(services_from_state(layout, state), layout)
        state[driver.name]["churn"] = [str(ip) for ip in endpoints]
        after = node_services(services_from_state(layout, state), layout)
        gone = udp_endpoints(before) - udp_endpoints(after)
        program(driver.runner, driver.lab, after, gone)


# --- scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routes:
    """node -> pod IP -> the source address the node's kernel picks for it (`ip route get`)."""

    sources: Mapping[str, Mapping[str, str | None]]

    def source(self, node: str, ip: IPv4Address) -> str | None:
        return self.sources.get(node, {}).get(str(ip))


def _endpoint(name: str, node: str, ip: str) -> rm.Endpoint:
    return rm.Endpoint(name, node, ip)


@dataclass(frozen=True)
class Cells:
    """A matrix and the probes that fill it (one per cell, ids `source->target`)."""

    matrix: rm.Matrix
    probes: list[Probe] = field(default_factory=list)


def _expect(responder: Pod[Any], source: str | None, why: str) -> rm.Expect:
    allowed = frozenset({(responder.name, source)}) if source else frozenset()
    if not allowed:  # no route source known: no observation can be right; the cell says why
        allowed = frozenset({(responder.name, "(no route source from the node)")})
    return rm.Expect(True, why=why, responders=frozenset({responder.name}), source_of=allowed)


def clusterip_cells(
    lab: Lab,
    svc: DriverServices,
    pods: Sequence[Pod[Any]],
    routes: Routes,
    proto: kp.Protocol,
) -> Cells:
    """Every fleet pod and every node to every pod's own Service (`ep-*`), by its ClusterIP.
    The intended pod must answer; it must see a pod sender's own IP (no NAT), its own
    bridge address for its own hairpin (kube-proxy masquerades traffic an endpoint sends to
    itself), and for a node sender the address the node's route to the endpoint picks
    (traffic from outside the cluster CIDR is masqueraded)."""
    sources = [p.endpoint for p in pods] + [_endpoint(n.name, n.name, str(n.ip)) for n in lab.nodes]
    targets = [
        _endpoint(f"{svc.per_pod[p.name].name}", p.node, f"{svc.per_pod[p.name].cluster_ip}")
        for p in pods
    ]
    matrix = rm.Matrix(
        f"pod/node -> ClusterIP {proto.upper()} [{svc.driver}]", tuple(sources), tuple(targets)
    )
    out = Cells(matrix)
    by_name = {p.name: p for p in pods}
    for src in sources:
        for pod, tgt in zip(pods, targets, strict=True):
            service = svc.per_pod[pod.name]
            if src.name in by_name:  # a pod
                hairpin = src.name == pod.name
                seen = routes.source(pod.node, pod.ip) if hairpin else src.ip
                why = "hairpin: masqueraded to its bridge address" if hairpin else "no NAT"
                source: Pod[Any] | str = by_name[src.name]
            else:
                seen, why, source = routes.source(src.name, pod.ip), "masqueraded", src.name
            matrix.expected[(src.name, tgt.name)] = _expect(pod, seen, why)
            out.probes.append(
                Probe(
                    f"{src.name}->{tgt.name}/{proto}",
                    source,
                    pod,
                    address=str(service.cluster_ip),
                    port=SERVICE_PORT,
                    proto=proto,
                )
            )
    return out


def nodeport_cells(
    lab: Lab,
    svc: DriverServices,
    pods: Sequence[Pod[Any]],
    routes: Routes,
    proto: kp.Protocol,
) -> Cells:
    """Every fleet pod and every node to every node's NodePort of the first pod of each node
    (so each NodePort is tried with a local and a remote endpoint, from its own node and from
    the others, from pods and from nodes). The intended pod answers and sees the address the
    NodePort's node routes to it from (kube-proxy masquerades NodePort traffic)."""
    firsts: dict[str, Pod[Any]] = {}
    for p in sorted(pods, key=lambda p: p.name):
        firsts.setdefault(p.node, p)
    ends = sorted(firsts.values(), key=lambda p: p.node)
    sources = [p.endpoint for p in pods] + [_endpoint(n.name, n.name, str(n.ip)) for n in lab.nodes]
    targets = []
    for node in lab.nodes:
        for pod in ends:
            port = svc.per_pod[pod.name].port(proto).node_port
            name = f"{node.name}:{port}({svc.per_pod[pod.name].name})"
            targets.append((node, pod, port, _endpoint(name, node.name, f"{node.ip}:{port}")))
    matrix = rm.Matrix(
        f"pod/node -> NodePort {proto.upper()} [{svc.driver}]",
        tuple(sources),
        tuple(t[3] for t in targets),
    )
    out = Cells(matrix)
    by_name = {p.name: p for p in pods}
    for src in sources:
        source: Pod[Any] | str = by_name.get(src.name) or src.name
        for node, pod, port, tgt in targets:
            seen = routes.source(node.name, pod.ip)
            matrix.expected[(src.name, tgt.name)] = _expect(pod, seen, "masqueraded by its node")
            out.probes.append(
                Probe(
                    f"{src.name}->{tgt.name}/{proto}",
                    source,
                    pod,
                    address=str(node.ip),
                    port=port,
                    proto=proto,
                )
            )
    return out


def observe_cells(driver: Driver[Any], cells: Cells) -> rm.Matrix:
    """Fill the matrix in one batched call of the driver (one agent call per source node)."""
    seen = driver.observe(cells.probes)
    keys = list(cells.matrix.expected)
    for probe, key in zip(cells.probes, keys, strict=True):
        cells.matrix.observed[key] = seen[probe.id]
    return cells.matrix


def route_sources(driver: Driver[Any], lab: Lab, pods: Sequence[Pod[Any]]) -> Routes:
    from e2e.scenarios import node_routes

    ips = [p.ip for p in pods]
    found = driver.runner.on_each_node(
        {n.name: None for n in lab.nodes}, lambda n, _: node_routes(driver, lab, n, ips)
    )
    return Routes({n: dict(r.route_sources) for n, r in found.items()})


def answers(
    driver: Driver[Any], service: kp.Service, pods: Sequence[Pod[Any]], cells: Sequence[Probe]
) -> tuple[dict[str, int], list[str]]:
    """The Service's probes (`service_cells`; several from one UDP source port, one flow, run
    one after another): who answered how often, and every probe not answered by one of the
    Service's endpoints."""
    one_flow = len(cells) > 1 and any(c.sport for c in cells)
    seen = _one_by_one(driver, cells) if one_flow else driver.observe(cells)
    return judge_answers(service, pods, cells, seen)


def service_cells(
    service: kp.Service,
    source: Pod[Any],
    pods: Sequence[Pod[Any]],
    proto: kp.Protocol,
    n: int,
    sport: int = 0,
    label: str = "",
) -> list[Probe]:
    """`n` probes from `source` to the Service's ClusterIP and port (`sport`: all from that
    UDP source port, one flow) (pure)."""
    return [
        Probe(
            f"{source.name}->{service.name}{label}#{i}/{proto}",
            source,
            pods[0],
            address=str(service.cluster_ip),
            port=SERVICE_PORT,
            proto=proto,
            sport=sport,
        )
        for i in range(n)
    ]


def judge_answers(
    service: kp.Service,
    pods: Sequence[Pod[Any]],
    cells: Sequence[Probe],
    seen: Mapping[str, rm.Observation],
) -> tuple[dict[str, int], list[str]]:
    """Who answered `cells` how often, and every cell not answered by one of the Service's
    endpoints (pure)."""
    by_ip = {p.ip: p for p in pods}
    members = {by_ip[ip].name for ip in service.endpoints if ip in by_ip}
    counts: dict[str, int] = {}
    problems = []
    for cell in cells:
        obs = seen[cell.id]
        if not obs.reachable:
            problems.append(
                f"{cell.id}: no answer ({obs.detail.strip()[:120]})\n"
                f"      reproduce: {obs.reproduce}"
            )
            continue
        who = obs.answered_by or "(unnamed)"
        counts[who] = counts.get(who, 0) + 1
        if who not in members:
            problems.append(
                f"{cell.id}: answered by {who}, not by an endpoint of "
                f"{service.namespace}/{service.name} ({', '.join(sorted(members))})\n"
                f"      reproduce: {obs.reproduce}"
            )
    return counts, problems


def _one_by_one(driver: Driver[Any], cells: Sequence[Probe]) -> dict[str, rm.Observation]:
    """Probes from one source port cannot run side by side (one socket can bind it)."""
    seen: dict[str, rm.Observation] = {}
    for cell in cells:
        seen.update(driver.observe([cell]))
    return seen


def balance_problems(
    driver: Driver[Any],
    service: kp.Service,
    source: Pod[Any],
    pods: Sequence[Pod[Any]],
    proto: kp.Protocol,
) -> tuple[dict[str, int], list[str]]:
    """BALANCE_ROUNDS probes per endpoint from `source` to the Service's ClusterIP: every
    answer from one of its endpoints, and every endpoint answering at least once (with
    kube-proxy's odds, one is missed with a chance below n * e^-10)."""
    n = len(service.endpoints) * BALANCE_ROUNDS
    counts, problems = answers(
        driver, service, pods, service_cells(service, source, pods, proto, n)
    )
    by_ip = {p.ip: p.name for p in pods}
    missed = sorted({by_ip[ip] for ip in service.endpoints if ip in by_ip} - set(counts))
    if missed:
        problems.append(
            f"{len(missed)} endpoint(s) never answered in {n} {proto.upper()} probes of "
            f"{service.cluster_ip}:{SERVICE_PORT}: {', '.join(missed)} (answers: {counts})"
        )
    return counts, problems


CHURN_PROBES = 4  # per step and protocol where one endpoint is left: every answer must be its
CHURN_SPORT = 61234  # above Linux's ephemeral range: the one UDP flow the churn test follows


@dataclass(frozen=True)
class ChurnStep:
    label: str
    endpoints: tuple[Pod[Any], ...]
    probes: int


def churn_steps(pods: Sequence[Pod[Any]], source: Pod[Any]) -> list[ChurnStep]:
    """The churn Service's endpoints step by step (pure): only the pod on another node than
    the sender (P); every pod but P (P left); P alone again (P came back). With one endpoint
    each answer must be its; with P gone no answer may be P's."""
    leaving = next(p for p in pods if p.node != source.node)
    rest = tuple(p for p in pods if p is not leaving)
    return [
        ChurnStep(f"only {leaving.name}", (leaving,), CHURN_PROBES),
        ChurnStep(f"{leaving.name} left", rest, CHURN_PROBES * len(rest)),
        ChurnStep(f"{leaving.name} back alone", (leaving,), CHURN_PROBES),
    ]


def churn_problems(
    driver: Driver[Any],
    layout: Layout,
    artifacts: Path,
    svc: DriverServices,
    pods: Sequence[Pod[Any]],
) -> list[str]:  # pragma: no mutate block (orchestration)
    """Endpoints that change, as kube-proxy follows them: each step resyncs every node (the
    UDP conntrack entries to endpoints that left removed) and is probed over TCP, over UDP,
    and by one UDP flow kept across the steps (a fixed source port): after an endpoint left,
    that flow must reach one that is still there (a stale conntrack entry would keep it on
    the one that left). The churn Service gets every pod back at the end."""
    source = pods[0]
    problems: list[str] = []
    try:
        for number, step in enumerate(churn_steps(pods, source), 1):
            ips = [p.ip for p in step.endpoints]
            set_churn(driver, layout, artifacts, ips)
            service = with_endpoints(svc.churn, ips)
            said = f"step {number} ({step.label})"
            groups = [  # one round trip per step: each protocol's probes and the kept flow's
                *(
                    (
                        said,
                        service_cells(service, source, pods, proto, step.probes, 0, f"@{number}"),
                    )
                    for proto in PROTOCOLS
                ),
                (
                    f"{said}, the kept UDP flow",
                    service_cells(
                        service, source, pods, "udp", 1, CHURN_SPORT, f"@{number}:{CHURN_SPORT}"
                    ),
                ),
            ]
            seen = driver.observe([c for _, cells in groups for c in cells])
            for what, cells in groups:
                _, found = judge_answers(service, pods, cells, seen)
                problems += [f"{what}: {p}" for p in found]
    finally:
        set_churn(driver, layout, artifacts, [p.ip for p in pods])
    return problems


def dns_problems(
    driver: Driver[Any], lab: Lab, layout: Layout, svc: DriverServices, pods: Sequence[Pod[Any]]
) -> list[str]:
    """Every pod and every node asks kube-dns (its ClusterIP, UDP 53) for the A record of
    the driver's `echo` Service and of a name the zone does not hold: the ClusterIP, and
    NXDOMAIN."""
    ns = namespace(svc.driver)
    name = layout.fqdn(ns, ECHO)
    missing = layout.fqdn(ns, "no-such-service")
    want = {name: f"{name} A {svc.echo.cluster_ip}", missing: f"{missing} RCODE {dnsd.NXDOMAIN}"}
    sources: list[Pod[Any] | str] = [*pods, *sorted(lab.node_names)]
    cells = [
        Probe(
            f"{s if isinstance(s, str) else s.name}->dns:{q}",
            s,
            pods[0],
            address=str(layout.addresses[(DNS_NAMESPACE, DNS_NAME)]),
            port=DNS_PORT,
            proto="dns",
            name=q,
        )
        for s in sources
        for q in want
    ]
    seen = driver.observe(cells)
    problems = []
    if not any(obs.reachable for obs in seen.values()):
        problems.append(
            "no DNS answer from any pod or node: the cluster DNS does not serve (its pod "
            f"{svc.dns_pod or '?'} stopped or gone) or the kube-dns rules are missing "
            f"(KUBE-SVC of {DNS_NAMESPACE}/{DNS_NAME}:dns)"
        )
    for cell in cells:
        obs = seen[cell.id]
        got = obs.answer.strip()
        if got != want[cell.name]:
            what = f"answered {got!r}" if obs.reachable else f"no answer ({obs.detail[:120]})"
            problems.append(
                f"{cell.id}: {what}, expected {want[cell.name]!r}\n      reproduce: {obs.reproduce}"
            )
    return problems


# --- failure hints --------------------------------------------------------------------------


def hints(matrix: rm.Matrix, pods: Sequence[Pod[Any]]) -> list[str]:
    """What a pattern of wrong cells points at, from the guide's steps and kube-proxy's rules
    (a hint names a likely cause; the cells and their commands are the evidence)."""
    node_of = {p.name: p.node for p in pods}
    bad = matrix.mismatches()
    out = []
    same_node = [
        m
        for m in bad
        if m.source in node_of
        and m.expected.responders
        and (r := next(iter(m.expected.responders))) != m.source
        and node_of.get(r) == node_of[m.source]
    ]
    hairpin = [
        m for m in bad if m.source in node_of and m.expected.responders == frozenset({m.source})
    ]
    cross = [
        m
        for m in bad
        if m.source in node_of
        and m.expected.responders
        and node_of.get(next(iter(m.expected.responders))) != node_of[m.source]
    ]
    if same_node and not cross:
        out.append(
            "only pod -> Service cells whose endpoint shares the source's bridge fail: the "
            "answer bypasses the node's conntrack (the guide's step 3: `modprobe br_netfilter` "
            "and net.bridge.bridge-nf-call-iptables = 1; check `sysctl "
            "net.bridge.bridge-nf-call-iptables` on the nodes)"
        )
    if hairpin and not same_node and not cross:
        out.append(
            "only hairpin cells fail (a pod reaching itself through its Service): the bridge "
            "port must reflect its own traffic (the bridge CNI plugin's hairpinMode: true; "
            "`bridge -d link show` shows `hairpin on`) and kube-proxy's KUBE-SEP rule must "
            "mark it for masquerade"
        )
    # a pod that named itself and is not the cell's ('W'; a NATed or retransmitted cell was
    # answered by the right pod)
    wrong = [
        m
        for m in bad
        if matrix.symbol(m.source, m.target) == "W" and m.observed and m.observed.answered_by
    ]
    if wrong:
        out.append(
            "some cells were answered by another pod than the Service's endpoint: a KUBE-SEP "
            "chain DNATs to the wrong address, or an endpoint's IP belongs to another pod "
            "(`iptables-save -t nat | grep KUBE-SEP` on the source's node)"
        )
    for target in matrix.targets:
        failing = {src for src, tgt in matrix.cells_with("X") if tgt == target.name}
        by_node: dict[str, set[str]] = {}
        for src in matrix.sources:
            by_node.setdefault(node_of.get(src.name, src.name), set()).add(src.name)
        alone = [n for n, members in by_node.items() if failing and members == failing]
        if alone:
            out.append(
                f"cells fail from {alone[0]}'s sources only: {target.name} — its KUBE-SVC/"
                f"KUBE-SEP rules on {alone[0]} are missing or empty (kube-proxy's sync on that "
                f"node: `sudo iptables-save -t nat | grep -B1 -A3 KUBE-SEP` there)"
            )
    targets_all_bad = {
        t.name
        for t in matrix.targets
        if all(matrix.symbol(s.name, t.name) == "X" for s in matrix.sources)
    }
    if targets_all_bad and len(targets_all_bad) < len(matrix.targets):
        out.append(
            f"every cell to {', '.join(sorted(targets_all_bad))} fails while other Services "
            "answer: its KUBE-SVC/KUBE-SEP chain is missing or points nowhere "
            "(`iptables-save -t nat | grep -A3 KUBE-SVC` on a node)"
        )
    return out
