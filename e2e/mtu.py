"""The pod network's MTU on every pod, from pods and from nodes, over ICMP and over TCP.

Every fleet pod's eth0 has the lab's pod MTU (the backend's rule, lab/podnet/base.py). From
each pod and from each node to a pod on another node: a don't-fragment ping of exactly that
size crosses, one byte more is refused with the kernel's or the path's evidence naming that
MTU, and a TCP transfer of TRANSFER_MTUS x MTU bytes (full-size segments) reaches a one-shot
listener in the target pod, which counts the bytes and answers the count, within a bound.

Batched: one agent call per node (`steps`, every job at once): the node's pods' and its own
probes, and the listeners its pods hold for the other nodes' transfers (a transfer retries its
connect until its listener is up, so the nodes need no other coordination). The plan and the
judgement are pure; `observe_mtu` is the node-side reading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from e2e import probes
from e2e.drivers.base import Driver, Pod, node_python
from e2e.scenarios import df_refusal_mtu
from lab.common.commands import Command, render_remote
from lab.hosts.parse import parse_link_mtu
from lab.model.config import Lab
from lab.podnet import backend_of

SINK_PORT = 9400  # the first port of the one-shot listeners (one per transfer, in its target)
TRANSFER_MTUS = 3  # a transfer is this many MTUs: several full-size segments
TRANSFER_S = 20  # the bound of one transfer (its connect retries included) and of a listener
PING_S = 10
IP_ICMP_HEADERS = 28


@dataclass(frozen=True)
class MtuSource:
    """Who sends (a pod, or a node: `pod` None) to which pod on another node, and the port
    of the listener that counts its transfer."""

    name: str
    node: str
    pod: Pod[Any] | None
    target: Pod[Any]
    port: int


def mtu_sources(lab: Lab, pods: Sequence[Pod[Any]]) -> list[MtuSource]:
    """Every pod and every node, each to a pod of the next node (in sorted order, the last to
    the first), spread over that node's pods so every pod is a target too."""
    nodes = sorted(lab.node_names)
    by_node = {n: sorted((p for p in pods if p.node == n), key=lambda p: p.name) for n in nodes}
    sources: list[MtuSource] = []
    for i, node in enumerate(nodes):
        others = [n for n in nodes[i + 1 :] + nodes[:i] if by_node[n]]
        if not others:
            continue
        targets = by_node[others[0]]
        senders: list[Pod[Any] | None] = [*by_node[node], None]
        for j, pod in enumerate(senders):
            port = SINK_PORT + len(sources)
            name = node if pod is None else pod.name
            sources.append(MtuSource(name, node, pod, targets[j % len(targets)], port))
    return sources


def link_mtu_argv(ifname: str = "eth0") -> tuple[str, ...]:
    return ("ip", "-o", "link", "show", ifname)


def df_ping_argv(packet: int, ip: str, count: int) -> tuple[str, ...]:
    """A don't-fragment ping whose IPv4 packets are `packet` bytes."""
    size = str(packet - IP_ICMP_HEADERS)
    return ("ping", "-n", "-M", "do", "-W", "3", "-i", "0.2", "-c", str(count), "-s", size, ip)


def sink_argv(port: int, bound_s: int = TRANSFER_S) -> tuple[str, ...]:
    """One connection on `port`: every byte counted (`wc -c`), the count answered. `-t`: once
    the sender half-closed, socat waits that long for the count (its default, 0.5 s, can
    close the connection before `wc` has printed on a busy TCG guest)."""
    listen = f"TCP-LISTEN:{port},reuseaddr"
    return ("timeout", str(bound_s), "socat", "-t", str(bound_s), listen, "SYSTEM:wc -c")


def transfer_argv(ip: str, port: int, size: int, bound_s: int = TRANSFER_S) -> tuple[str, ...]:
    """`size` bytes to ip:port (its connect retried until the listener is up), then half-close
    and print what the listener answers (its count); bounded."""
    retries = bound_s * 5
    script = (
        f"head -c {size} /dev/zero | timeout {bound_s} socat -t {bound_s} - "
        f"TCP:{ip}:{port},retry={retries},interval=0.2"
    )
    return ("sh", "-c", script)


@dataclass(frozen=True)
class Planned:
    """One source's job: its steps (named) and the node it runs on."""

    source: MtuSource
    node: str
    steps: tuple[tuple[str, Command], ...]


def plan_mtu(
    driver: Driver[Any], lab: Lab, sources: Sequence[MtuSource]
) -> tuple[list[Planned], list[Planned]]:
    """(probe jobs, listener jobs): a pod's probes run in its own network namespace."""
    want = backend_of(lab).pod_mtu(lab)
    size = TRANSFER_MTUS * want

    def where(s: MtuSource, argv: tuple[str, ...]) -> Command:
        return Command(argv) if s.pod is None else driver.netns_command(s.pod, argv)

    jobs, sinks = [], []
    for s in sources:
        ip = str(s.target.ip)
        steps = [] if s.pod is None else [("mtu", where(s, link_mtu_argv()))]
        steps += [
            ("fits", where(s, df_ping_argv(want, ip, 2))),
            ("over", where(s, df_ping_argv(want + 1, ip, 1))),
            ("transfer", where(s, transfer_argv(ip, s.port, size))),
        ]
        jobs.append(Planned(s, s.node, tuple(steps)))
        listen = driver.netns_command(s.target, sink_argv(s.port))
        sinks.append(Planned(s, s.target.node, (("sink", listen),)))
    return jobs, sinks


@dataclass(frozen=True)
class Ran:
    """A step's outcome and the line that reruns it."""

    result: probes.StepResult | None  # None: the agent gave no result (why: `error`)
    reproduce: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    @property
    def stdout(self) -> str:
        """What the step printed when it succeeded ("" otherwise)."""
        return self.result.stdout if self.result is not None and self.result.ok else ""

    @property
    def text(self) -> str:
        if self.result is None:
            return self.error
        return (self.result.stdout + self.result.stderr).strip()


def source_problems(
    want: int, source: MtuSource, ran: Mapping[str, Ran], sink: Ran | None
) -> list[str]:
    """One source's MTU, its DF pings (the size it fits, one byte more refused at that MTU)
    and its transfer, counted whole by the listener in its target pod."""
    who = f"{source.name} -> {source.target.name}"
    problems = []
    if "mtu" in ran:  # a pod's
        mtu = parse_link_mtu(ran["mtu"].stdout) if ran["mtu"].ok else None
        if mtu is None:
            problems.append(
                f"cannot read {source.name}'s eth0 MTU: {ran['mtu'].text[-200:]}\n"
                f"    reproduce: {ran['mtu'].reproduce}"
            )
        elif mtu != want:
            problems.append(
                f"{source.name}'s eth0 MTU is {mtu}; the lab's pod network MTU is {want}\n"
                f"    reproduce: {ran['mtu'].reproduce}"
            )
    fits, over = ran["fits"], ran["over"]
    if not fits.ok:
        problems.append(
            f"{who}: {want - IP_ICMP_HEADERS}-byte DF ping (packet = MTU {want}) failed: "
            f"{fits.text[-300:]}\n    reproduce: {fits.reproduce}"
        )
    refused_at = df_refusal_mtu(over.text)
    if over.ok:
        problems.append(
            f"{who}: a DF packet one byte over MTU {want} went through: DF is not honoured, so "
            f"the full-size ping proves nothing\n    reproduce: {over.reproduce}"
        )
    elif refused_at is None:
        problems.append(
            f"{who}: a DF packet one byte over MTU {want} failed without evidence of a refusal "
            f"(no EMSGSIZE, no 'Frag needed'): {over.text[-200:]}\n    reproduce: {over.reproduce}"
        )
    elif refused_at != want:
        problems.append(
            f"{who}: the over-size DF packet was refused at MTU {refused_at}, not at the pod "
            f"network's {want}\n    reproduce: {over.reproduce}"
        )
    problems += transfer_problems(want, who, ran["transfer"], sink)
    return problems


def transfer_problems(want: int, who: str, transfer: Ran, sink: Ran | None) -> list[str]:
    size = TRANSFER_MTUS * want
    counted = transfer.stdout.strip()
    if counted == str(size):
        return []
    listener = ""
    if sink is not None and not sink.ok:
        listener = f"\n    its listener: {sink.text[-200:] or 'no output'} ({sink.reproduce})"
    if not transfer.ok:
        timed_out = transfer.result is not None and transfer.result.exit_code == 124
        how = f"did not complete within {TRANSFER_S}s" if timed_out else "failed"
        return [
            f"{who}: a {size}-byte TCP transfer ({TRANSFER_MTUS} x MTU {want}) {how}: "
            f"{transfer.text[-300:] or 'no output'}\n    reproduce: {transfer.reproduce}{listener}"
        ]
    return [
        f"{who}: the listener counted {counted or 'nothing'} of a {size}-byte TCP transfer "
        f"({TRANSFER_MTUS} x MTU {want})\n    reproduce: {transfer.reproduce}{listener}"
    ]


def observe_mtu(driver: Driver[Any], lab: Lab, pods: Sequence[Pod[Any]]) -> list[str]:
    """Every pod and node's MTU probes and the listeners of their transfers, in one agent call
    per node (the nodes side by side); the problems of every source."""
    sources = mtu_sources(lab, pods)
    jobs, sinks = plan_mtu(driver, lab, sources)
    runner = driver.runner
    python = node_python(lab)
    by_node: dict[str, list[tuple[str, Planned]]] = {n: [] for n in sorted(lab.node_names)}
    for kind, planned in (("probe", jobs), ("sink", sinks)):
        for p in planned:
            by_node[p.node].append((f"{kind} {p.source.name}", p))

    def on_node(node: str, mine: list[tuple[str, Planned]]) -> dict[str, dict[str, Ran]]:
        request = probes.steps_request(
            [
                probes.Job(
                    job_id,
                    tuple(probes.Step(c.argv, None, step_timeout(name)) for name, c in p.steps),
                    keep_going=True,
                )
                for job_id, p in mine
            ],
            parallel=len(mine),
        )
        result, failure = runner.agent(node, python, request, TRANSFER_S + 2 * PING_S + 30)
        answers = probes.parse_steps_answer(result.stdout, [j for j, _ in mine], failure)
        channel = runner.channels[node]
        found: dict[str, dict[str, Ran]] = {}
        for job_id, p in mine:
            job = answers[job_id]
            found[job_id] = {
                name: Ran(
                    job.steps[i] if i < len(job.steps) else None,
                    channel.reproduce(render_remote(c)),
                    job.failure() or "the step did not run",
                )
                for i, (name, c) in enumerate(p.steps)
            }
        return found

    ran: dict[str, dict[str, Ran]] = {}
    for part in runner.on_each_node(by_node, on_node).values():
        ran.update(part)
    want = backend_of(lab).pod_mtu(lab)
    problems = []
    for s in sources:
        sink = ran.get(f"sink {s.name}", {}).get("sink")
        problems += source_problems(want, s, ran[f"probe {s.name}"], sink)
    return problems


def step_timeout(name: str) -> float:
    return TRANSFER_S + 5 if name in ("transfer", "sink") else PING_S
