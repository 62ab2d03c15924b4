"""Pod packets between nodes proven by the packets themselves (pure): the counting rules a test
adds for the span of its probes, the commands that read the counters, the parsers of what they
print, and the judgement of each ordered node pair.

The configuration check (lab/podnet/tunnel.py) says that flannel.1 is programmed as flannel
programs it; it cannot say that pod packets take it: a more specific route, a policy rule or
another device can carry them another way while every cell of the matrices still answers. So
each ordered pair of nodes sends probe datagrams carrying a tag of their own (the run, the
driver, the pair), and the kernel counts them where it counts what crosses between nodes:

- a counting rule on the private NIC per pair and direction (iptables, mangle table, no
  target, added for the probes and removed after them): leaving the source node
  (POSTROUTING -o NIC) and arriving at the target node (PREROUTING -i NIC). On a tunnel, UDP
  to the tunnel's port between the two nodes' private IPs (the encapsulated packets; the tag
  rides in the inner datagram, so `-m string` finds it in the outer packet); on a routing
  backend, the probe datagrams themselves, as they are. Only this test's datagrams of this
  pair carry the tag, so the `-n 4` suite's other traffic moves no count of ours: the counts
  are this test's alone, and the judgement asks for a lower bound that only tagged packets
  taking that way can meet: at least one counted packet per datagram the target pod answered.
- the tunnel device's own packet counters (/sys/class/net/DEV/statistics): every test's
  traffic moves them, so they prove only a lower bound (the source's device sent, and the
  target's received, at least as many packets as the pair's answered datagrams); they name
  the device when the packets crossed encapsulated but not through it.

Why mangle: the kube-proxy-shaped rules of the suite's Services are written to filter and nat
(iptables-restore); mangle's PREROUTING and POSTROUTING see pod traffic forwarded by the node,
traffic the node sends itself, and the encapsulated packets a tunnel sends and receives.

A pair whose datagrams were answered but not counted did not take that way: its problem names
the route its source node takes to the target pods (`ip -4 route get`)."""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from lab.common.commands import Command, Output, cmd
from lab.model.config import Lab
from lab.podnet.base import backend_of

TABLE = "mangle"
TAG_PREFIX = "nltp"
TAG_MAX = 100  # xt_string takes at most 128 bytes of pattern; the comment adds "/tx"
_COUNTED = re.compile(r"^\[(\d+):(\d+)\]\s+-A\s+(\S+)\s+(.*)$")


@dataclass(frozen=True)
class Carrier:
    """How pod packets cross from node to node, as the counting rules match them."""

    nic: str  # the private NIC
    port: int | None  # the tunnel's UDP port; None: pod packets cross as they are
    device: str | None  # the tunnel's device; None: no tunnel
    probe_port: int  # the UDP port the probe datagrams go to (the echo server's)

    def what(self) -> str:
        """What a counted packet is, for a person."""
        if self.port is None:
            return f"plain UDP packets to port {self.probe_port} on {self.nic}"
        return f"encapsulated packets (UDP {self.port}) on {self.nic}"


def carrier_of(lab: Lab, probe_port: int) -> Carrier:
    backend = backend_of(lab)
    tunnels = backend.tunnels(lab)
    return Carrier(
        lab.vm.private_nic,
        backend.tunnel_port(lab) if tunnels else None,
        backend.tunnel_device(lab) if tunnels else None,
        probe_port,
    )


@dataclass(frozen=True)
class Pair:
    """An ordered pair of nodes and the tag every probe datagram between them carries."""

    source: str
    target: str
    tag: str


def pair_tag(run: str, source: str, target: str) -> str:
    """`nltp.RUN.SOURCE.TARGET`: node names are DNS labels (no dots), so the tag reads back."""
    tag = f"{TAG_PREFIX}.{run}.{source}.{target}"
    if len(tag) > TAG_MAX or not re.fullmatch(r"[A-Za-z0-9._-]+", tag):
        raise ValueError(
            f"tunnel proof tag {tag!r}: at most {TAG_MAX} characters of letters, digits, "
            "'.', '_' and '-' (a shorter run id or node names)"
        )
    return tag


def node_pairs(nodes: Sequence[str], run: str) -> tuple[Pair, ...]:
    """Every ordered pair of distinct nodes, sorted."""
    names = sorted(nodes)
    return tuple(Pair(a, b, pair_tag(run, a, b)) for a in names for b in names if a != b)


@dataclass(frozen=True)
class Rule:
    """A counting rule (no target: it only counts) on one node, in the mangle table."""

    node: str
    chain: str
    spec: tuple[str, ...]
    comment: str


def counting_rules(lab: Lab, carrier: Carrier, pair: Pair) -> tuple[Rule, Rule]:
    """(leaving the source node, arriving at the target node) for the pair's datagrams."""
    if carrier.port is None:
        match: tuple[str, ...] = ("-p", "udp", "--dport", str(carrier.probe_port))
    else:
        src, dst = str(lab.node(pair.source).ip), str(lab.node(pair.target).ip)
        match = ("-s", src, "-d", dst, "-p", "udp", "--dport", str(carrier.port))
    tagged = (*match, "-m", "string", "--algo", "bm", "--string", pair.tag)

    def comment(way: str) -> tuple[str, ...]:
        return ("-m", "comment", "--comment", f"{pair.tag}/{way}")

    return (
        Rule(
            pair.source,
            "POSTROUTING",
            ("-o", carrier.nic, *tagged, *comment("tx")),
            f"{pair.tag}/tx",
        ),
        Rule(
            pair.target,
            "PREROUTING",
            ("-i", carrier.nic, *tagged, *comment("rx")),
            f"{pair.tag}/rx",
        ),
    )


def rules_by_node(lab: Lab, carrier: Carrier, pairs: Sequence[Pair]) -> dict[str, tuple[Rule, ...]]:
    found: dict[str, list[Rule]] = {node: [] for node in sorted(lab.node_names)}
    for pair in pairs:
        for rule in counting_rules(lab, carrier, pair):
            found[rule.node].append(rule)
    return {node: tuple(rules) for node, rules in found.items()}


def add_rule(rule: Rule) -> Command:
    return cmd("iptables", "-w", "-t", TABLE, "-I", rule.chain, "1", *rule.spec)


def delete_rule(rule: Rule) -> Command:
    return cmd("iptables", "-w", "-t", TABLE, "-D", rule.chain, *rule.spec)


def read_counters(carrier: Carrier) -> tuple[Command, ...]:
    """The rules' counts, and the tunnel device's packet counters when there is one."""
    rules = cmd("iptables-save", "-c", "-t", TABLE)
    if carrier.device is None:
        return (rules,)
    stats = f"/sys/class/net/{carrier.device}/statistics"
    return rules, cmd("cat", f"{stats}/tx_packets", f"{stats}/rx_packets")


def route_to(ip: IPv4Address | str) -> Command:
    return cmd("ip", "-4", "route", "get", str(ip))


@dataclass(frozen=True)
class Counters:
    """One node's reading: packets per counting rule (by comment), and the tunnel device's
    (tx, rx) packet counters (None: no device, or it could not be read)."""

    rules: Mapping[str, int]
    device: tuple[int, int] | None


def parse_rule_counts(text: str) -> dict[str, int]:
    """`iptables-save -c` -> packets per rule comment (rules without a comment are skipped)."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        m = _COUNTED.match(line.strip())
        if m is None:
            continue
        try:
            words = shlex.split(m[4])
        except ValueError:
            continue
        for key, value in itertools.pairwise(words):
            if key == "--comment":
                counts[value] = counts.get(value, 0) + int(m[1])
    return counts


def parse_device_counters(text: str) -> tuple[int, int] | None:
    """`cat tx_packets rx_packets` -> (tx, rx)."""
    words = text.split()
    if len(words) != 2 or not all(w.isdigit() for w in words):
        return None
    return int(words[0]), int(words[1])


def parse_counters(carrier: Carrier, outputs: Sequence[Output]) -> Counters:
    """The outputs of read_counters' commands, in order."""
    rules = parse_rule_counts(outputs[0].stdout) if outputs and outputs[0].ok else {}
    device = None
    if carrier.device is not None and len(outputs) > 1 and outputs[1].ok:
        device = parse_device_counters(outputs[1].stdout)
    return Counters(rules, device)


def route_line(text: str) -> str:
    """`ip -4 route get`'s first line, without the `uid` iproute2 adds."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"\s+uid \d+", "", first).strip()


def route_device(line: str) -> str | None:
    words = line.split()
    return next((v for k, v in itertools.pairwise(words) if k == "dev"), None)


@dataclass(frozen=True)
class PairProbes:
    """What one pair's tagged probes did: how many datagrams were sent, which the intended
    pod answered, the ones it did not (each with its reproduce line), and the routes the
    source node takes to the target pods (`ip -4 route get` lines)."""

    pair: Pair
    sent: int
    answered: int
    unanswered: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()


def _delta(
    node: str, comment: str, before: Mapping[str, Counters], after: Mapping[str, Counters]
) -> int | None:
    if node not in before or node not in after:
        return None
    if comment not in before[node].rules or comment not in after[node].rules:
        return None
    return after[node].rules[comment] - before[node].rules[comment]


def _device_delta(
    node: str, index: int, before: Mapping[str, Counters], after: Mapping[str, Counters]
) -> int | None:
    was, now = before.get(node), after.get(node)
    if was is None or now is None or was.device is None or now.device is None:
        return None
    return now.device[index] - was.device[index]


def _routes(carrier: Carrier, probes: PairProbes) -> str:
    lines = []
    for line in dict.fromkeys(probes.routes):
        dev = route_device(line)
        off = carrier.device is not None and dev is not None and dev != carrier.device
        lines.append(f"`{line}`" + (f" (through {dev}, not {carrier.device})" if off else ""))
    return "; ".join(lines) or "(could not be read)"


def pair_problems(
    lab: Lab,
    carrier: Carrier,
    probes: PairProbes,
    before: Mapping[str, Counters],
    after: Mapping[str, Counters],
) -> list[str]:
    """The pair's datagrams crossed the way the backend carries pod packets: every one
    answered by its target pod, and at least one counted packet per answered datagram leaving
    the source node and arriving at the target node (and, on a tunnel, at least as many
    through the tunnel device's counters). A pair that fails names the route its source
    node takes to the target pods."""
    pair = probes.pair
    where = f"{pair.source} -> {pair.target}"
    problems = (
        [
            f"{where}: {len(probes.unanswered)} of {probes.sent} tagged datagrams got no answer "
            f"from their target pod:\n      " + "\n      ".join(probes.unanswered)
        ]
        if probes.unanswered
        else []
    )
    if probes.answered == 0:
        problems.append(
            f"{where}: no tagged datagram was answered, so nothing shows how pod packets cross "
            f"({carrier.what()}); {pair.source}'s route to the target pods: "
            f"{_routes(carrier, probes)}"
        )
        return problems
    src_ip, dst_ip = lab.node(pair.source).ip, lab.node(pair.target).ip
    ways = (
        (pair.source, f"{pair.tag}/tx", f"sent by {pair.source} to {dst_ip}"),
        (pair.target, f"{pair.tag}/rx", f"received by {pair.target} from {src_ip}"),
    )
    for node, comment, how in ways:
        counted = _delta(node, comment, before, after)
        if counted is None:
            problems.append(
                f"{where}: {node} has no reading of its counting rule {comment} (it was not "
                "added, or it went away during the probes): the crossing is not proven"
            )
        elif counted < probes.answered:
            problems.append(
                f"{where}: {probes.answered} tagged datagram(s) answered, but only {counted} "
                f"{how} as {carrier.what()}: the pods' packets did not take "
                f"{'the tunnel' if carrier.port is not None else 'the private NIC'}; "
                f"{pair.source}'s route to the target pods: {_routes(carrier, probes)}"
            )
    if carrier.device is None:
        return problems
    for node, index, verb in ((pair.source, 0, "sent"), (pair.target, 1, "received")):
        moved = _device_delta(node, index, before, after)
        if moved is None:
            problems.append(f"{where}: {node}'s {carrier.device} packet counters could not be read")
        elif moved < probes.answered:
            problems.append(
                f"{where}: {node}'s {carrier.device} {verb} {moved} packet(s) during the probes, "
                f"fewer than the pair's {probes.answered} answered datagrams (every test's "
                f"traffic counts there, so this is a lower bound): the packets crossed "
                f"encapsulated but not through {carrier.device}; {pair.source}'s route to the "
                f"target pods: {_routes(carrier, probes)}"
            )
    return problems
