"""The reachability model (pure): an expected N x M truth table built from the lab, an observed
one filled by probes (which never assert), and one comparison that names every wrong cell with
the command that reproduces it. As in Kubernetes' netpol e2e (truthtable/reachability)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Endpoint:
    """A probe source or target: a pod or a node, with the addresses it owns."""

    name: str
    node: str
    ip: str  # the address others should see (pod IP; a node's private IP)
    owned: tuple[str, ...] = ()  # every address this endpoint may legitimately send from

    @property
    def allowed_sources(self) -> frozenset[str]:
        return frozenset((self.ip, *self.owned))


@dataclass(frozen=True)
class Expect:
    reachable: bool
    sources: frozenset[str] = frozenset()  # addresses the receiver may report (no NAT)
    why: str = ""
    # the cell's source is down on purpose (a suspended node): no probe can run there, so the
    # only right observation is "unknown"; a probe that runs anyway shows the fault is inert
    source_down: bool = False
    # the pods that may answer (empty: any): a cell answered by another pod was redirected
    responders: frozenset[str] = frozenset()
    # (responder, source) pairs: where the source the receiver sees depends on which pod
    # answered (a Service's masqueraded traffic leaves toward the chosen endpoint), the
    # sources allowed for each responder; replaces `sources` when set
    source_of: frozenset[tuple[str, str]] = frozenset()

    def allowed_sources(self, responder: str | None) -> frozenset[str]:
        if self.source_of:
            return frozenset(s for r, s in self.source_of if r == responder)
        return self.sources


@dataclass(frozen=True)
class Observation:
    reachable: bool
    seen_source: str | None  # the client address the receiver reported
    reproduce: str  # one pasteable command that reruns this probe
    detail: str = ""  # error output when unreachable
    seconds: float = 0.0  # the whole probe
    connect_s: float | None = None  # the TCP handshake alone, when the probe measured it
    retransmits: int = 0  # SYN retransmits seen by the client (tcpi_total_retrans at connect)
    # True when the probe itself could not run (SSH or the agent failed): the network was not
    # observed, so the cell is neither reachable nor unreachable
    unknown: bool = False
    answered_by: str | None = None  # the pod that answered, as it names itself (when it says)
    answer: str = ""  # what a DNS probe was answered (`NAME A IP...`, `NAME RCODE n`)


@dataclass(frozen=True)
class Mismatch:
    source: str
    target: str
    expected: Expect
    observed: Observation | None

    def __str__(self) -> str:
        exp = "reachable" if self.expected.reachable else "unreachable"
        if self.expected.source_down:
            exp = "no probe (its source is down)"
        if self.expected.reachable and self.expected.source_of:
            by = sorted(self.expected.source_of)
            exp += ", seen as " + " or ".join(f"{s} (answered by {r})" for r, s in by)
        elif self.expected.reachable and self.expected.sources:
            exp += f", seen as {' or '.join(sorted(self.expected.sources))}"
        if self.expected.reachable and self.expected.responders:
            exp += f", answered by {' or '.join(sorted(self.expected.responders))}"
        if self.observed is None:
            got = "not probed"
        elif self.observed.unknown:
            got = f"unknown: the probe did not run ({self.observed.detail.strip()[:120]})"
        elif self.observed.reachable:
            got = f"reachable, seen as {self.observed.seen_source}"
            if self.observed.answered_by:
                got += f", answered by {self.observed.answered_by}"
            if self.observed.retransmits > 0:
                got += f", after {self.observed.retransmits} SYN retransmit(s); {OFFLOAD_HINT}"
        else:
            got = f"unreachable ({self.observed.detail.strip()[:120] or 'no answer'})"
        reproduce = f"\n      reproduce: {self.observed.reproduce}" if self.observed else ""
        return f"{self.source} -> {self.target}: expected {exp}; observed {got}{reproduce}"


LEGEND = (
    ". as expected   X unreachable   N NAT (wrong source)   W another pod answered   "
    "S needed a SYN retransmit   R reachable, should not   x unreachable as expected   "
    "? not observed"
)
# kubernetes#88986 (the guide era's "63 second" VXLAN delay): a bad UDP checksum on the tunnel
# drops the first SYNs; the workaround flannel users applied
OFFLOAD_HINT = (
    "a cross-node connect needed a SYN retransmit: the tunnel drops packets (checksum offload? "
    "try `ethtool -K flannel.1 tx-checksum-ip-generic off`, kubernetes#88986)"
)


@dataclass
class Matrix:
    """Sources x targets; `expected` from config, `observed` from probes."""

    title: str
    sources: tuple[Endpoint, ...]
    targets: tuple[Endpoint, ...]
    expected: dict[tuple[str, str], Expect] = field(default_factory=dict)
    observed: dict[tuple[str, str], Observation] = field(default_factory=dict)

    def cells_with(self, symbols: str) -> list[tuple[str, str]]:
        """The (source, target) cells whose `symbol` is one of `symbols`, in table order."""
        return [(s, t) for (s, t) in self.expected if self.symbol(s, t) in symbols]

    def mismatches(self) -> list[Mismatch]:
        out = []
        for (src, dst), exp in self.expected.items():
            obs = self.observed.get((src, dst))
            if self.symbol(src, dst) not in (".", "x"):
                out.append(Mismatch(src, dst, exp, obs))
        return out

    def symbol(self, src: str, dst: str) -> str:
        """'.' as expected; 'X' unreachable but should reach; 'W' reached, but another pod than
        the cell's target (or one that did not say who it is) answered; 'N' reached but NATed;
        'S' reached only after a SYN retransmit; 'R' reachable but should not be; 'x'
        unreachable (or, with its source down, unobservable) as expected; '?' not observed;
        ' ' not in the table."""
        exp = self.expected.get((src, dst))
        if exp is None:
            return " "
        obs = self.observed.get((src, dst))
        if obs is None:
            return "?"
        if exp.source_down:
            return "x" if obs.unknown else ("R" if obs.reachable else "?")
        if obs.unknown:
            return "?"
        if not exp.reachable:
            return "x" if not obs.reachable else "R"
        if not obs.reachable:
            return "X"
        if exp.responders and obs.answered_by not in exp.responders:
            return "W"
        allowed = exp.allowed_sources(obs.answered_by)
        if (exp.sources or exp.source_of) and obs.seen_source not in allowed:
            return "N"
        if obs.retransmits > 0:
            return "S"
        return "."

    def render(self) -> str:
        """The whole table: rows are sources, columns targets, then every wrong cell."""
        width = max(len(e.name) for e in (*self.sources, *self.targets))
        header = " " * (width + 2) + " ".join(f"{i:>2}" for i in range(len(self.targets)))
        lines = [self.title, header]
        for src in self.sources:
            row = " ".join(f"{self.symbol(src.name, t.name):>2}" for t in self.targets)
            lines.append(f"{src.name:>{width}}  {row}")
        lines.append(
            "columns: " + ", ".join(f"{i}={t.name} ({t.ip})" for i, t in enumerate(self.targets))
        )
        lines.append(LEGEND)
        timed = [o.connect_s for o in self.observed.values() if o.connect_s is not None]
        if timed:
            ordered = sorted(timed)
            median, worst = ordered[len(ordered) // 2] * 1000, ordered[-1] * 1000
            lines.append(
                f"connect times: {len(ordered)} cells, median {median:.1f} ms, max {worst:.1f} ms"
            )
        lines.append("observed sources (the client address each receiver reported):")
        for src in self.sources:
            seen: dict[str, int] = {}
            for (s, _), obs in self.observed.items():
                if s == src.name and obs.seen_source:
                    seen[obs.seen_source] = seen.get(obs.seen_source, 0) + 1
            shown = ", ".join(f"{ip} ({n} cell{'s' * (n > 1)})" for ip, n in sorted(seen.items()))
            shown = shown or "none"
            lines.append(f"  {src.name}: {shown}")
        bad = self.mismatches()
        if bad:
            lines.append(f"{len(bad)} wrong cell(s):")
            lines += [f"  - {m}" for m in bad]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "title": self.title,
                "sources": [asdict(e) for e in self.sources],
                "targets": [asdict(e) for e in self.targets],
                "cells": [
                    {
                        "source": s,
                        "target": t,
                        "expected": {
                            "reachable": e.reachable,
                            "sources": sorted(e.sources),
                            "responders": sorted(e.responders),
                            "why": e.why,
                        },
                        "observed": asdict(self.observed[(s, t)])
                        if (s, t) in self.observed
                        else None,
                        "symbol": self.symbol(s, t),
                    }
                    for (s, t), e in self.expected.items()
                ],
            },
            indent=1,
        )


# --- expectations from the lab -------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What is broken on purpose: `isolated` nodes lost their private link (same-node traffic
    still flows); `frozen` nodes run nothing at all (suspended); `cut` pairs of nodes cannot
    reach each other's pods (e.g. a lost VXLAN FDB entry: TCP needs both directions)."""

    isolated: frozenset[str] = frozenset()
    frozen: frozenset[str] = frozenset()
    cut: frozenset[frozenset[str]] = frozenset()


NO_FAULTS = Faults()


def _expect(src: Endpoint, dst: Endpoint, faults: Faults, sources: frozenset[str]) -> Expect:
    if src.node in faults.frozen:
        return Expect(False, why="its source node is suspended", source_down=True)
    if dst.node in faults.frozen:
        return Expect(False, why="its target's node is suspended")
    if src.node != dst.node and ({src.node, dst.node} & faults.isolated):
        return Expect(False, why="cross-node cell of an isolated node")
    if frozenset({src.node, dst.node}) in faults.cut:
        return Expect(False, why="between two nodes whose tunnel is cut")
    return Expect(
        True, sources, "every pod reaches every pod without NAT", responders=frozenset({dst.name})
    )


def pod_matrix(
    pods: Sequence[Endpoint], faults: Faults = NO_FAULTS, title: str = "pod -> pod"
) -> Matrix:
    """Every ordered pair of distinct pods; the receiver must see the sender's own pod IP."""
    m = Matrix(title, tuple(pods), tuple(pods))
    for s in pods:
        for t in pods:
            if s.name != t.name:
                m.expected[(s.name, t.name)] = _expect(s, t, faults, frozenset({s.ip}))
    return m


def node_matrix(
    nodes: Sequence[Endpoint],
    pods: Sequence[Endpoint],
    faults: Faults = NO_FAULTS,
    title: str = "node -> pod",
    route_sources: Mapping[tuple[str, str], str] | None = None,
) -> Matrix:
    """Every node to every pod. Without `route_sources`: the receiver may report any address in
    the node's `owned` set. With them (node, pod) -> the source address the node's kernel picks
    for the route to that pod (`ip route get`): the receiver must report exactly that address,
    and it must be one the node may send from (its private IP, or an address on its pod bridge
    or overlay device: `owned`). A route source outside that set (loopback, the management
    address, another node's) admits no observation at all, so the cell fails and says why."""
    m = Matrix(title, tuple(nodes), tuple(pods))
    for s in nodes:
        for t in pods:
            allowed = s.allowed_sources
            if route_sources is not None:
                src = route_sources.get((s.name, t.name))
                allowed = frozenset({src}) & s.allowed_sources if src else frozenset()
                if not allowed:
                    m.expected[(s.name, t.name)] = _expect(
                        s,
                        t,
                        faults,
                        frozenset(
                            {
                                f"(none: route source {src or 'unknown'} is "
                                "not an address this node may use)"
                            }
                        ),
                    )
                    continue
            m.expected[(s.name, t.name)] = _expect(s, t, faults, allowed)
    return m
