"""The run's Services on a lab with Kubernetes (the guide's cluster): the same Services as on
the CI labs (e2e/services.py's Layout: the same names, ClusterIPs from the service CIDR's 11th
address, NodePorts from the range's start, kube-dns at the 10th), made as real Service
objects over the k8s driver's fleet pods in namespace `e2e-k8s`, carried by the cluster's own
kube-proxy (v1.18, iptables mode) and answered for by its CoreDNS. Nothing here programs a
rule or runs a DNS server: the scenarios and their expectations (e2e/services.py) are the CI
labs', and kube-proxy's real rules must meet them.

- Each fleet pod carries labels (`fleet_labels`) so that a selector picks exactly it
  (`ep-NODE-pI`), all of them (`echo`) or those in the churn set (`churn`); every selector
  names the run, so a pod another run left in the namespace is never an endpoint.
- Each Service is rendered with its `spec.clusterIP` and `nodePort`s (lab/k8s/manifests.py
  `render_placed_service`), after a check that no other Service of the cluster holds one of
  them; then two bounded, named waits: every Endpoints object lists exactly its pods, ready,
  and every node's kube-proxy has programmed them (the KUBE-SVC/KUBE-SEP chains of
  `iptables-save -t nat`, named as kube-proxy hashes them: lab/net/kubeproxy.py).
- The churn test's endpoint changes relabel pods (`set_churn`) and wait the same way.
- At the end of the run the Services and the namespace go (`remove`); an interrupted run's
  namespace goes with every namespace labelled with the run (KubeCluster.remove_run).

Pure functions take and return data (labels, selectors, manifests, problems, parsed
`iptables-save`); the adapters are `prepare_fleet`, `publish`, `set_churn`, `remove` and the
waits, over KubeCluster (kubectl on the control plane) and the node runner."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from e2e import services
from e2e.drivers.base import DriverError, NodeRunner, Pod, PodRequest
from e2e.drivers.k8s import K8sDriver
from e2e.drivers.kube import KubeCluster
from lab import k8s
from lab.common import waits
from lab.common.commands import cmd
from lab.model.config import Lab, Services
from lab.net import kubeproxy as kp

# kube-apiserver's --service-node-port-range and kubeadm's networking.dnsDomain defaults: the
# guide's `kubeadm init` sets neither
API_SERVER_NODE_PORTS = "30000-32767"
KUBEADM_DOMAIN = "cluster.local"
# the addresses of the service CIDR the cluster itself holds: the API server's `kubernetes`
# Service (the 1st: kube-apiserver takes it) and kube-dns (the 10th: kubeadm's choice)
CLUSTER_OWN = {1: "default/kubernetes", 10: "kube-system/kube-dns"}

FLEET_LABEL = "netlab.io/fleet"
SLOT_LABEL = "netlab.io/slot"
CHURN_LABEL = "netlab.io/churn"
IN, OUT = "in", "out"

ENDPOINTS_LISTED = waits.Policy(
    "the run's Services list exactly their fleet pods as ready endpoints",
    timeout_s=120,
    interval_s=1,
)
PROGRAMMED = waits.Policy(
    "kube-proxy on every node programmed the run's Services (KUBE-SVC/KUBE-SEP chains)",
    timeout_s=90,
    interval_s=1,
)


class ServicesNotMade(DriverError):
    """The run's Services could not be made as the layout places them; says why and how."""


# --- what the lab says ------------------------------------------------------------------------


def lab_services(lab: Lab) -> Services | None:
    """The Services section a run allots from: the lab file's (a lab without Kubernetes), or
    for a lab with Kubernetes its cluster's: `kubernetes.service_cidr`, the API server's
    default NodePort range and kubeadm's cluster domain. None when the lab has neither."""
    if lab.services is not None:
        return lab.services
    if lab.kubernetes is None:
        return None
    return Services(lab.kubernetes.service_cidr, API_SERVER_NODE_PORTS, KUBEADM_DOMAIN)


def reserved_problems(layout: services.Layout, lab: Lab) -> list[str]:
    """The run's own ClusterIPs that the cluster holds for itself (the 1st, the 10th but for
    kube-dns's own entry): none, if the allotment keeps to its 11th address on."""
    found = lab_services(lab)
    if found is None:
        return []
    held = {found.cidr.network_address + offset: who for offset, who in CLUSTER_OWN.items()}
    return [
        f"{ns}/{name} at {ip}: the cluster's own {held[ip]} holds that address"
        for (ns, name), ip in sorted(layout.addresses.items())
        if ip in held and f"{ns}/{name}" != held[ip]
    ]


def slot_of(slot: services.Slot) -> str:
    """The slot's label value (and its Service's name without `ep-`): `NODE-pI`."""
    return services.ep_name(slot).removeprefix("ep-")


def fleet_labels(slot: services.Slot) -> dict[str, str]:
    """The labels of a fleet pod: a fleet pod, its slot, and in the churn set."""
    return {FLEET_LABEL: "true", SLOT_LABEL: slot_of(slot), CHURN_LABEL: IN}


def fleet_selector(run_id: str) -> str:
    return f"{k8s.RUN_LABEL}={run_id},{FLEET_LABEL}=true"


def selector_of(run_id: str, name: str) -> dict[str, str]:
    """Which pods a Service of the layout selects: `echo` every fleet pod of the run, `churn`
    those in the churn set, `ep-NODE-pI` the one pod of that slot."""
    run = {k8s.RUN_LABEL: run_id}
    if name == services.ECHO:
        return {**run, FLEET_LABEL: "true"}
    if name == services.CHURN:
        return {**run, FLEET_LABEL: "true", CHURN_LABEL: IN}
    if name.startswith("ep-"):
        return {**run, SLOT_LABEL: name.removeprefix("ep-")}
    raise ValueError(f"service {name!r} is none of the layout's (echo, churn, ep-NODE-pI)")


def port_specs(service: kp.Service) -> tuple[k8s.PortSpec, ...]:
    return tuple(
        k8s.PortSpec(
            p.name, "TCP" if p.protocol == "tcp" else "UDP", p.port, p.target_port, p.node_port
        )
        for p in service.ports
    )


def render_services(svc: services.DriverServices, run_id: str) -> list[dict[str, Any]]:
    """The driver's Services as Kubernetes objects, in the layout's order."""
    return [
        k8s.render_placed_service(
            s.name, s.namespace, run_id, selector_of(run_id, s.name), s.cluster_ip, port_specs(s)
        )
        for s in svc.all()
    ]


def collision_problems(ours: Sequence[kp.Service], existing: Sequence[k8s.Service]) -> list[str]:
    """Another Service of the cluster (any but ours, by namespace and name) holding one of our
    ClusterIPs or NodePorts: the API server would refuse ours."""
    mine = {(s.namespace, s.name) for s in ours}
    ips = {s.cluster_ip: f"{s.namespace}/{s.name}" for s in ours}
    ports = {
        p.node_port: f"{s.namespace}/{s.name}:{p.name}"
        for s in ours
        for p in s.ports
        if p.node_port
    }
    problems = []
    for other in existing:
        if (other.namespace, other.name) in mine:
            continue
        if other.cluster_ip is not None and other.cluster_ip in ips:
            problems.append(
                f"{other.ref} holds ClusterIP {other.cluster_ip}, which the run places "
                f"{ips[other.cluster_ip]} at"
            )
        for port in other.ports:
            if port.node_port in ports:
                problems.append(
                    f"{other.ref} holds NodePort {port.node_port}, which the run gives "
                    f"{ports[port.node_port]}"
                )
    return problems


def placement_problems(ours: Sequence[kp.Service], made: Sequence[k8s.Service]) -> list[str]:
    """Our Services as the API server keeps them: each there, at its ClusterIP, every port
    with its NodePort (or none)."""
    by_ref = {s.ref: s for s in made}
    problems = []
    for want in ours:
        ref = f"{want.namespace}/{want.name}"
        got = by_ref.get(ref)
        if got is None:
            problems.append(f"{ref}: not in the cluster after kubectl apply")
            continue
        if got.cluster_ip != want.cluster_ip:
            problems.append(f"{ref}: ClusterIP {got.cluster_ip}, placed at {want.cluster_ip}")
        have = {(p.protocol.lower(), p.port): p.node_port or 0 for p in got.ports}
        for port in want.ports:
            key = (port.protocol, port.port)
            if key not in have:
                problems.append(f"{ref}: no {port.protocol.upper()} port {port.port}")
            elif have[key] != port.node_port:
                problems.append(
                    f"{ref}: {port.protocol.upper()} port {port.port} has NodePort "
                    f"{have[key] or 'none'}, placed at {port.node_port or 'none'}"
                )
    return problems


def endpoint_problems(ours: Sequence[kp.Service], listed: Sequence[k8s.Endpoints]) -> list[str]:
    """Each of our Services' Endpoints: exactly its pods, every one ready (a Service with an
    endpoint too many or too few is not what the cells expect)."""
    by_ref = {e.ref: e for e in listed}
    problems = []
    for want in ours:
        ref = f"{want.namespace}/{want.name}"
        got = by_ref.get(ref)
        expected = sorted(map(str, want.endpoints))
        if got is None:
            problems.append(f"{ref}: no Endpoints object yet (expected {expected})")
            continue
        ready = sorted(str(a.ip) for a in got.addresses if a.ready)
        unready = sorted(str(a.ip) for a in got.addresses if not a.ready)
        if ready != expected or unready:
            problems.append(
                f"{ref}: ready {ready}{f', not ready {unready}' if unready else ''}; "
                f"expected {expected}"
            )
    return problems


# --- what kube-proxy programmed (iptables-save -t nat) -----------------------------------------


@dataclass(frozen=True)
class NatRules:
    """The parts of a node's nat table the check reads: each KUBE-SVC chain's jumps to
    KUBE-SEP chains, the ClusterIP jumps (address, port, protocol -> KUBE-SVC chain) and the
    NodePort jumps (port, protocol -> KUBE-SVC chain)."""

    endpoints: Mapping[str, frozenset[str]]
    cluster_ips: Mapping[tuple[str, int, str], str]
    node_ports: Mapping[tuple[int, str], str]


def _option(words: Sequence[str], name: str) -> str | None:
    if name in words:
        index = words.index(name)
        if index + 1 < len(words):
            return words[index + 1]
    return None


def parse_nat_rules(saved: str) -> NatRules:
    """`iptables-save -t nat` (any order of a rule's options, as iptables-save prints them or
    as kube-proxy wrote them) -> NatRules."""
    endpoints: dict[str, set[str]] = {}
    cluster_ips: dict[tuple[str, int, str], str] = {}
    node_ports: dict[tuple[int, str], str] = {}
    for line in saved.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "-A":
            continue
        chain, target = words[1], _option(words, "-j") or ""
        if chain.startswith("KUBE-SVC-") and target.startswith("KUBE-SEP-"):
            endpoints.setdefault(chain, set()).add(target)
        if not target.startswith("KUBE-SVC-"):
            continue
        port, proto = _option(words, "--dport"), _option(words, "-p")
        if port is None or not port.isdigit() or proto is None:
            continue
        if chain == kp.SERVICES:
            dest = (_option(words, "-d") or "").removesuffix("/32")
            if dest:
                cluster_ips[(dest, int(port), proto)] = target
        elif chain == kp.NODEPORTS:
            node_ports[(int(port), proto)] = target
    return NatRules({c: frozenset(s) for c, s in endpoints.items()}, cluster_ips, node_ports)


def programmed_problems(node: str, saved: str, ours: Iterable[kp.Service]) -> list[str]:
    """What a node's kube-proxy has not (yet) programmed of our Services: per port, the
    ClusterIP jump, the NodePort jump, and exactly one KUBE-SEP chain per endpoint, each
    named as kube-proxy v1.18 hashes it (servicePortEndpointChainName)."""
    rules = parse_nat_rules(saved)
    problems = []
    for service in ours:
        for port in service.ports:
            where = f"{node}: {kp.port_name(service, port)}/{port.protocol}"
            chain = kp.svc_chain(service, port)
            key = (str(service.cluster_ip), port.port, port.protocol)
            if rules.cluster_ips.get(key) != chain:
                problems.append(
                    f"{where}: no KUBE-SERVICES jump from {service.cluster_ip}:{port.port} to "
                    f"{chain}"
                )
            if port.node_port and rules.node_ports.get((port.node_port, port.protocol)) != chain:
                problems.append(f"{where}: no KUBE-NODEPORTS jump from {port.node_port} to {chain}")
            want = {kp.sep_chain(service, port, ep) for ep in service.endpoints}
            got = set(rules.endpoints.get(chain, frozenset()))
            if got != want:
                problems.append(
                    f"{where}: {chain} jumps to {len(got)} endpoint chain(s), kube-proxy's "
                    f"for {sorted(map(str, service.endpoints))} are {len(want)} "
                    f"(missing {sorted(want - got)}, extra {sorted(got - want)})"
                )
    return problems


# --- the churn set ------------------------------------------------------------------------------


def churn_labels(
    pods: Sequence[k8s.ClusterPod], endpoints: Sequence[IPv4Address]
) -> tuple[list[str], list[str]]:
    """The fleet pods to label in and out of the churn set for `endpoints` (sorted names).
    ValueError when an endpoint is no fleet pod's IP."""
    by_ip = {p.pod_ip: p.name for p in pods if p.pod_ip is not None}
    unknown = [str(ip) for ip in endpoints if ip not in by_ip]
    if unknown:
        raise ValueError(
            f"churn endpoints {unknown} are no fleet pod's IP (fleet: {sorted(map(str, by_ip))})"
        )
    inside = sorted(by_ip[ip] for ip in set(endpoints))
    return inside, sorted(set(by_ip.values()) - set(inside))


def is_stale(found: k8s.NamespaceInfo | None, run_id: str) -> bool:
    """The Services' namespace is an earlier run's: terminating, or labelled with another run."""
    if found is None:
        return False
    return found.phase == "Terminating" or found.label(k8s.RUN_LABEL) != run_id


# --- adapters: the cluster and the nodes ---------------------------------------------------------


def _cluster(drv: Any) -> tuple[K8sDriver, KubeCluster]:
    if not isinstance(drv, K8sDriver):
        raise TypeError(
            f"the {drv.name} driver's pods are not the cluster's: no Service selects them"
        )
    return drv, drv.cluster


def prepare_fleet(
    drv: Any, requests: Sequence[PodRequest], slots: Sequence[services.Slot]
) -> list[PodRequest]:
    """The fleet's requests with the labels the Services select by (in the slots' order).
    The Services' namespace has a fixed name: one an earlier run left (another run's label,
    or terminating) is deleted and waited for first (bounded), so that nothing of that run is
    in it and no sweep of another namespace of that run's can take this run's."""
    k8s_drv, cluster = _cluster(drv)
    namespace = k8s_drv.bound
    found = cluster.get_namespace(namespace)
    if is_stale(found, k8s_drv.run_id):
        assert found is not None
        if found.phase != "Terminating":
            cluster.delete_namespace(namespace)
        cluster.wait_until_gone(namespace)
    labelled = [
        replace(r, labels={**(r.labels or {}), **fleet_labels(s)})
        for r, s in zip(requests[: len(slots)], slots, strict=True)
    ]
    return [*labelled, *requests[len(slots) :]]


def wait_for_endpoints(cluster: KubeCluster, namespace: str, ours: Sequence[kp.Service]) -> None:
    last: list[list[str]] = [[]]

    def probe() -> list[str]:
        last[0] = endpoint_problems(ours, cluster.get_endpoints(namespace))
        return last[0]

    try:
        waits.wait_until(ENDPOINTS_LISTED, probe, lambda p: not p, sleep=cluster.sleep)
    except waits.WaitTimeout:
        raise ServicesNotMade(
            f"{ENDPOINTS_LISTED.name}: not within {ENDPOINTS_LISTED.timeout_s:.0f}s:\n  "
            + "\n  ".join(last[0])
            + f"\n  inspect: {cluster.reproduce('-n', namespace, 'get', 'endpoints', '-o', 'wide')}"
        ) from None


def wait_for_programmed(
    runner: NodeRunner, nodes: Sequence[str], ours: Sequence[kp.Service], sleep: Any
) -> None:
    """Bounded: every node's nat table holds kube-proxy's rules for `ours`."""
    last: list[list[str]] = [[]]

    def probe() -> list[str]:
        def read(node: str, _: None) -> list[str]:
            (saved,) = runner.probe(node, cmd("iptables-save", "-t", "nat"))
            if not saved.ok:
                return [f"{node}: iptables-save -t nat exited {saved.exit_code}"]
            return programmed_problems(node, saved.stdout, ours)

        found = runner.on_each_node({n: None for n in nodes}, read)
        last[0] = [p for n in sorted(found) for p in found[n]]
        return last[0]

    try:
        waits.wait_until(PROGRAMMED, probe, lambda p: not p, sleep=sleep)
    except waits.WaitTimeout:
        shown = last[0][:12] + ([f"... {len(last[0]) - 12} more"] if len(last[0]) > 12 else [])
        raise ServicesNotMade(
            f"{PROGRAMMED.name}: not within {PROGRAMMED.timeout_s:.0f}s:\n  "
            + "\n  ".join(shown)
            + "\n  inspect: `iptables-save -t nat | grep KUBE-SVC` on the node; kube-proxy's "
            "log: `kubectl -n kube-system logs -l k8s-app=kube-proxy`"
        ) from None


def publish(
    drv: Any, layout: services.Layout, fleet: Mapping[services.Slot, Pod[Any]]
) -> services.DriverServices:
    """The driver's Services made in the cluster where the layout places them, after a check
    that no other Service holds their addresses; returned once their Endpoints list exactly
    their pods and kube-proxy has programmed them on every node."""
    k8s_drv, cluster = _cluster(drv)
    mine = services.driver_services(layout, k8s_drv.name, fleet, None)
    ours = list(mine.all())
    namespace = k8s_drv.bound
    problems = reserved_problems(layout, k8s_drv.lab) + collision_problems(
        ours, cluster.get_services()
    )
    if problems:
        raise ServicesNotMade(
            "the run's Services cannot be placed as the layout has them:\n  "
            + "\n  ".join(problems)
            + f"\n  fix: delete what holds them (`kubectl get services -A -o wide`), or "
            f"namespace {namespace} if it is an earlier run's"
        )
    cluster.apply(*render_services(mine, k8s_drv.run_id))
    problems = placement_problems(ours, cluster.get_services(namespace))
    if problems:
        raise ServicesNotMade(
            "the API server placed the run's Services elsewhere:\n  " + "\n  ".join(problems)
        )
    wait_for_endpoints(cluster, namespace, ours)
    wait_for_programmed(k8s_drv.runner, sorted(k8s_drv.lab.node_names), ours, cluster.sleep)
    return mine


def set_churn(drv: Any, layout: services.Layout, endpoints: Sequence[IPv4Address]) -> None:
    """The `churn` Service given `endpoints`: the fleet pods relabelled in and out of its
    set, then bounded waits until its Endpoints object lists exactly them and every node's
    kube-proxy has followed (which also removes the UDP conntrack entries to a pod that
    left, as kube-proxy does)."""
    k8s_drv, cluster = _cluster(drv)
    namespace = k8s_drv.bound
    pods = cluster.get_pods(namespace, fleet_selector(k8s_drv.run_id))
    inside, outside = churn_labels(pods, endpoints)
    cluster.label_pods(namespace, inside, CHURN_LABEL, IN)
    cluster.label_pods(namespace, outside, CHURN_LABEL, OUT)
    churn = services.service_in(layout, namespace, services.CHURN, endpoints)
    wait_for_endpoints(cluster, namespace, [churn])
    wait_for_programmed(k8s_drv.runner, sorted(k8s_drv.lab.node_names), [churn], cluster.sleep)


def remove(lab: Lab, runner: NodeRunner, run_id: str, namespace: str) -> list[str]:
    """The run's Services and their namespace gone (the fleet's pods went before); what the
    cluster still holds of them ([] when nothing)."""
    cluster = KubeCluster(lab, runner, run_id)
    selector = f"{k8s.RUN_LABEL}={run_id}"
    deleted = cluster.kubectl(
        *k8s.delete_labelled_args("services", namespace, selector), timeout=90
    )
    left = cluster.kubectl("get", "services", "-n", namespace, "-l", selector, "-o", "name")
    names = left.stdout.split() if left.ok else []
    leaks = []
    if not deleted.ok or names:
        leaks.append(
            f"Services of run {run_id} left in namespace {namespace}: "
            f"{names or (deleted.stderr.strip() or deleted.stdout.strip())[-300:]} "
            f"(remove: {cluster.reproduce('delete', 'namespace', namespace)})"
        )
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
    return leaks
