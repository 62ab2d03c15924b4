"""kube-proxy-shaped Service rules (pure): what kube-proxy v1.18 programs in iptables mode for
a set of Services and their ready endpoints, as the `iptables-restore --noflush` input its
syncProxyRules writes in one atomic restore, with the chain names hashed as kube-proxy hashes
them. No kube-proxy runs: the suite programs these rules on every node of a lab without
Kubernetes (e2e/services.py), as the VXLAN lab programs what flanneld would.

What v1.18 writes (pkg/proxy/iptables/proxier.go, syncProxyRules), and so what this writes:
- nat KUBE-POSTROUTING: one rule, MASQUERADE what carries the mark 0x4000/0x4000 (with
  --random-fully where iptables has it); KUBE-MARK-MASQ sets that mark (--set-xmark);
- per Service port with ready endpoints, in KUBE-SERVICES: traffic to its ClusterIP:port from
  outside the cluster CIDR is marked for masquerade (the local traffic detector's
  `! -s CIDR`), then all of it jumps to KUBE-SVC-<hash>; a NodePort: KUBE-NODEPORTS marks and
  jumps too; the last rule of KUBE-SERVICES sends traffic to a local address to KUBE-NODEPORTS;
- KUBE-SVC-<hash>: one rule per endpoint, `-m statistic --mode random --probability 1/(n-i)`
  (5 decimals) but the last; KUBE-SEP-<hash>: the endpoint's own traffic marked for
  masquerade (hairpin), then DNAT to endpoint:targetPort. v1.18 dropped the service comment
  of these two kinds of rule (appendServiceCommentLocked's result was discarded);
- filter: a Service port without endpoints REJECTs (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES for
  its NodePort); KUBE-FORWARD drops INVALID, accepts marked traffic and the cluster CIDR's
  established flows;
- chains no longer in use are flushed and deleted in the same restore (`-X`).
The chains' jumps from the built-in chains are ensured beside the restore (`iptables -C || -I`),
as kube-proxy's EnsureRule does. Differences from later releases: docs/services.md."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

Protocol = Literal["tcp", "udp"]

# kube-proxy's --iptables-masquerade-bit 14, as fmt.Sprintf("%#08x/%#08x", mark, mark) writes it
MASQ_MARK = "0x00004000/0x00004000"

SERVICES = "KUBE-SERVICES"
EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
NODEPORTS = "KUBE-NODEPORTS"
POSTROUTING = "KUBE-POSTROUTING"
MARK_MASQ = "KUBE-MARK-MASQ"
FORWARD = "KUBE-FORWARD"
OWN_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-FW-", "KUBE-XLB-")


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: Protocol
    port: int
    target_port: int
    node_port: int = 0


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    cluster_ip: IPv4Address
    ports: tuple[ServicePort, ...]
    endpoints: tuple[IPv4Address, ...] = ()  # ready endpoints (each port's targetPort on each)

    def port(self, name: str) -> ServicePort:
        return next(p for p in self.ports if p.name == name)


def port_name(service: Service, port: ServicePort) -> str:
    """kube-proxy's ServicePortName string: `namespace/name:port`."""
    return f"{service.namespace}/{service.name}:{port.name}"


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(service: Service, port: ServicePort) -> str:
    """servicePortChainName: KUBE-SVC- + base32(sha256(portName + protocol))[:16]."""
    return "KUBE-SVC-" + _hash16(port_name(service, port) + port.protocol)


def sep_chain(service: Service, port: ServicePort, endpoint: IPv4Address) -> str:
    """servicePortEndpointChainName: the same hash over portName + protocol + `ip:port`."""
    return "KUBE-SEP-" + _hash16(
        port_name(service, port) + port.protocol + f"{endpoint}:{port.target_port}"
    )


def probability(n: int) -> str:
    """computeProbability in v1.18: 1/n with five decimals."""
    return f"{1.0 / n:0.5f}"


NEW = ("-m", "conntrack", "--ctstate", "NEW")
# iptablesJumpChains of v1.18: (table, chain, from, comment, extra match)
JUMPS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    (
        "filter",
        EXTERNAL_SERVICES,
        "INPUT",
        "kubernetes externally-visible service portals",
        NEW,
    ),
    ("filter", SERVICES, "FORWARD", "kubernetes service portals", NEW),
    ("filter", SERVICES, "OUTPUT", "kubernetes service portals", NEW),
    ("nat", SERVICES, "OUTPUT", "kubernetes service portals", ()),
    ("nat", SERVICES, "PREROUTING", "kubernetes service portals", ()),
    ("nat", POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", ()),
    ("filter", FORWARD, "FORWARD", "kubernetes forwarding rules", ()),
)


def jump_rules() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(table, built-in chain, rule) of every jump into kube-proxy's chains."""
    return tuple(
        (table, source, (*extra, "-m", "comment", "--comment", comment, "-j", chain))
        for table, chain, source, comment, extra in JUMPS
    )


def _quote(comment: str) -> str:
    return f'"{comment}"' if " " in comment else comment


def render_restore(
    services: Sequence[Service],
    cluster_cidr: IPv4Network,
    random_fully: bool = True,
    stale: Iterable[str] = (),
) -> str:
    """The `iptables-restore --noflush` input v1.18's syncProxyRules writes for `services`
    (ordered by their ServicePortName, as a sorted map would give them); `stale`: chains the
    node holds (iptables-save) that are kube-proxy's own and no longer in use, deleted."""
    cidr = str(cluster_cidr)
    filter_chains = [SERVICES, EXTERNAL_SERVICES, FORWARD]
    filter_rules: list[str] = []
    nat_chains = [SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ]
    masq = f'-A {POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" '
    masq += f"-m mark --mark {MASQ_MARK} -j MASQUERADE"
    masq += " --random-fully" if random_fully else ""
    nat_rules = [masq, f"-A {MARK_MASQ} -j MARK --set-xmark {MASQ_MARK}"]
    ports = sorted(
        ((svc, port) for svc in services for port in svc.ports),
        key=lambda sp: (port_name(*sp), sp[1].protocol),
    )
    active: set[str] = set()
    for svc, port in ports:
        name = port_name(svc, port)
        proto = port.protocol
        dest = f"-m {proto} -p {proto} -d {svc.cluster_ip}/32 --dport {port.port}"
        endpoints = sorted(set(svc.endpoints), key=int)
        if not endpoints:
            filter_rules.append(
                f"-A {SERVICES} -m comment --comment {_quote(f'{name} has no endpoints')} "
                f"{dest} -j REJECT"
            )
            if port.node_port:
                filter_rules.append(
                    f"-A {EXTERNAL_SERVICES} -m comment --comment "
                    f"{_quote(f'{name} has no endpoints')} -m addrtype --dst-type LOCAL "
                    f"-m {proto} -p {proto} --dport {port.node_port} -j REJECT"
                )
            continue
        chain = svc_chain(svc, port)
        nat_chains.append(chain)
        active.add(chain)
        cluster = f"-A {SERVICES} -m comment --comment {_quote(f'{name} cluster IP')} {dest}"
        nat_rules += [f"{cluster} ! -s {cidr} -j {MARK_MASQ}", f"{cluster} -j {chain}"]
        if port.node_port:
            node = f"-A {NODEPORTS} -m comment --comment {_quote(name)} -m {proto} -p {proto} "
            node += f"--dport {port.node_port}"
            nat_rules += [f"{node} -j {MARK_MASQ}", f"{node} -j {chain}"]
        n = len(endpoints)
        for i, ip in enumerate(endpoints):
            sep = sep_chain(svc, port, ip)
            nat_chains.append(sep)
            active.add(sep)
            last = i == n - 1  # the last (or only) rule is a guaranteed match
            pick = "" if last else f" -m statistic --mode random --probability {probability(n - i)}"
            nat_rules.append(f"-A {chain}{pick} -j {sep}")
            nat_rules.append(f"-A {sep} -s {ip}/32 -j {MARK_MASQ}")
            nat_rules.append(
                f"-A {sep} -m {proto} -p {proto} -j DNAT --to-destination {ip}:{port.target_port}"
            )
    for chain in sorted(set(stale) - active):
        if chain.startswith(OWN_CHAIN_PREFIXES):
            nat_chains.append(chain)
            nat_rules.append(f"-X {chain}")
    nat_rules.append(
        f'-A {SERVICES} -m comment --comment "kubernetes service nodeports; NOTE: this must be '
        f'the last rule in this chain" -m addrtype --dst-type LOCAL -j {NODEPORTS}'
    )
    filter_rules += [
        f"-A {FORWARD} -m conntrack --ctstate INVALID -j DROP",
        f'-A {FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark '
        f"{MASQ_MARK} -j ACCEPT",
        f'-A {FORWARD} -s {cidr} -m comment --comment "kubernetes forwarding conntrack pod '
        'source rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        f'-A {FORWARD} -m comment --comment "kubernetes forwarding conntrack pod destination '
        f'rule" -d {cidr} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ]
    lines = ["*filter", *(f":{c} - [0:0]" for c in filter_chains), *filter_rules, "COMMIT"]
    lines += ["*nat", *(f":{c} - [0:0]" for c in nat_chains), *nat_rules, "COMMIT"]
    return "\n".join(lines) + "\n"


def render_removal(held: Mapping[str, Iterable[str]]) -> str:
    """The restore input that empties and deletes every kube-proxy chain the node holds
    (`held`: table -> chain names, parse_held_chains), once the jumps into them are gone."""
    lines = []
    for table in ("filter", "nat"):
        chains = sorted(c for c in held.get(table, ()) if c.startswith("KUBE-"))
        lines += [f"*{table}", *(f":{c} - [0:0]" for c in chains)]
        lines += [*(f"-X {c}" for c in chains), "COMMIT"]
    return "\n".join(lines) + "\n"


def parse_held_chains(iptables_save: str) -> dict[str, set[str]]:
    """`iptables-save` -> table -> the KUBE-* chains it declares."""
    held: dict[str, set[str]] = {}
    table = ""
    for line in iptables_save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":KUBE-"):
            held.setdefault(table, set()).add(line[1:].split()[0])
    return held
