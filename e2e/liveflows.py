"""Live flows between pods while a fault lasts (the disruption ledger's measurements): started
before the fault, marked at its inject and at its heal, collected after the recovery.

Each flow runs as a process of its own on its node, outside the suite's SSH sessions (a fault
closes them; a suspended or rebooted peer must not take the measurement with it): the node
agent (e2e/agent.py, copied to FLOW_DIR) as a transient systemd unit inside a pod's network
namespace (`ip netns exec`: the CNI driver's sandboxes and the CRI's pinned namespaces are both
named). On the faulted node, in its pod's namespace, the flow server (op `flowserver`); on every
other node, in its pod's namespace, a flow client toward it (op `flows`). The harness talks to
them through files only: marks and stop files it touches, a status and a result they write.
The judging is pure (e2e/ledger.py)."""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e import ledger, probes
from e2e.drivers.base import DriverError, ExecResult, NodeRunner, Pod, node_python
from e2e.drivers.cni import CniHandle
from e2e.drivers.cri import CriHandle
from lab.common import waits
from lab.common.commands import Command, cmd
from lab.hosts import compat
from lab.hosts.os import profile_of
from lab.model.config import Lab
from lab.runtime.images import ECHO_PORT

FLOW_DIR = "/run/netlab/flows"
FLOWS_RUNNING = waits.Policy(
    "the live flows carry traffic before the fault (TCP echoed, UDP answered, a connection made)",
    timeout_s=60,
    interval_s=1,
)
RESULTS_WRITTEN = waits.Policy("the flow clients wrote their results", timeout_s=60, interval_s=1)


def netns_name(pod: Pod[Any]) -> str | None:
    """The pod's named network namespace on its node (/var/run/netns/NAME), if its driver has
    one: the CNI driver's sandbox is named after the pod; the CRI's is pinned by the runtime."""
    if isinstance(pod.handle, CniHandle):
        return pod.name
    if isinstance(pod.handle, CriHandle):
        return Path(pod.handle.netns).name
    return None


@dataclass(frozen=True)
class Pair:
    source: Pod[Any]
    target: Pod[Any]
    index: int

    def figures(self, missing: str = "") -> ledger.PairFigures:
        return ledger.PairFigures(
            self.source.name,
            self.source.node,
            self.target.name,
            self.target.node,
            str(self.target.ip),
            missing=missing,
        )


def plan_pairs(pods: Sequence[Pod[Any]], node: str) -> list[Pair]:
    """From the first pod of every other node to the first pod of the faulted `node`."""
    targets = [p for p in pods if p.node == node]
    if not targets:
        return []
    firsts: dict[str, Pod[Any]] = {}
    for pod in pods:
        if pod.node != node:
            firsts.setdefault(pod.node, pod)
    return [Pair(src, targets[0], i) for i, (_, src) in enumerate(sorted(firsts.items()))]


@dataclass(frozen=True)
class Files:
    """Where one fault's flows keep their files on a node (FLOW_DIR, named by its tag)."""

    tag: str

    def path(self, what: str) -> str:
        return f"{FLOW_DIR}/{self.tag}.{what}"

    def unit(self, role: str) -> str:
        return f"{self.tag}-{role}"


def server_request(files: Files) -> dict[str, Any]:
    return {
        "op": "flowserver",
        "port": ledger.FLOW_PORT,
        "stop": files.path("server.stop"),
        "max_s": ledger.MAX_S,
    }


def client_request(files: Files, pair: Pair) -> dict[str, Any]:
    n = pair.index
    return {
        "op": "flows",
        "host": str(pair.target.ip),
        "port": ledger.FLOW_PORT,
        "echo_port": ECHO_PORT,
        "interval": ledger.STREAM_INTERVAL_S,
        "connect_interval": ledger.CONNECT_INTERVAL_S,
        "connect_timeout": ledger.CONNECT_TIMEOUT_S,
        "stall_ms": ledger.STALL_MS,
        "status": files.path(f"client{n}.status"),
        "result": files.path(f"client{n}.result"),
        "stop": files.path("client.stop"),
        "marks": {m: files.path(f"mark.{m}") for m in ("inject", "healed")},
        "max_s": ledger.MAX_S,
    }


def start_script(
    systemd: int, python: str, files: Files, unit: str, netns: str, request: dict[str, Any]
) -> str:
    """One flow's start: the agent copied from stdin (the fault's own copy), then the flow
    process as a transient unit in the pod's namespace (a shell line: one round trip)."""
    agent = files.path("agent.py")
    argv = compat.start_in_netns(
        systemd, unit, netns, (python, agent, json.dumps(request, sort_keys=True))
    )
    return f"mkdir -p {FLOW_DIR} && cat > {agent} && {shlex.join(argv)}"


@dataclass
class Flows:
    """The flows of one fault, running."""

    runner: NodeRunner
    files: Files
    pairs: list[Pair]
    source_nodes: tuple[str, ...]
    target_node: str


def start(
    runner: NodeRunner,
    lab: Lab,
    tag: str,
    pairs: Sequence[Pair],
    policy: waits.Policy = FLOWS_RUNNING,
) -> Flows:
    """The server in the target pod, a client in every source pod, and a bounded wait until
    every flow carries traffic; DriverError (with what each client reported) otherwise."""
    systemd, python = profile_of(lab).systemd, node_python(lab)
    files = Files(tag)
    target = pairs[0].target
    sources = tuple(sorted({p.source.node for p in pairs}))
    flows = Flows(runner, files, list(pairs), sources, target.node)
    starts = [(target, files.unit("server"), server_request(files))]
    starts += [(p.source, files.unit(f"client{p.index}"), client_request(files, p)) for p in pairs]
    for pod, unit, request in starts:
        netns = netns_name(pod)
        if netns is None:
            raise DriverError(f"{pod.name}: its driver names no network namespace to run flows in")
        script = start_script(systemd, python, files, unit, netns, request)
        command = Command(("sh", "-c", script), stdin=probes.agent_source())
        res = runner.run(pod.node, command, 60, stdin_file=probes.AGENT_FILE)
        if not res.ok:
            stop(flows)
            why = (res.stderr.strip() or res.stdout.strip())[-400:]
            raise DriverError(
                f"{pod.node}: starting the flow {unit} exited {res.exit_code}: {why}", res
            )
    try:
        waits.wait_until(policy, lambda: statuses(flows), lambda s: all(map(carries, s)))
    except waits.WaitTimeout as exc:
        stop(flows)
        raise DriverError(f"{exc}: {statuses(flows)}") from None
    return flows


def carries(status: dict[str, Any] | None) -> bool:
    if status is None:
        return False
    tcp, udp, conn = status.get("tcp", {}), status.get("udp", {}), status.get("connect", {})
    return bool(
        tcp.get("echoed", 0) > 0
        and udp.get("received", 0) > 0
        and conn.get("attempts", 0) > conn.get("failures", 0)
    )


def moved_on(before: dict[str, Any] | None, now: dict[str, Any] | None) -> bool:
    """Every flow of a pair made progress between two of its statuses: a TCP line echoed, a
    datagram answered and a connection made since `before` (the windows of loss the fault
    opened are then closed in its figures)."""
    if now is None:
        return False
    if before is None:
        return carries(now)

    def made(status: dict[str, Any]) -> tuple[int, int, int]:
        tcp, udp, conn = status.get("tcp", {}), status.get("udp", {}), status.get("connect", {})
        return (
            tcp.get("echoed", 0),
            udp.get("received", 0),
            conn.get("attempts", 0) - conn.get("failures", 0),
        )

    return all(b > a for a, b in zip(made(before), made(now), strict=True))


def await_progress(flows: Flows, policy: waits.Policy) -> bool:
    """After the heal, before the flows stop: wait (bounded by `policy`, the time the fault's
    budget allows after its end) until every pair's flows moved on, so that a flow still in a
    window of loss when the lab recovered is seen to come back or not. False: not within it
    (the figures then show the window open at the end)."""
    before = statuses(flows)
    try:
        waits.wait_until(
            policy,
            lambda: statuses(flows),
            lambda now: all(moved_on(b, n) for b, n in zip(before, now, strict=True)),
        )
    except waits.WaitTimeout:
        return False
    return True


def _read(runner: NodeRunner, node: str, paths: Sequence[str]) -> list[str | None]:
    outputs = runner.probe(node, *(cmd("cat", p) for p in paths))
    return [o.stdout if o.ok else None for o in outputs]


def statuses(flows: Flows) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for pair in flows.pairs:
        (text,) = _read(
            flows.runner, pair.source.node, [flows.files.path(f"client{pair.index}.status")]
        )
        try:
            out.append(json.loads(text) if text else None)
        except ValueError:
            out.append(None)
    return out


def touch(flows: Flows, node: str, *paths: str) -> None:
    """Touch files on a node, retried (bounded): the first command after a fault that closed
    the SSH connections may find its serving agent gone."""
    policy = waits.Policy(f"{node}: {', '.join(paths)} touched", timeout_s=60, interval_s=1)
    with contextlib.suppress(waits.WaitTimeout):  # the flows then say what they did not see
        waits.wait_until(policy, lambda: flows.runner.run(node, cmd("touch", *paths), 30), ok)


def ok(result: ExecResult) -> bool:
    return result.ok


def mark(flows: Flows, name: str) -> None:
    """Touch a mark on every source node (each client notes when it first sees it)."""
    for node in flows.source_nodes:
        touch(flows, node, flows.files.path(f"mark.{name}"))


def collect(flows: Flows, policy: waits.Policy = RESULTS_WRITTEN) -> list[ledger.PairFigures]:
    """Stop the clients, read their results (bounded), then stop the server and clean up."""
    for node in flows.source_nodes:
        touch(flows, node, flows.files.path("client.stop"))
    paths = {p.index: flows.files.path(f"client{p.index}.result") for p in flows.pairs}

    def read() -> dict[int, str | None]:
        found: dict[int, str | None] = {}
        for pair in flows.pairs:
            (found[pair.index],) = _read(flows.runner, pair.source.node, [paths[pair.index]])
        return found

    try:
        texts = waits.wait_until(policy, read, lambda r: all(v for v in r.values()))
    except waits.WaitTimeout:
        texts = read()
    stop(flows)
    return [
        ledger.parse_result(text, p.figures())
        if text
        else p.figures(missing=f"no result in {paths[p.index]} within {policy.timeout_s:.0f}s")
        for p, text in ((p, texts.get(p.index)) for p in flows.pairs)
    ]


def stop(flows: Flows) -> None:
    """Every flow process of the fault ended and its files removed (a rebooted target's are
    gone already: failures here are not the fault's)."""
    files = flows.files
    for node in (*flows.source_nodes, flows.target_node):
        flows.runner.run(node, cmd("systemctl", "stop", f"{files.tag}-*.service"), timeout=60)
        flows.runner.run(node, Command(("sh", "-c", f"rm -f {FLOW_DIR}/{files.tag}.*")), timeout=30)
