"""The underlay's scenarios: what the node network between the pods does, read through the
driver's node and pod commands (never asserting; the tests call e2e/checks.py's expect_*).

- the path MTU, searched per node pair (node to node, and pod to pod on the same nodes): the
  largest don't-fragment packet that crosses, against what the lab implies (the NIC's 1500
  between nodes, the backend's pod MTU between pods). A smaller one is named with the size,
  whether the path said so (ICMP "fragmentation needed") or stayed silent (a black hole), and
  the hop after which a packet one byte too large is lost (TTL-limited probes: the last hop
  that answers "time to live exceeded" is the one before the narrow link);
- the BGP backend's sessions and learned routes on a node (lab/podnet/bgp.py judges them);
- latency: which cells of a matrix a slow link holds up (connect times), and that they are
  exactly the cells whose path crosses it.

The search and the hop probes run on the node in one command each (a POSIX sh loop around
ping), so a search costs one round trip, not one per size."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Literal

from e2e.drivers.base import Driver, ExecResult, Pod
from lab.model.config import Lab
from lab.model.underlay import router_nic
from lab.net import reachability as rm
from lab.podnet import NIC_MTU, backend_of, bgp

MIN_MTU = 576  # the IPv4 minimum every link must carry (RFC 791)
PING_HEADERS = 28  # IPv4 20 + ICMP 8: `ping -s` takes the payload
MAX_HOPS = 4

# largest (size) a DF ping crosses, searched between $1 and $2 toward $3: `ok N`/`fail N` per
# probe, then `largest N` (or `largest none`)
SEARCH = r"""
lo=$1; hi=$2; dst=$3
ok() { ping -n -M do -c 1 -W 1 -s $(( $1 - 28 )) "$dst" >/dev/null 2>&1; }
if ok "$hi"; then echo "ok $hi"; echo "largest $hi"; exit 0; fi
echo "fail $hi"
if ! ok "$lo"; then echo "fail $lo"; echo "largest none"; exit 0; fi
echo "ok $lo"
while [ $((hi - lo)) -gt 1 ]; do
  mid=$(( (lo + hi) / 2 ))
  if ok "$mid"; then lo=$mid; echo "ok $mid"; else hi=$mid; echo "fail $mid"; fi
done
echo "largest $lo"
"""

# one DF ping of $1 bytes toward $2 with TTL 1..$3: `ttl N` then what ping printed
HOPS = r"""
size=$1; dst=$2; max=$3; ttl=1
while [ "$ttl" -le "$max" ]; do
  echo "ttl $ttl"
  ping -n -M do -c 1 -W 1 -t "$ttl" -s $(( size - 28 )) "$dst" 2>&1 | grep -E 'From|bytes from'
  ttl=$((ttl + 1))
done
true
"""


def search_argv(low: int, high: int, target: IPv4Address) -> tuple[str, ...]:
    return ("sh", "-c", SEARCH, "netlab-pmtu", str(low), str(high), str(target))


def hops_argv(size: int, target: IPv4Address, max_hops: int = MAX_HOPS) -> tuple[str, ...]:
    return ("sh", "-c", HOPS, "netlab-hops", str(size), str(target), str(max_hops))


@dataclass(frozen=True)
class Search:
    largest: int | None  # None: not even MIN_MTU crossed
    probes: tuple[tuple[int, bool], ...]  # (size, crossed) in probe order


def parse_search(text: str) -> Search | None:
    """The search script's output; None when it did not finish (no `largest` line)."""
    probes = []
    largest: int | str | None = "missing"
    for line in text.splitlines():
        word, _, value = line.strip().partition(" ")
        if word in ("ok", "fail") and value.isdigit():
            probes.append((int(value), word == "ok"))
        elif word == "largest":
            largest = int(value) if value.isdigit() else None
    if largest == "missing":
        return None
    assert not isinstance(largest, str)
    return Search(largest, tuple(probes))


FROM = re.compile(r"From (\d+\.\d+\.\d+\.\d+).*(Time to live exceeded|Frag needed[^\n]*)", re.I)
REPLY = re.compile(r"bytes from (\d+\.\d+\.\d+\.\d+)")


@dataclass(frozen=True)
class Hop:
    ttl: int
    address: str | None  # who answered (None: nobody)
    answer: str  # "time exceeded", "frag needed ...", "reply", ""


def parse_hops(text: str) -> tuple[Hop, ...]:
    hops: list[Hop] = []
    ttl = 0
    seen: dict[int, Hop] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("ttl ") and line[4:].isdigit():
            ttl = int(line[4:])
            seen.setdefault(ttl, Hop(ttl, None, ""))
            continue
        m, r = FROM.search(line), REPLY.search(line)
        if ttl and m:
            seen[ttl] = Hop(ttl, m[1], m[2].lower())
        elif ttl and r:
            seen[ttl] = Hop(ttl, r[1], "reply")
    hops = [seen[t] for t in sorted(seen)]
    return tuple(hops)


def names_of(lab: Lab) -> dict[str, str]:
    """Every underlay address of the lab -> who holds it (a node; the router's NIC)."""
    names = {str(n.ip): n.name for n in lab.nodes}
    router = lab.network.router_vm.name
    for seg in lab.network.segments:
        names[str(seg.router_address)] = f"{router} {router_nic(lab, seg)}"
    return names


def lost_after(lab: Lab, hops: Sequence[Hop], target: IPv4Address | None = None) -> str:
    """Where a packet toward `target` (an underlay address) was last seen, from TTL-limited
    probes of it; after the router, the link out of it toward the target's segment."""
    names = names_of(lab)
    answered = [h for h in hops if h.address is not None]
    if any(h.answer == "reply" for h in answered):
        return "it crossed when probed hop by hop (the loss is intermittent)"
    if not answered:
        return "no hop answered: lost on the source's own link, before the first hop"
    last = answered[-1]
    who = names.get(last.address or "", "outside the lab")
    how = "" if last.answer == "time to live exceeded" else f" ({last.answer})"
    found = f"it reaches hop {last.ttl} {last.address} ({who}){how} and is lost after it"
    routers = {str(s.router_address) for s in lab.network.segments}
    home = next((s for s in lab.network.segments if target is not None and target in s.cidr), None)
    if last.address in routers and home is not None:
        router = lab.network.router_vm.name
        beyond = names.get(str(target), str(target))
        return (
            f"{found}: the narrow link is {router} {router_nic(lab, home)} (toward "
            f"{home.name}), between {router} and {beyond}"
        )
    return f"{found}: the narrow link is the next one out of {who}"


@dataclass(frozen=True)
class PathMtu:
    source: str
    target: str
    level: Literal["node", "pod"]
    expected: int
    largest: int | None  # None: the search did not finish or nothing crossed
    finished: bool
    where: str  # for a short path: where the first lost size was last seen ("" otherwise)
    reproduce: str

    @property
    def short(self) -> bool:
        return not self.finished or self.largest is None or self.largest < self.expected

    def __str__(self) -> str:
        head = f"{self.source} -> {self.target} ({self.level})"
        if not self.finished:
            return f"{head}: the path MTU search did not finish\n    reproduce: {self.reproduce}"
        if not self.short:
            return f"{head}: path MTU {self.largest}, as the lab implies"
        got = "nothing crossed" if self.largest is None else f"path MTU {self.largest}"
        first = MIN_MTU if self.largest is None else self.largest + 1
        return (
            f"{head}: {got}, the lab implies {self.expected}: don't-fragment packets of "
            f"{first}-{self.expected} bytes are lost without a 'fragmentation needed' (a "
            f"black hole){'; ' + self.where if self.where else ''}\n"
            f"    reproduce: {self.reproduce}"
        )


Run = Callable[[tuple[str, ...], float], ExecResult]


def search_path_mtu(
    run: Run,
    lab: Lab,
    source: str,
    target: str,
    target_ip: IPv4Address,
    level: Literal["node", "pod"],
    expected: int,
    locate: Run | None = None,
    locate_to: IPv4Address | None = None,
    overhead: int = 0,
) -> PathMtu:
    """The largest DF packet from `source` to `target_ip` (through `run`: on the node, or
    in the pod's namespace); where it falls short, the hop after which one byte more is lost
    (`locate`: node-level TTL probes toward `locate_to`, the underlay address on the path, of
    the size the underlay carries: `overhead` bytes more inside a tunnel)."""
    res = run(search_argv(MIN_MTU, expected, target_ip), 120)
    found = parse_search(res.stdout) if res.ok else None
    largest = found.largest if found is not None else None
    where = ""
    short = found is None or largest is None or largest < expected
    if found is not None and short and locate is not None and locate_to is not None:
        size = (MIN_MTU if largest is None else largest + 1) + overhead
        probed = locate(hops_argv(size, locate_to), 60)
        hops = parse_hops(probed.stdout)
        where = f"a {size}-byte underlay packet: " + lost_after(lab, hops, locate_to)
    return PathMtu(
        source, target, level, expected, largest, found is not None, where, res.reproduce
    )


def node_path_mtu(driver: Driver[Any], lab: Lab, a: str, b: str) -> PathMtu:
    """Node `a` to node `b` over the underlay (their private IPs): the NIC's MTU expected."""
    target = lab.node(b).ip

    def on_a(argv: tuple[str, ...], timeout: float) -> ExecResult:
        return driver.exec_on_node(a, argv, timeout)

    return search_path_mtu(on_a, lab, a, b, target, "node", NIC_MTU, on_a, target)


def pod_path_mtu(driver: Driver[Any], lab: Lab, source: Pod[Any], target: Pod[Any]) -> PathMtu:
    """Pod to pod on other nodes: the backend's pod MTU expected (1450 in VXLAN, 1500 routed);
    a short path is located on the underlay between their nodes (a tunnel's inner TTL never
    meets the router)."""

    def in_pod(argv: tuple[str, ...], timeout: float) -> ExecResult:
        return driver.netns_exec(source, argv, timeout)

    def on_node(argv: tuple[str, ...], timeout: float) -> ExecResult:
        return driver.exec_on_node(source.node, argv, timeout)

    return search_path_mtu(
        in_pod,
        lab,
        source.name,
        target.name,
        target.ip,
        "pod",
        backend_of(lab).pod_mtu(lab),
        on_node,
        lab.node(target.node).ip,
        NIC_MTU - backend_of(lab).max_pod_mtu(lab),  # the tunnel's bytes around a pod packet
    )


# --- BGP --------------------------------------------------------------------------------------


def bgp_problems(driver: Driver[Any], lab: Lab, node: str) -> list[str]:
    """The node's BGP sessions (Established, its subnet announced) and learned pod routes,
    named from `birdc show protocols` and the kernel's `proto bird` routes."""
    protocols, routes = driver.runner.probe(node, *bgp.probe_bgp_state())
    me = lab.node(node)
    parsed = bgp.parse_protocols(protocols.stdout) if protocols.ok else {}
    problems = bgp.session_problems(lab, me, parsed, birdc_ok=protocols.ok)
    problems += bgp.route_problems(
        lab, me, bgp.parse_bird_routes(routes.stdout if routes.ok else "")
    )
    return problems


# --- latency ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slowness:
    slow: tuple[tuple[str, str], ...]  # cells at or above the threshold
    fast: tuple[tuple[str, str], ...]
    failed: tuple[tuple[str, str], ...]  # not reached at all
    threshold_s: float


def classify(matrix: rm.Matrix, threshold_s: float) -> Slowness:
    slow, fast, failed = [], [], []
    for cell, obs in sorted(matrix.observed.items()):
        if not obs.reachable or obs.connect_s is None:
            failed.append(cell)
        elif obs.connect_s >= threshold_s:
            slow.append(cell)
        else:
            fast.append(cell)
    return Slowness(tuple(slow), tuple(fast), tuple(failed), threshold_s)


def latency_problems(
    matrix: rm.Matrix,
    crosses: Mapping[tuple[str, str], bool],
    threshold_s: float,
    hop: str,
) -> list[str]:
    """A slow link must slow exactly the cells whose path crosses it (`crosses`: cell ->
    whether it does), each still reached: a crossing cell that is fast, or another that is
    slow, means the fault is elsewhere than the report says."""
    seen = classify(matrix, threshold_s)
    ms = f"{threshold_s * 1000:.0f} ms"
    problems = [
        f"{s} -> {t}: not reached while {hop} was slow (a slow link must not cut)"
        for s, t in seen.failed
    ]
    problems += [
        f"{s} -> {t}: crosses {hop} but connected in under {ms}"
        for s, t in seen.fast
        if crosses[(s, t)]
    ]
    problems += [
        f"{s} -> {t}: does not cross {hop} but took {ms} or more to connect"
        for s, t in seen.slow
        if not crosses[(s, t)]
    ]
    return problems
