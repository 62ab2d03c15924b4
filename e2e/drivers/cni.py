"""CNI-direct driver: the suite is the container runtime. On a node, a "pod" is a network
namespace (the sandbox) wired by the node's own CNI conflist, invoked plugin by plugin exactly
as the CNI spec says a runtime must; its "containers" are processes inside that namespace, run
as transient systemd units named after the pod (easy to find, stop and sweep). The ADD result
is cached on the node, as runtimes do, so DEL and CHECK get `prevResult`.

Setup, teardown and probes are batched per node through the node agent (e2e/agent.py): one
SSH round trip per node, whatever the number of pods or cells."""

from __future__ import annotations

import contextlib
import json
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from e2e import cnirt, probes
from e2e.drivers.base import (
    ECHO_CONTAINER,
    ECHO_LISTENS,
    CommandLog,
    Container,
    DriverError,
    ExecResult,
    GuidePod,
    NodeRunner,
    Pod,
    PodRequest,
    Probe,
    Route,
    agent_cells,
    listening_or_removed,
    node_python,
    observe_cells,
    pod_fields,
    pod_json,
    runner_for,
)
from lab.adapters.protocols import NodeChannel
from lab.common import waits
from lab.common.commands import Command, cmd, render_remote
from lab.hosts import compat
from lab.hosts.os import profile_of
from lab.hosts.parse import parse_ip_oneline_interfaces
from lab.model.config import Lab
from lab.net import cni
from lab.net import reachability as rm
from lab.runtime import echo, images

CONF_DIR = "/etc/cni/net.d"
RESULT_CACHE = "/var/lib/netlab/cni"
IFNAME = "eth0"
POD_PREFIX = "nl-"
ECHO_PORT = images.ECHO_PORT
SETUP_TIMEOUT_S = 120


def cni_bin_dir(lab: Lab) -> str:
    """Where the node's CNI plugins live (its OS profile says)."""
    return profile_of(lab).cni_bin_dir


def bridge_subnets(runner: NodeRunner, lab: Lab) -> dict[str, tuple[IPv4Network, ...]]:
    """What each node's kernel says: the network of the pod bridge's address (the bridge
    plugin's gateway on the node's pod subnet), whoever calls the plugin (we or a runtime)."""
    bridge = lab.pod_network.bridge

    def read(node: str, _: None) -> tuple[IPv4Network, ...]:
        (out,) = runner.probe(node, cmd("ip", "-o", "-4", "addr", "show", "dev", bridge))
        if not out.ok:
            return ()
        found = parse_ip_oneline_interfaces(out.stdout).get(bridge, ())
        return tuple(dict.fromkeys(i.network for i in found))

    return runner.on_each_node({n: None for n in runner.channels}, read)


class CniCallFailed(DriverError):
    def __init__(self, message: str, error: cni.CniError | None, result: ExecResult) -> None:
        self.error = error
        super().__init__(message, result)


@dataclass(frozen=True)
class CniHandle:
    result: Mapping[str, Any]  # the ADD result the runtime (we) cached
    pids: Mapping[str, int]  # container name -> its main PID on the node

    def netns_of(self, container: str | None = None) -> str | None:
        """/proc/PID/ns/net of a container's process (the first one by default)."""
        if not self.pids:
            return None
        pid = self.pids[container] if container else next(iter(self.pids.values()))
        return f"/proc/{pid}/ns/net"


CniPod = Pod[CniHandle]


def unit(pod: str, container: str) -> str:
    return f"{pod}-{container}"


def start_container_argv(lab: Lab, pod: str, container: Container) -> tuple[str, ...]:
    """The container's process, inside the sandbox, as a transient unit named after the pod
    (the systemd-run flags the node's systemd has: lab.hosts.compat)."""
    systemd = profile_of(lab).systemd
    argv = ("env", f"{echo.POD_NAME_ENV}={pod}", *container.argv)  # as the downward API
    return compat.start_in_netns(systemd, unit(pod, container.name), pod, argv)


def main_pids_argv(lab: Lab, units: Sequence[str]) -> tuple[str, ...]:
    return compat.main_pids_argv(profile_of(lab).systemd, units)


def stop_containers_argv(pod: str) -> tuple[str, ...]:
    return ("systemctl", "stop", f"{pod}-*.service")


def echo_server(port: int = ECHO_PORT, python: str = "python3") -> Container:
    """A container that answers every TCP connection and UDP datagram with the client address
    it saw, its pod's name and its own address (lab/runtime/echo.py: identity_echo_args),
    with the node's own tools (`python`: the node's interpreter)."""
    return Container(ECHO_CONTAINER, echo.identity_echo_args(port, python))


def client_probe(ip: str, port: int = ECHO_PORT, timeout_s: int = 5) -> tuple[str, ...]:
    """Connect, print what the server answered (the source address it saw), bounded: the
    one-cell command a person pastes to rerun a cell the agent probed."""
    return ("timeout", str(timeout_s), "socat", "-u", f"TCP:{ip}:{port},connect-timeout=3", "-")


# nginx's stand-in answers every connection on :80 with nginx's welcome line (socat strips the
# quotes of its address strings, so the reply is a plain `echo`); busybox's idles
GUIDE_POD = GuidePod(
    containers=(
        Container("busybox", ("sh", "-c", "while true; do echo hello; sleep 1; done")),
        Container(
            "nginx", ("socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo Welcome to nginx!")
        ),
    ),
    client="busybox",
    server="nginx",
    port=80,
    banner="Welcome to nginx!",
)


class CniDriver:
    name = "cni"
    protocols: tuple[str, ...] = ("tcp", "udp")

    def __init__(
        self,
        lab: Lab,
        channels: Mapping[str, NodeChannel] | NodeRunner,
        log: CommandLog | None = None,
        echo_listens: waits.Policy | None = ECHO_LISTENS,
    ) -> None:
        self.lab = lab
        self.runner = runner_for(lab, channels, log)
        self.echo_listens = echo_listens  # None: pods are handed out unawaited (unit tests)
        self.bin_dir = cni_bin_dir(lab)
        self.python = node_python(lab)
        self._conflists: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self.runner.channels)

    # -- the node's network configuration ---------------------------------------------------

    def conflist(self, node: str) -> tuple[str, dict[str, Any]]:
        """(path, content) of the conflist the node's runtime would use: the first in
        /etc/cni/net.d in lexical order, as kubelet picks it."""
        with self._lock:
            if node in self._conflists:
                return self._conflists[node]
        # one round trip: the first .conflist's name, then its content
        script = (
            f"cd {CONF_DIR} && f=$(ls -1 | LC_ALL=C sort | grep '[.]conflist$' | head -n 1)"
            ' && [ -n "$f" ] && echo "$f" && cat "$f"'
        )
        res = self.runner.run(node, Command(("sh", "-c", script)))
        name, _, text = res.stdout.partition("\n")
        if not res.ok or not name:
            raise DriverError(
                f"{node}: no .conflist in {CONF_DIR}",
                self.runner.run(node, cmd("ls", "-l", CONF_DIR)),
            )
        path = f"{CONF_DIR}/{name}"
        try:
            content = json.loads(text)
        except ValueError as exc:
            raise DriverError(f"{node}: {path} is no JSON ({exc})", res) from None
        with self._lock:
            self._conflists[node] = (path, content)
        return path, content

    def node_subnets(self) -> dict[str, tuple[IPv4Network, ...]]:
        return bridge_subnets(self.runner, self.lab)

    # -- CNI verbs --------------------------------------------------------------------------

    def calls(
        self, verb: cni.Verb, node: str, container_id: str, conflist: Mapping[str, Any] | None
    ) -> tuple[cnirt.Call, ...]:
        """The plugin calls of `verb` in the runtime's order, prevResult left to the chain."""
        conf = conflist if conflist is not None else self.conflist(node)[1]
        out = []
        for index in cni.plugin_order(conf, verb):
            inv = cni.invocation(
                verb,
                conf,
                index,
                container_id,
                f"/var/run/netns/{container_id}",
                IFNAME,
                self.bin_dir,
                None,
            )
            out.append(
                cnirt.Call(
                    f"{self.bin_dir}/{inv.plugin}", inv.env, cni.plugin_config(conf, index, None)
                )
            )
        return tuple(out)

    def call_plugin(
        self,
        verb: cni.Verb,
        node: str,
        conflist: dict[str, Any],
        index: int,
        container_id: str,
        prev: dict[str, Any] | None,
        timeout: float = 60,
    ) -> tuple[ExecResult, cni.Invocation]:
        """One plugin, called on its own (the contract tests look at single answers)."""
        inv = cni.invocation(
            verb,
            conflist,
            index,
            container_id,
            f"/var/run/netns/{container_id}",
            IFNAME,
            self.bin_dir,
            prev,
        )
        command = Command(inv.argv(self.bin_dir), stdin=inv.stdin)
        return self.runner.run(node, command, timeout), inv

    def invoke(
        self,
        verb: cni.Verb,
        node: str,
        container_id: str,
        prev: Mapping[str, Any] | None,
        conflist: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Every plugin of the list for `verb` in one round trip (a shell chain: ADD passes
        each result on; CHECK and DEL give every plugin `prev`, the cached ADD result)."""
        calls = self.calls(verb, node, container_id, conflist)
        first = shlex.quote(json.dumps(dict(prev))) if prev is not None else "''"
        script = cnirt.chain_script(calls, first)
        call = self.runner.run(node, Command(("sh", "-c", script)), SETUP_TIMEOUT_S)
        outcome = cnirt.chain_outcome(call.stdout)
        if outcome.failure is not None or not call.ok:
            raise CniCallFailed(
                f"{node}: CNI {verb} for {container_id} failed: {outcome.why()}",
                cni.parse_error(outcome.failure.answer) if outcome.failure else None,
                self._plugin_reproduce(node, calls, outcome.failure) or call,
            )
        return outcome.result if verb == "ADD" else None

    def _plugin_reproduce(
        self, node: str, calls: Sequence[cnirt.Call], failed: cnirt.ChainFailure | None
    ) -> ExecResult | None:
        """The failing plugin alone, with exactly the config it was given (its prevResult as
        the chain had it): the command a person pastes to see the same answer again."""
        call = next((c for c in calls if failed and c.plugin == failed.plugin), None)
        if failed is None or call is None:
            return None
        config = dict(call.config)
        if failed.prev.strip():
            with contextlib.suppress(ValueError):  # not JSON: shown as the chain had it
                config["prevResult"] = json.loads(failed.prev)
        argv = ("env", *(f"{k}={v}" for k, v in call.env), call.plugin)
        command = Command(argv, stdin=json.dumps(config, sort_keys=True))
        reproduce = self.runner.channels[node].reproduce(render_remote(command))
        return ExecResult(failed.exit_code, failed.answer, "", reproduce)

    def check(self, pod: CniPod) -> None:
        self.invoke("CHECK", pod.node, pod.name, pod.handle.result)

    # -- pods -------------------------------------------------------------------------------

    def fleet_containers(self, index: int = 0) -> tuple[Container, ...]:
        return (echo_server(python=self.python),)

    def client_of(self, pod: CniPod) -> str:
        return pod.containers[0].name  # every process runs the node's own tools

    def guide_pod(self) -> GuidePod:
        return GUIDE_POD

    def create_sandbox(self, node: str, name: str) -> None:
        self.runner.must(
            node,
            Command(("sh", "-ec", f"ip netns add {name}\nip netns exec {name} ip link set lo up")),
            f"create sandbox {name}",
        )

    def _setup(self, request: PodRequest) -> cnirt.PodSetup:
        units = [unit(request.name, c.name) for c in request.containers]
        return cnirt.PodSetup(
            request.name,
            self.calls("ADD", request.node, request.name, None),
            f"{RESULT_CACHE}/{request.name}.json",
            tuple(start_container_argv(self.lab, request.name, c) for c in request.containers),
            main_pids_argv(self.lab, units) if units else (),
        )

    def _teardown(
        self, node: str, name: str, result: Mapping[str, Any] | None
    ) -> cnirt.PodTeardown:
        return cnirt.PodTeardown(
            name,
            self.calls("DEL", node, name, None),
            f"{RESULT_CACHE}/{name}.json",
            result,
            stop_containers_argv(name),
        )

    def _script(self, node: str, script: str) -> tuple[dict[str, cnirt.PodOutcome], ExecResult]:
        call = self.runner.run(node, Command(("sh", "-c", script)), SETUP_TIMEOUT_S)
        return cnirt.parse_pods(call.stdout), call

    def create_pods(self, requests: Sequence[PodRequest]) -> list[CniPod]:
        """Every pod of a node set up by one shell script (one round trip per node, the nodes
        at once); if any pod fails, every pod of the request is torn down again."""
        by_node: dict[str, list[PodRequest]] = {}
        for r in requests:
            if r.node not in self.runner.channels:
                raise ValueError(f"node {r.node!r} is not a node of lab {self.lab.name}")
            by_node.setdefault(r.node, []).append(r)

        def setup(node: str, mine: list[PodRequest]) -> dict[str, cnirt.PodOutcome]:
            return self._script(node, cnirt.setup_script([self._setup(r) for r in mine]))[0]

        outcomes = self.runner.on_each_node(by_node, setup)
        pods: dict[str, CniPod] = {}
        failures: list[str] = []
        for node, mine in by_node.items():
            for r in mine:
                outcome = outcomes[node].get(r.name, cnirt.PodOutcome(r.name))
                try:
                    pods[r.name] = self._pod_from(r, outcome)
                except DriverError as exc:
                    failures.append(str(exc))
        if failures:  # nothing half-made is left: the good pods go too
            self._teardown_all({n: [(r.name, None) for r in mine] for n, mine in by_node.items()})
            raise DriverError(
                f"{len(failures)} of {len(requests)} pod(s) did not start:\n"
                + "\n".join(f"  - {f}" for f in failures)
            )
        return listening_or_removed(self, [pods[r.name] for r in requests], self.echo_listens)

    def _pod_from(self, request: PodRequest, outcome: cnirt.PodOutcome) -> CniPod:
        where = f"{request.node}: pod {request.name}"
        if not outcome.ok:
            raise DriverError(f"{where}: {outcome.why()}")
        result = outcome.result
        try:
            addresses = cni.parse_result(json.dumps(result)).sandbox_addresses if result else ()
        except ValueError as exc:
            raise DriverError(f"{where}: ADD answered no valid result ({exc})") from None
        if result is None or not addresses:
            raise DriverError(f"{where}: ADD returned no sandbox address: {result}")
        pids: dict[str, int] = {}
        if request.containers:
            try:  # `N` or systemd 219's `MainPID=N`
                found = compat.parse_main_pids(" ".join(outcome.pids))
            except ValueError:
                found = []
            if len(found) != len(request.containers):
                raise DriverError(f"{where}: cannot read the containers' PIDs from {outcome.pids}")
            pids = {c.name: pid for c, pid in zip(request.containers, found, strict=True)}
            dead = [name for name, pid in pids.items() if pid == 0]
            if dead:
                raise DriverError(f"{where}: container(s) {dead} did not start")
        return Pod(
            request.name, request.node, addresses[0].ip, request.containers, CniHandle(result, pids)
        )

    def _teardown_all(
        self, wanted: Mapping[str, Sequence[tuple[str, Mapping[str, Any] | None]]]
    ) -> dict[str, dict[str, cnirt.PodOutcome]]:
        """Tear pods down, per node in one script: (name, ADD result or None: read the cache)."""

        def teardown(
            node: str, mine: Sequence[tuple[str, Mapping[str, Any] | None]]
        ) -> dict[str, cnirt.PodOutcome]:
            scripts = [self._teardown(node, name, result) for name, result in mine]
            return self._script(node, cnirt.teardown_script(scripts))[0]

        return self.runner.on_each_node({n: m for n, m in wanted.items() if m}, teardown)

    def delete_pods(self, pods: Sequence[CniPod]) -> None:
        """Stop the containers, CNI DEL (with the cached ADD result), drop the sandbox; every
        part runs even if an earlier one failed; all failures are raised together at the end."""
        by_node: dict[str, list[tuple[str, Mapping[str, Any] | None]]] = {}
        for pod in pods:
            by_node.setdefault(pod.node, []).append((pod.name, pod.handle.result))
        outcomes = self._teardown_all(by_node)
        failures = [
            f"{node}: {name}: {_teardown_failure(outcomes[node].get(name))}"
            for node, mine in by_node.items()
            for name, _ in mine
            if (outcomes[node].get(name) or cnirt.PodOutcome(name)).del_code != 0
        ]
        if failures:
            raise DriverError("teardown failed:\n" + "\n".join(f"  - {f}" for f in failures))

    def exec(
        self, pod: CniPod, container: str, argv: tuple[str, ...], timeout: float = 30
    ) -> ExecResult:
        """Run argv in the network namespace of the container's own process."""
        pid = pod.handle.pids[container]
        return self.runner.run(pod.node, cmd("nsenter", "-t", str(pid), "-n", "--", *argv), timeout)

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        return self.runner.run(node, Command(argv), timeout)

    def netns_exec(self, pod: CniPod, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        return self.runner.run(pod.node, self.netns_command(pod, argv), timeout)

    def netns_command(self, pod: CniPod, argv: tuple[str, ...]) -> Command:
        return cmd("ip", "netns", "exec", pod.name, *argv)

    # -- probes -----------------------------------------------------------------------------

    def reproduce_cell(self, cell: Probe) -> str:
        if cell.proto != "tcp":
            netns = None if isinstance(cell.source, str) else cell.source.handle.netns_of()
            return self.runner.reproduce_agent(cell.source_node, cell.cell(netns))
        argv = client_probe(cell.host, cell.dport)
        if not isinstance(cell.source, str):
            pid = next(iter(cell.source.handle.pids.values()))
            argv = ("nsenter", "-t", str(pid), "-n", "--", *argv)
        channel = self.runner.channels[cell.source_node]
        return channel.reproduce(render_remote(Command(argv)))

    def observe(self, cells: Sequence[Probe]) -> dict[str, rm.Observation]:
        """Every source, node or sandbox, through its node's agent: one call per node."""

        def cell(c: Probe) -> probes.Cell:
            return c.cell(None if isinstance(c.source, str) else c.source.handle.netns_of())

        def route(c: Probe) -> Route:
            node = c.source_node
            return node, lambda mine: agent_cells(self.runner, node, self.python, mine, cell)

        return observe_cells(self.runner, cells, route, probes.parse_echo, self.reproduce_cell)

    # -- leftovers --------------------------------------------------------------------------

    def sweep(self, keep_prefix: str) -> list[str]:
        """Remove every sandbox of earlier runs (name starts with nl- but not keep_prefix)."""
        return self._remove_where(
            lambda n: n.startswith(POD_PREFIX) and not n.startswith(keep_prefix)
        )

    def remove_run(self, run_id: str) -> list[str]:
        """Remove every sandbox of run `run_id` (an interrupted run's); what is still there."""
        mine = f"{POD_PREFIX}{run_id}-"
        self._remove_where(lambda n: n.startswith(mine))
        left = self._sandboxes()
        return [f"{node}/{n}" for node, names in left.items() for n in names if n.startswith(mine)]

    def _sandboxes(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for node in self.nodes:
            (listing,) = self.runner.probe(node, cmd("ip", "netns", "list"))
            found[node] = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
        return found

    def _remove_where(self, chosen: Callable[[str], bool]) -> list[str]:
        stale = {node: [n for n in names if chosen(n)] for node, names in self._sandboxes().items()}
        self._teardown_all({n: [(name, None) for name in names] for n, names in stale.items()})
        return [f"{node}/{name}" for node, names in stale.items() for name in names]

    def dump_pod(self, pod: CniPod) -> dict[str, Any]:
        return pod_json(pod, {"result": dict(pod.handle.result), "pids": dict(pod.handle.pids)})

    def load_pod(self, data: Mapping[str, Any]) -> CniPod:
        name, node, ip, containers = pod_fields(data)
        handle = CniHandle(data["handle"]["result"], dict(data["handle"]["pids"]))
        return Pod(name, node, ip, containers, handle)


def _teardown_failure(outcome: cnirt.PodOutcome | None) -> str:
    if outcome is None or outcome.del_code is None:
        return "no outcome reported for its teardown"
    if outcome.failure is not None:
        return (
            f"CNI DEL ({outcome.failure.plugin}) exited {outcome.failure.exit_code}: "
            + (outcome.failure.answer.strip()[:400])
        )
    return f"CNI DEL exited {outcome.del_code}"
