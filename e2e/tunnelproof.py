"""The scenario that proves, by their packets, how pod packets cross between nodes (the judging
is pure: lab/podnet/proof.py; this module is its node-side reading and its probes).

For every ordered pair of nodes, the pair's cross-node cells (each pod of the source node and
the node itself, to each pod of the target node) send one UDP datagram each to the target
pod's echo server, carrying the pair's tag. Counting rules matched to that tag are added on
every node before the probes and removed after them; the counters are read on every node
before and after the probes (one round trip per node each time, the nodes side by side), and
the route each source node takes to its target pods is read with the second reading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from e2e.drivers.base import Driver, Pod, Probe, Source
from lab.common.commands import Command, Output, render_remote
from lab.model.config import Lab
from lab.net import reachability as rm
from lab.podnet import proof
from lab.runtime.images import ECHO_PORT


def crossing_cells(pairs: Sequence[proof.Pair], pods: Sequence[Pod[Any]]) -> dict[str, list[Probe]]:
    """pair tag -> its cells: every pod of the source node, and the node, to every pod of the
    target node; UDP, the payload the pair's tag."""
    found: dict[str, list[Probe]] = {}
    for pair in pairs:
        sources: list[Source] = [p for p in pods if p.node == pair.source]
        sources.append(pair.source)
        targets = [p for p in pods if p.node == pair.target]
        found[pair.tag] = [
            Probe(
                f"{s if isinstance(s, str) else s.name}->{t.name}/tunnel",
                s,
                t,
                proto="udp",
                payload=f"{pair.tag}\n",
            )
            for s in sources
            for t in targets
        ]
    return found


@dataclass(frozen=True)
class Reading:
    counters: proof.Counters
    failed: tuple[str, ...] = ()  # commands that failed, with their reproduce lines
    routes: Mapping[str, str] | None = None  # target pod IP -> `ip -4 route get` line


def _failed(
    driver: Driver[Any], node: str, commands: Sequence[Command], outputs: Sequence[Output]
) -> list[str]:
    channel = driver.runner.channels[node]
    return [
        f"{node}: exit {out.exit_code}: {channel.reproduce(render_remote(c))}"
        for c, out in zip(commands, outputs, strict=True)
        if not out.ok
    ]


def prove_crossings(driver: Driver[Any], lab: Lab, pods: Sequence[Pod[Any]], run: str) -> list[str]:
    """Every ordered node pair's tagged datagrams, counted where the backend carries pod
    packets (lab/podnet/proof.py); the problems of every pair, or of the reading itself.
    The counting rules are removed whatever happens."""
    carrier = proof.carrier_of(lab, ECHO_PORT)
    pairs = proof.node_pairs(lab.node_names, run)
    rules = proof.rules_by_node(lab, carrier, pairs)
    reads = proof.read_counters(carrier)
    cells = crossing_cells(pairs, pods)
    targets = {
        node: sorted({str(c.target.ip) for p in pairs if p.source == node for c in cells[p.tag]})
        for node in rules
    }
    runner = driver.runner

    def install(node: str, mine: tuple[proof.Rule, ...]) -> Reading:
        adds = [proof.add_rule(r) for r in mine]
        outputs = runner.probe(node, *adds, *reads)
        failed = _failed(driver, node, adds, outputs[: len(adds)])
        return Reading(proof.parse_counters(carrier, outputs[len(adds) :]), tuple(failed))

    def read_and_remove(node: str, mine: tuple[proof.Rule, ...]) -> Reading:
        routes = [proof.route_to(ip) for ip in targets[node]]
        deletes = [proof.delete_rule(r) for r in mine]
        outputs = runner.probe(node, *reads, *routes, *deletes)
        got = outputs[len(reads) : len(reads) + len(routes)]
        failed = _failed(driver, node, deletes, outputs[len(reads) + len(routes) :])
        return Reading(
            proof.parse_counters(carrier, outputs[: len(reads)]),
            tuple(f"a counting rule was left on {f}" for f in failed),
            {
                ip: proof.route_line(o.stdout)
                for ip, o in zip(targets[node], got, strict=True)
                if o.ok
            },
        )

    done = False
    try:
        before = runner.on_each_node(rules, install)
        problems = [
            f"could not add a counting rule on {f}" for r in before.values() for f in r.failed
        ]
        seen = {} if problems else observe_twice(driver, [c for m in cells.values() for c in m])
        after = runner.on_each_node(rules, read_and_remove)
        done = True
    finally:
        if not done:  # a reading raised: the rules go anyway
            runner.on_each_node(
                rules, lambda n, mine: runner.probe(n, *map(proof.delete_rule, mine))
            )
    problems += [f for r in after.values() for f in r.failed]
    if not seen:
        return problems
    counted_before = {n: r.counters for n, r in before.items()}
    counted_after = {n: r.counters for n, r in after.items()}
    for pair in pairs:
        routes = after[pair.source].routes or {}
        found = pair_probes(pair, cells[pair.tag], seen, routes)
        problems += proof.pair_problems(lab, carrier, found, counted_before, counted_after)
    return problems


def answered(cell: Probe, seen: rm.Observation) -> bool:
    """The datagram was answered, and not by another pod than its target (a server that names
    nobody counts: which pod answers is the matrices' check; this one is about the packets)."""
    return seen.reachable and (not seen.answered_by or seen.answered_by == cell.target.name)


def observe_twice(driver: Driver[Any], cells: Sequence[Probe]) -> dict[str, rm.Observation]:
    """Every cell, and once more the cells their target pod did not answer: a datagram is
    sent once, and a busy guest's echo server may miss the probe's bound. A second datagram
    only adds to the counts, which are lower bounds."""
    seen = driver.observe(cells)
    again = [c for c in cells if not answered(c, seen[c.id])]
    if again:
        seen.update(driver.observe(again))
    return seen


def pair_probes(
    pair: proof.Pair,
    mine: Sequence[Probe],
    seen: Mapping[str, rm.Observation],
    routes: Mapping[str, str],
) -> proof.PairProbes:
    """What the pair's cells observed (`answered`), and the routes to their targets."""
    ok = {c.id for c in mine if answered(c, seen[c.id])}
    unanswered = []
    for c in mine:
        o = seen[c.id]
        if c.id in ok:
            continue
        why = (
            f"answered by {o.answered_by}, not {c.target.name}"
            if o.reachable
            else (o.detail.strip()[:160] or "no answer")
        )
        unanswered.append(f"{c.id}: {why}\n        reproduce: {o.reproduce}")
    return proof.PairProbes(
        pair,
        len(mine),
        len(ok),
        tuple(unanswered),
        tuple(routes[str(c.target.ip)] for c in mine if routes.get(str(c.target.ip))),
    )
