"""The small interface every workload driver implements, and what they share.

A driver brings pods (CNI-direct sandboxes, Kubernetes pods, CRI pod sandboxes), runs commands
in them, and observes TCP probes from pods and nodes. The network-model scenarios
(e2e/scenarios.py) are written once against `Driver`; each driver brings its own echo server
and client probe. A pod is a typed handle: `Pod[H]` carries the driver's own data as `handle`
(e.g. the CNI result and PIDs, a Kubernetes namespace, CRI sandbox and container ids).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Generic, Protocol, TypeVar

from e2e import probes
from e2e.hub import Pool, hub_pool
from e2e.session import SessionError, SessionPool
from lab.adapters.protocols import NodeChannel
from lab.common import waits
from lab.common.commands import Command, Output, render_probe, render_remote
from lab.common.errors import CommandFailed
from lab.hosts.os import profile_of
from lab.hosts.parse import TCP_LISTEN, UDP_UNCONNECTED, socket_table_ports
from lab.model.config import Lab, Services
from lab.net import reachability as rm
from lab.runtime.cri.messages import DnsConfig
from lab.runtime.images import ECHO_PORT

H = TypeVar("H")
T = TypeVar("T")
R = TypeVar("R")

NO_EXIT_CODE = 124  # `timeout`'s code; ours when a command timed out or the SSH channel broke


@dataclass(frozen=True)
class Container:
    """A container of a pod: a name, an image (runtimes with images) and the process it runs."""

    name: str
    argv: tuple[str, ...]
    image: str = ""


@dataclass(frozen=True)
class Pod(Generic[H]):
    name: str  # unique per run and test; also the sandbox / Kubernetes pod name
    node: str  # the lab node it runs on
    ip: IPv4Address  # the IP the runtime (CNI result / Kubernetes API / CRI status) reports
    containers: tuple[Container, ...]
    handle: H = field(compare=False)

    @property
    def endpoint(self) -> rm.Endpoint:
        return rm.Endpoint(self.name, self.node, str(self.ip))


@dataclass(frozen=True)
class PodRequest:
    name: str
    node: str
    containers: tuple[Container, ...]
    labels: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    reproduce: str  # one pasteable command that runs the same thing again

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class GuidePod:
    """The guide's two-container pod (busybox + nginx) as this driver runs it: `client` reaches
    `server` on localhost:`port` and reads `banner`. `in_fleet`: the driver's fleet pods are
    this pod (a server and a client container), so the check runs on the fleet's first pod of
    every node instead of pods of its own (a pod fewer per node to make and remove)."""

    containers: tuple[Container, ...]
    client: str
    server: str
    port: int
    banner: str
    in_fleet: bool = False


Source = Pod[Any] | str  # a pod, or a node (by name)


@dataclass(frozen=True)
class Probe:
    """One matrix cell to observe: from a pod or a node to a pod's echo server, directly, or
    through an `address` and `port` that lead there (a Service's ClusterIP, a NodePort), over
    TCP or UDP; or a DNS question (`proto` "dns", `name`) to the server at address:port."""

    id: str
    source: Source
    target: Pod[Any]
    address: str = ""  # default: the target pod's IP
    port: int = 0  # default: the echo server's port
    proto: probes.Proto = "tcp"
    name: str = ""  # a DNS question
    sport: int = 0  # UDP: from this source port (one flow across probes)
    payload: str = ""  # what the probe sends when its driver sends nothing of its own

    @property
    def source_node(self) -> str:
        return self.source if isinstance(self.source, str) else self.source.node

    @property
    def host(self) -> str:
        return self.address or str(self.target.ip)

    @property
    def dport(self) -> int:
        return self.port or ECHO_PORT

    def cell(self, netns: str | None = None, send: str = "") -> probes.Cell:
        """The agent's probe for this cell, from `netns` (None: the source node's own)."""
        send = send or self.payload
        return probes.Cell(
            self.id,
            self.host,
            self.dport,
            netns,
            send,
            proto=self.proto,
            name=self.name,
            sport=self.sport,
        )


@dataclass
class CommandLog:
    """Everything a test ran through the drivers, for its diagnostics bundle."""

    entries: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # per entry: time on the node
    heads: list[str] = field(default_factory=list)  # per entry: `node<TAB>first line`
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, node: str, remote: str, result: ExecResult, seconds: float = 0.0) -> None:
        with self.lock:
            self.entries.append(
                f"[{node}] $ {remote}\n[exit {result.exit_code}] ({seconds:.2f}s)\n"
                f"{result.stdout}{result.stderr}"
            )
            self.seconds.append(seconds)
            self.heads.append(f"{node}\t{remote.splitlines()[0][:160] if remote else ''}")

    def timings_since(self, start: int) -> list[str]:
        """`seconds<TAB>node<TAB>command's first line` per entry from `start` on."""
        with self.lock:
            pairs = zip(self.seconds[start:], self.heads[start:], strict=True)
            return [f"{seconds:.3f}\t{head}" for seconds, head in pairs]

    def seconds_since(self, start: int) -> float:
        """Wall time of node commands logged from entry `start` on (concurrent ones overlap:
        an upper bound on the time the test waited for nodes)."""
        with self.lock:
            return sum(self.seconds[start:])


class DriverError(Exception):
    """A driver could not do what was asked (a pod did not start, a runtime call failed); says
    what happened and carries the command that reproduces it."""

    def __init__(self, message: str, result: ExecResult | None = None) -> None:
        self.result = result
        where = f"\n  reproduce: {result.reproduce}" if result is not None else ""
        super().__init__(f"{message}{where}")


class NodeRunner:
    """Commands on the lab's nodes: every outcome logged, timeouts and broken channels answered
    as results (exit NO_EXIT_CODE), each with its pasteable reproduce line. Both the CNI and
    the Kubernetes drivers (and the CRI one) run through it.

    With `python` (the node's interpreter) and channels that can open a stream (SSH), commands
    that run under sudo go through long-lived node agents (e2e/session.py): same argv, same
    root, same reproduce line, without an SSH session, a sudo and a Python start each."""

    def __init__(
        self,
        channels: Mapping[str, NodeChannel],
        log: CommandLog | None = None,
        python: str | None = None,
        hub: str = "",
    ):
        self.channels = dict(channels)
        self.log = log if log is not None else CommandLog()
        self.python = python
        self.hub = hub  # the controller's agent hub (its sockets' directory), "" for none
        self._pools: dict[str, Pool] = {}
        self._lock = threading.Lock()

    def pool(self, node: str) -> Pool | None:
        """The node's serving agents, when its channel can host them."""
        open_stream = getattr(self.channels[node], "open_stream", None)
        if self.python is None or open_stream is None:
            return None
        with self._lock:
            if node not in self._pools:  # the run's shared agents, else this process's own
                shared = hub_pool(node, self.hub)
                self._pools[node] = shared or SessionPool(open_stream, self.python)
            return self._pools[node]

    def warm(self) -> None:
        """Start every node's first serving agent in the background (a suite process does this
        while it waits for the shared pods), so the first command finds one ready."""
        for node in self.channels:
            pool = self.pool(node)
            if pool is not None:
                threading.Thread(target=pool.warm, name=f"warm-{node}", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def run(
        self, node: str, command: Command, timeout: float = 60, stdin_file: str = ""
    ) -> ExecResult:
        """`stdin_file`: the command's stdin is that file of this repository (the agent): the
        log and the reproduce line name the file instead of repeating its text."""
        channel = self.channels[node]
        started = time.monotonic()
        if stdin_file:
            remote = render_remote(dataclasses.replace(command, stdin=None))
            reproduce = f"{channel.reproduce(remote)} < {stdin_file}"
        else:
            remote = render_remote(command)
            reproduce = channel.reproduce(remote)
        pool = self.pool(node) if command.sudo and not command.secrets else None
        if pool is not None and not stdin_file:
            result = self._in_session(pool, node, command, timeout, reproduce)
        else:
            result = self._over_ssh(channel, command, timeout, reproduce)
        shown = f"{remote}{f' < {stdin_file}' if stdin_file else ''}"
        self.log.add(node, shown, result, time.monotonic() - started)
        return result

    @staticmethod
    def _over_ssh(
        channel: NodeChannel, command: Command, timeout: float, reproduce: str
    ) -> ExecResult:
        try:
            res = channel.run(command, timeout=timeout, check=False)
            return ExecResult(res.exit_code, res.stdout, res.stderr, reproduce)
        except CommandFailed as exc:
            return ExecResult(
                NO_EXIT_CODE,
                exc.stdout,
                f"{exc.stderr}\n(no exit code after {timeout:.0f}s: timed out or SSH failed)",
                reproduce,
            )

    @staticmethod
    def _in_session(
        pool: Pool, node: str, command: Command, timeout: float, reproduce: str
    ) -> ExecResult:
        step = probes.Step(command.argv, command.stdin, timeout)
        try:
            answer = pool.call(probes.steps_request([probes.Job("run", (step,))]), timeout)
        except SessionError as exc:
            why = f"(no exit code: the agent session on {node} broke: {exc})"
            return ExecResult(NO_EXIT_CODE, "", why, reproduce)
        job = probes.jobs_from(answer, ["run"], "")["run"]
        if not job.steps:
            return ExecResult(NO_EXIT_CODE, "", f"(no exit code: {job.failure()})", reproduce)
        (done,) = job.steps
        if done.timed_out:
            note = f"\n(no exit code after {timeout:.0f}s: timed out)"
            return ExecResult(NO_EXIT_CODE, done.stdout, done.stderr + note, reproduce)
        return ExecResult(done.exit_code, done.stdout, done.stderr, reproduce)

    def must(self, node: str, command: Command, what: str, timeout: float = 60) -> ExecResult:
        result = self.run(node, command, timeout)
        if not result.ok:
            output = (result.stderr.strip() or result.stdout.strip())[-400:]
            raise DriverError(f"{node}: {what} exited {result.exit_code}: {output}", result)
        return result

    def probe(self, node: str, *commands: Command, timeout: float = 60) -> tuple[Output, ...]:
        """Several read-only commands in one round trip: each one's stdout and exit code."""
        started = time.monotonic()
        pool = self.pool(node) if all(c.sudo for c in commands) else None
        served = self._probe_in_session(pool, commands, timeout) if pool is not None else None
        if served is not None:
            outputs, result = served
        else:  # over SSH (also when the session failed: a probe only reads, so ask again)
            res, outputs = self.channels[node].probe(commands, timeout=timeout)
            result = ExecResult(res.exit_code, res.stdout, res.stderr, "")
        self.log.add(node, render_probe(commands), result, time.monotonic() - started)
        return outputs

    @staticmethod
    def _probe_in_session(
        pool: Pool, commands: Sequence[Command], timeout: float
    ) -> tuple[tuple[Output, ...], ExecResult] | None:
        steps = tuple(probes.Step(c.argv, None, timeout) for c in commands)
        request = probes.steps_request([probes.Job("probe", steps, keep_going=True)])
        try:
            answer = pool.call(request, timeout)
        except SessionError:
            return None
        job = probes.jobs_from(answer, ["probe"], "")["probe"]
        if len(job.steps) != len(commands):
            return None
        outputs = tuple(Output(s.exit_code, s.stdout) for s in job.steps)
        return outputs, ExecResult(0, json.dumps(answer), "", "")

    def on_each_node(self, work: Mapping[str, T], fn: Callable[[str, T], R]) -> dict[str, R]:
        """Run fn(node, item) for every node of `work` concurrently: one call per node."""
        if not work:
            return {}
        with ThreadPoolExecutor(max_workers=len(work)) as pool:
            futures = {node: pool.submit(fn, node, item) for node, item in work.items()}
            return {node: f.result() for node, f in futures.items()}

    def agent(
        self, node: str, python: str, request: Mapping[str, Any], timeout: float
    ) -> tuple[ExecResult, str]:
        """One agent call on `node`: its result and, when it failed, why (for every cell/job
        it carried). A serving agent answers when the node has one (no Python start)."""
        command = probes.agent_command(python, request)
        pool = self.pool(node)
        if pool is None:
            result = self.run(node, command, timeout, stdin_file=probes.AGENT_FILE)
        else:
            started = time.monotonic()
            remote = render_remote(dataclasses.replace(command, stdin=None))
            reproduce = f"{self.channels[node].reproduce(remote)} < {probes.AGENT_FILE}"
            try:
                answer = pool.call(request, timeout)
                result = ExecResult(0, json.dumps(answer), "", reproduce)
            except SessionError as exc:
                why = f"(no exit code: the agent session on {node} broke: {exc})"
                result = ExecResult(NO_EXIT_CODE, "", why, reproduce)
            shown = f"{remote} < {probes.AGENT_FILE} (serving agent)"
            self.log.add(node, shown, result, time.monotonic() - started)
        failure = (
            ""
            if result.ok
            else (
                f"the agent on {node} exited {result.exit_code}: "
                f"{(result.stderr.strip() or result.stdout.strip())[-300:]}"
            )
        )
        return result, failure

    def reproduce_agent(self, node: str, cell: probes.Cell) -> str:
        """The pasteable one-cell command for a probe the agent runs (UDP, DNS): the agent
        with that one cell, from the repository, on the node."""
        command = probes.agent_command(self.python or "python3", probes.probe_request([cell]))
        remote = render_remote(dataclasses.replace(command, stdin=None))
        return f"{self.channels[node].reproduce(remote)} < {probes.AGENT_FILE}"


def service_namespace(driver: str) -> str:
    """The namespace the run's Services and, as far as names go, its pods of `driver` are in
    (e2e/services.py)."""
    return f"e2e-{driver}"


def pod_dns(services_: Services, driver: str) -> DnsConfig:
    """A pod's resolv.conf as kubelet writes it with ClusterFirst (through the CRI
    DNSConfig): the cluster DNS, the search path of the pod's namespace (the run's pods live
    in `e2e-DRIVER` as far as names go) and `ndots:5`."""
    domain = services_.cluster_domain
    ns = service_namespace(driver)
    return DnsConfig(
        (str(services_.dns_ip),), (f"{ns}.svc.{domain}", f"svc.{domain}", domain), ("ndots:5",)
    )


def node_python(lab: Lab) -> str:
    """The interpreter the node agent runs with (its OS profile says: CentOS 7 has only
    Python 2.7, as `python`)."""
    return profile_of(lab).python


def runner_for(
    lab: Lab, channels: Mapping[str, NodeChannel] | NodeRunner, log: CommandLog | None = None
) -> NodeRunner:
    """A driver's runner: the one given (shared by the drivers of a suite process), else one
    over `channels` with serving agents in the node's Python."""
    if isinstance(channels, NodeRunner):
        return channels
    return NodeRunner(channels, log, python=node_python(lab))


class Driver(Protocol[H]):
    """What the scenarios need of a way to make pods."""

    name: str  # "cni", "k8s", "cri": the test ids say which driver proved what
    # what the fleet's echo server answers, saying who answered: a cell over another protocol
    # cannot be judged on this driver (its tests skip with why)
    protocols: tuple[str, ...]
    lab: Lab
    runner: NodeRunner

    def fleet_containers(self, index: int = 0) -> tuple[Container, ...]:
        """The containers of a node's `index`-th fleet pod: an echo server that answers every
        TCP connection on the driver's echo port with the client address it saw, and whatever
        the driver's client probes need (a driver whose server can run its probes too may give
        the pods after a node's first the server alone)."""
        ...

    def client_of(self, pod: Pod[H]) -> str:
        """The container of `pod` to run tools in (a shell, `ip`, `readlink`)."""
        ...

    def guide_pod(self) -> GuidePod: ...

    def create_pods(self, requests: Sequence[PodRequest]) -> list[Pod[H]]:
        """Every pod running (setup batched per node); on failure nothing half-made is left."""
        ...

    def delete_pods(self, pods: Sequence[Pod[H]]) -> None: ...

    def exec(
        self, pod: Pod[H], container: str, argv: tuple[str, ...], timeout: float = 30
    ) -> ExecResult: ...

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> ExecResult: ...

    def netns_exec(self, pod: Pod[H], argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        """argv from the node's own tools, inside the pod's network namespace (for probes the
        pod's image may lack, e.g. a don't-fragment ping)."""
        ...

    def netns_command(self, pod: Pod[H], argv: tuple[str, ...]) -> Command:
        """The command netns_exec runs on the pod's node (to batch several in one agent call)."""
        ...

    def observe(self, cells: Sequence[Probe]) -> dict[str, rm.Observation]:
        """Every cell observed, batched by source node (one round trip per node); never
        asserts. The observation's `reproduce` is the exact one-cell command."""
        ...

    def node_subnets(self) -> dict[str, tuple[IPv4Network, ...]]:
        """The pod subnet(s) each node hands out, as the runtime/kernel reports them."""
        ...

    def sweep(self, keep_prefix: str) -> list[str]:
        """Remove every pod of earlier runs (by the run label/prefix); returns what went."""
        ...

    def remove_run(self, run_id: str) -> list[str]:
        """Remove every pod of run `run_id` (an interrupted run's); what is still there."""
        ...

    def dump_pod(self, pod: Pod[H]) -> dict[str, Any]: ...

    def load_pod(self, data: Mapping[str, Any]) -> Pod[H]: ...


def pod_json(pod: Pod[Any], handle: Mapping[str, Any]) -> dict[str, Any]:
    """A pod as JSON (shared between xdist workers): the common fields and the driver's handle."""
    return {
        "name": pod.name,
        "node": pod.node,
        "ip": str(pod.ip),
        "containers": [
            {"name": c.name, "argv": list(c.argv), "image": c.image} for c in pod.containers
        ],
        "handle": dict(handle),
    }


def pod_fields(data: Mapping[str, Any]) -> tuple[str, str, IPv4Address, tuple[Container, ...]]:
    containers = tuple(
        Container(c["name"], tuple(c["argv"]), c.get("image", "")) for c in data["containers"]
    )
    return data["name"], data["node"], IPv4Address(data["ip"]), containers


# --- a new pod's echo server, listening before any probe ---------------------------------------

ECHO_CONTAINER = "echo"  # the fleet's echo server, in every driver that runs its own
SOCKET_TABLES = ("/proc/net/tcp", "/proc/net/udp")
# systemd-run and CRI's StartContainer return once the process runs, not once it listens: a
# probe sent in between is refused, which says nothing of the network (seen in CI: a same-node
# cell refused 0.1 s after its pod was made). The pod's own socket tables are read, no packet
# is sent: this waits for a process to start, never for the network to work.
ECHO_LISTENS = waits.Policy("the new pods' echo servers listen (TCP and UDP)", 30, 0.2)


def echo_sockets_missing(tcp: Output, udp: Output, port: int = ECHO_PORT) -> str:
    """What a pod's echo server does not have yet, from its namespace's `cat /proc/net/tcp`
    and `cat /proc/net/udp`: "" when it listens on TCP `port` and has its UDP `port`."""
    missing = []
    for proto, output, state in (("TCP", tcp, TCP_LISTEN), ("UDP", udp, UDP_UNCONNECTED)):
        if output.exit_code != 0:
            return f"cannot read its sockets (exit {output.exit_code}: {output.stdout[-120:]!r})"
        try:
            if port not in socket_table_ports(output.stdout, state):
                missing.append(f"{proto} {port}")
        except ValueError as exc:
            return f"cannot read its sockets ({exc})"
    return f"not listening on {' and '.join(missing)}" if missing else ""


def wait_for_echo_servers(
    driver: Driver[Any],
    pods: Sequence[Pod[Any]],
    policy: waits.Policy = ECHO_LISTENS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every pod of `pods` that runs the echo server listens on the echo port
    (TCP and UDP), read from each pod's own namespace (one round trip per node a try); a
    DriverError names the pods that did not within the policy's bound."""
    pending = [p for p in pods if any(c.name == ECHO_CONTAINER for c in p.containers)]

    def read(node: str, mine: list[Pod[Any]]) -> dict[str, str]:
        commands = [driver.netns_command(p, ("cat", t)) for p in mine for t in SOCKET_TABLES]
        outputs = driver.runner.probe(node, *commands, timeout=15)
        pairs = zip(mine, outputs[0::2], outputs[1::2], strict=True)
        found = {p.name: echo_sockets_missing(tcp, udp) for p, tcp, udp in pairs}
        return {name: why for name, why in found.items() if why}

    def missing() -> dict[str, str]:
        by_node: dict[str, list[Pod[Any]]] = {}
        for p in pending:
            by_node.setdefault(p.node, []).append(p)
        found: dict[str, str] = {}
        for part in driver.runner.on_each_node(by_node, read).values():
            found.update(part)
        pending[:] = [p for p in pending if p.name in found]
        return found

    if not pending:
        return
    try:
        waits.wait_until(policy, missing, lambda found: not found, sleep)
    except waits.WaitTimeout as exc:
        raise DriverError(str(exc)) from None


def listening_or_removed(
    driver: Driver[H], pods: list[Pod[H]], policy: waits.Policy | None
) -> list[Pod[H]]:
    """`pods`, once their echo servers listen (`policy` None: at once). When one does not,
    every pod goes again (nothing half-made is left) and the DriverError says which did not,
    and what the removal could not undo."""
    if policy is None:
        return pods
    try:
        wait_for_echo_servers(driver, pods, policy)
    except DriverError as exc:
        try:
            driver.delete_pods(pods)
        except DriverError as left:
            raise DriverError(f"{exc}\n{left}") from None
        raise
    return pods


# --- observing cells: the one fan-out every driver's observe() uses --------------------------

CellResults = dict[str, probes.CellResult]
Route = tuple[str, Callable[[list[Probe]], CellResults]]


def observation(
    result: probes.CellResult,
    parse: Callable[[str], probes.Echo],
    reproduce: str,
    proto: probes.Proto = "tcp",
) -> rm.Observation:
    """An agent's cell result as a matrix observation (`parse` reads the echo server's
    answer: the client address it saw, and who answered; a DNS cell keeps its answer)."""
    if proto == "dns":
        return rm.Observation(
            reachable=result.ok,
            seen_source=None,
            reproduce=reproduce,
            detail="" if result.ok else result.error,
            seconds=result.total_s or 0.0,
            unknown=result.unknown,
            answer=result.answer.strip()[:300],
        )
    echo = parse(result.answer) if result.ok else probes.Echo(None)
    seen = echo.seen
    detail = "" if seen else (result.error or f"empty answer {result.answer[:80]!r}")
    return rm.Observation(
        reachable=seen is not None,
        seen_source=seen,
        reproduce=reproduce,
        detail=detail,
        seconds=result.total_s or 0.0,
        connect_s=result.connect_s,
        retransmits=result.retransmits,
        unknown=result.unknown,
        answered_by=echo.name if seen else None,
    )


def observe_cells(
    runner: NodeRunner,
    cells: Sequence[Probe],
    route: Callable[[Probe], Route],
    parse: Callable[[str], probes.Echo],
    reproduce: Callable[[Probe], str],
) -> dict[str, rm.Observation]:
    """Every driver's observe(): the cells grouped by `route` (a key and the call that probes
    that group at once: one agent call per source node, one exec per source pod, ...), the
    groups concurrently, each cell's answer an observation (`parse` reads what the echo
    server answered) with its exact one-cell reproduce line. Probes never assert."""
    groups: dict[str, tuple[Callable[[list[Probe]], CellResults], list[Probe]]] = {}
    for cell in cells:
        key, probe_group = route(cell)
        groups.setdefault(key, (probe_group, []))[1].append(cell)
    answers: CellResults = {}
    for part in runner.on_each_node(groups, lambda _, group: group[0](group[1])).values():
        answers.update(part)
    return {c.id: observation(answers[c.id], parse, reproduce(c), c.proto) for c in cells}


def agent_cells(
    runner: NodeRunner,
    node: str,
    python: str,
    mine: Sequence[Probe],
    cell: Callable[[Probe], probes.Cell],
) -> CellResults:
    """One agent call on `node` probing every cell of `mine` at once (`cell`: how the driver
    asks for one: its target, port, request bytes, the source sandbox's netns)."""
    request = probes.probe_request([cell(c) for c in mine])
    result, failure = runner.agent(node, python, request, 60)
    return probes.parse_probe_answer(result.stdout, [c.id for c in mine], failure)
