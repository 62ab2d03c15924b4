"""CNI-direct driver: the suite is the container runtime. On a node, a "pod" is a network
namespace (the sandbox) wired by the node's own CNI conflist, invoked plugin by plugin exactly
as the CNI spec says a runtime must; its "containers" are processes inside that namespace, run
as transient systemd units named after the pod (easy to find, stop and sweep). The ADD result
is cached on the node, as runtimes do, so DEL and CHECK get `prevResult`.

Setup, teardown and probes are batched per node through the node agent (e2e/agent.py): one
SSH round trip per node, whatever the number of pods or cells."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from e2e import probes
from e2e.drivers.base import (
    CommandLog,
    Container,
    DriverError,
    ExecResult,
    GuidePod,
    NodeChannel,
    NodeRunner,
    Pod,
    PodRequest,
    Probe,
    pod_fields,
    pod_json,
)
from lab import cni
from lab import reachability as rm
from lab.commands import Command, cmd, render_remote
from lab.config import Lab
from lab.parse import parse_ip_addr_networks

CONF_DIR = "/etc/cni/net.d"
RESULT_CACHE = "/var/lib/netlab/cni"
IFNAME = "eth0"
POD_PREFIX = "nl-"
ECHO_PORT = 8080
SETUP_TIMEOUT_S = 120


def cni_bin_dir(lab: Lab) -> str:
    """Debian's containernetworking-plugins vs kubeadm's kubernetes-cni."""
    return "/usr/lib/cni" if lab.os.family == "debian12" else "/opt/cni/bin"


def node_python(lab: Lab) -> str:
    """The interpreter the node agent runs with: CentOS 7 has only Python 2.7 as `python`."""
    return "python3" if lab.os.family == "debian12" else "python"


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


def start_container_argv(pod: str, container: Container) -> tuple[str, ...]:
    """The container's process, inside the sandbox, as a transient unit named after the pod."""
    return (
        "systemd-run",
        f"--unit={unit(pod, container.name)}",
        "--collect",
        "--quiet",
        "--property=KillMode=control-group",
        "ip",
        "netns",
        "exec",
        pod,
        *container.argv,
    )


def main_pids_argv(units: Sequence[str]) -> tuple[str, ...]:
    return ("systemctl", "show", "-p", "MainPID", "--value", *units)


def stop_containers_argv(pod: str) -> tuple[str, ...]:
    return ("systemctl", "stop", f"{pod}-*.service")


def echo_server(port: int = ECHO_PORT) -> Container:
    """A container that answers every TCP connection with the client address it saw."""
    return Container(
        "echo", ("socat", f"TCP-LISTEN:{port},fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR")
    )


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

    def __init__(
        self, lab: Lab, channels: Mapping[str, NodeChannel], log: CommandLog | None = None
    ) -> None:
        self.lab = lab
        self.runner = NodeRunner(channels, log)
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
        (listing,) = self.runner.probe(node, cmd("ls", "-1", CONF_DIR))
        names = sorted(n for n in listing.stdout.split() if n.endswith(".conflist"))
        if not names:
            raise DriverError(
                f"{node}: no .conflist in {CONF_DIR}",
                self.runner.run(node, cmd("ls", "-l", CONF_DIR)),
            )
        path = f"{CONF_DIR}/{names[0]}"
        content = json.loads(self.runner.must(node, cmd("cat", path), f"cat {path}").stdout)
        with self._lock:
            self._conflists[node] = (path, content)
        return path, content

    def node_subnets(self) -> dict[str, tuple[IPv4Network, ...]]:
        """What each node's kernel says: the network of the pod bridge's address (the bridge
        plugin's gateway on the node's pod subnet)."""
        bridge = self.lab.pod_network.bridge
        work = {n: None for n in self.nodes}

        def read(node: str, _: None) -> tuple[IPv4Network, ...]:
            (out,) = self.runner.probe(node, cmd("ip", "-j", "-4", "addr", "show", "dev", bridge))
            if not out.ok:
                return ()
            return parse_ip_addr_networks(json.loads(out.stdout or "[]"))

        return self.runner.on_each_node(work, read)

    # -- CNI verbs --------------------------------------------------------------------------

    def calls(
        self, verb: cni.Verb, node: str, container_id: str, conflist: Mapping[str, Any] | None
    ) -> tuple[probes.CniCall, ...]:
        """The plugin calls of `verb` in the runtime's order, prevResult left to the agent."""
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
                probes.CniCall(
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
        """Every plugin of the list for `verb` in one round trip; ADD chains prevResult."""
        step = probes.Step(cni=self.calls(verb, node, container_id, conflist), prev=prev)
        answers, call = self._jobs(node, [probes.Job(container_id, (step,))])
        result = answers[container_id]
        if not result.ok:
            last = result.steps[-1] if result.steps else None
            raise CniCallFailed(
                f"{node}: CNI {verb} for {container_id} failed: {result.failure()}",
                cni.parse_error(last.stdout) if last else None,
                self._plugin_reproduce(node, step, last) or call,
            )
        out = result.steps[-1].stdout.strip()
        return json.loads(out) if verb == "ADD" and out else None

    def _plugin_reproduce(
        self, node: str, step: probes.Step, failed: probes.StepResult | None
    ) -> ExecResult | None:
        """The failing plugin alone, with exactly the config it was given: the command a
        person pastes to see the same answer again."""
        if failed is None or failed.config is None or failed.plugin is None:
            return None
        env = next((c.env for c in step.cni if c.plugin == failed.plugin), ())
        argv = ("env", *(f"{k}={v}" for k, v in env), failed.plugin)
        command = Command(argv, stdin=json.dumps(failed.config, sort_keys=True))
        reproduce = self.runner.channels[node].reproduce(render_remote(command))
        return ExecResult(failed.exit_code, failed.stdout, failed.stderr, reproduce)

    def check(self, pod: CniPod) -> None:
        self.invoke("CHECK", pod.node, pod.name, pod.handle.result)

    # -- pods -------------------------------------------------------------------------------

    def fleet_containers(self) -> tuple[Container, ...]:
        return (echo_server(),)

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

    def _setup_job(self, request: PodRequest) -> probes.Job:
        units = [unit(request.name, c.name) for c in request.containers]
        steps = [
            probes.Step(argv=("ip", "netns", "add", request.name)),
            probes.Step(
                argv=("ip", "netns", "exec", request.name, "ip", "link", "set", "lo", "up")
            ),
            probes.Step(
                cni=self.calls("ADD", request.node, request.name, None),
                cache=f"{RESULT_CACHE}/{request.name}.json",
            ),
            *(probes.Step(argv=start_container_argv(request.name, c)) for c in request.containers),
        ]
        if units:
            steps.append(probes.Step(argv=main_pids_argv(units)))
        return probes.Job(request.name, tuple(steps))

    def _teardown_job(self, name: str, result: Mapping[str, Any] | None, node: str) -> probes.Job:
        return probes.Job(
            name,
            (
                probes.Step(argv=stop_containers_argv(name)),
                probes.Step(cni=self.calls("DEL", node, name, None), prev=result),
                probes.Step(argv=("rm", "-f", f"{RESULT_CACHE}/{name}.json")),
                probes.Step(argv=("ip", "netns", "delete", name)),
            ),
            keep_going=True,
        )

    def _jobs(
        self, node: str, jobs: Sequence[probes.Job]
    ) -> tuple[dict[str, probes.JobResult], ExecResult]:
        """Jobs on one node in one agent call: each job's result, and the call itself."""
        result, failure = self.runner.agent(
            node, self.python, probes.steps_request(jobs), SETUP_TIMEOUT_S
        )
        return probes.parse_steps_answer(result.stdout, [j.id for j in jobs], failure), result

    def create_pods(self, requests: Sequence[PodRequest]) -> list[CniPod]:
        by_node: dict[str, list[PodRequest]] = {}
        for r in requests:
            if r.node not in self.runner.channels:
                raise ValueError(f"node {r.node!r} is not a node of lab {self.lab.name}")
            by_node.setdefault(r.node, []).append(r)

        def setup(node: str, mine: list[PodRequest]) -> dict[str, probes.JobResult]:
            return self._jobs(node, [self._setup_job(r) for r in mine])[0]

        outcomes = self.runner.on_each_node(by_node, setup)
        pods: dict[str, CniPod] = {}
        failures: list[str] = []
        for node, mine in by_node.items():
            for r in mine:
                try:
                    pods[r.name] = self._pod_from(r, outcomes[node][r.name])
                except DriverError as exc:
                    failures.append(str(exc))
        if failures:  # nothing half-made is left: the good pods go too
            broken = [r for r in requests if r.name not in pods]
            self.delete_pods(list(pods.values()))
            self._teardown_names({n: [r.name for r in broken if r.node == n] for n in by_node})
            raise DriverError(
                f"{len(failures)} of {len(requests)} pod(s) did not start:\n"
                + "\n".join(f"  - {f}" for f in failures)
            )
        return [pods[r.name] for r in requests]

    def _pod_from(self, request: PodRequest, job: probes.JobResult) -> CniPod:
        where = f"{request.node}: pod {request.name}"
        if not job.ok:
            raise DriverError(f"{where}: {job.failure()}")
        add = job.steps[2]
        try:
            result = json.loads(add.stdout)
            addresses = cni.parse_result(add.stdout).sandbox_addresses
        except ValueError as exc:
            raise DriverError(f"{where}: ADD answered no valid result ({exc})") from None
        if not addresses:
            raise DriverError(f"{where}: ADD returned no sandbox address: {add.stdout[:300]}")
        pids: dict[str, int] = {}
        if request.containers:
            words = job.steps[-1].stdout.split()
            if len(words) != len(request.containers) or not all(w.isdigit() for w in words):
                raise DriverError(f"{where}: cannot read the containers' PIDs from {words}")
            pids = {c.name: int(w) for c, w in zip(request.containers, words, strict=True)}
            dead = [name for name, pid in pids.items() if pid == 0]
            if dead:
                raise DriverError(f"{where}: container(s) {dead} did not start")
        return Pod(
            request.name,
            request.node,
            addresses[0].ip,
            request.containers,
            CniHandle(result, pids),
        )

    def delete_pods(self, pods: Sequence[CniPod]) -> None:
        """Stop the containers, CNI DEL (with the cached ADD result), drop the sandbox; every
        part runs even if an earlier one failed; all failures are raised together at the end."""
        by_node: dict[str, list[CniPod]] = {}
        for pod in pods:
            by_node.setdefault(pod.node, []).append(pod)

        def teardown(node: str, mine: list[CniPod]) -> dict[str, probes.JobResult]:
            jobs = [self._teardown_job(p.name, p.handle.result, node) for p in mine]
            return self._jobs(node, jobs)[0]

        outcomes = self.runner.on_each_node(by_node, teardown)
        failures = [
            f"{node}: {name}: {_teardown_failure(job)}"
            for node, jobs in outcomes.items()
            for name, job in jobs.items()
            if not _torn_down(job)
        ]
        if failures:
            raise DriverError("teardown failed:\n" + "\n".join(f"  - {f}" for f in failures))

    def _teardown_names(self, names: Mapping[str, Sequence[str]]) -> None:
        """Tear down sandboxes known only by name (reading the cached ADD result first)."""
        for node, mine in names.items():
            if not mine:
                continue
            cached = self.runner.probe(
                node, *(cmd("cat", f"{RESULT_CACHE}/{n}.json") for n in mine)
            )
            results = [json.loads(o.stdout) if o.ok and o.stdout.strip() else None for o in cached]
            self._jobs(
                node,
                [self._teardown_job(n, r, node) for n, r in zip(mine, results, strict=True)],
            )

    def exec(
        self, pod: CniPod, container: str, argv: tuple[str, ...], timeout: float = 30
    ) -> ExecResult:
        """Run argv in the network namespace of the container's own process."""
        pid = pod.handle.pids[container]
        return self.runner.run(pod.node, cmd("nsenter", "-t", str(pid), "-n", "--", *argv), timeout)

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        return self.runner.run(node, Command(argv), timeout)

    def netns_exec(self, pod: CniPod, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        return self.runner.run(pod.node, cmd("ip", "netns", "exec", pod.name, *argv), timeout)

    # -- probes -----------------------------------------------------------------------------

    def reproduce_cell(self, cell: Probe) -> str:
        argv = client_probe(str(cell.target.ip))
        if not isinstance(cell.source, str):
            pid = next(iter(cell.source.handle.pids.values()))
            argv = ("nsenter", "-t", str(pid), "-n", "--", *argv)
        channel = self.runner.channels[cell.source_node]
        return channel.reproduce(render_remote(Command(argv)))

    def observe(self, cells: Sequence[Probe]) -> dict[str, rm.Observation]:
        by_node: dict[str, list[Probe]] = {}
        for cell in cells:
            by_node.setdefault(cell.source_node, []).append(cell)

        def run(node: str, mine: list[Probe]) -> dict[str, probes.CellResult]:
            request = probes.probe_request(
                [
                    probes.Cell(
                        c.id,
                        str(c.target.ip),
                        ECHO_PORT,
                        netns=None if isinstance(c.source, str) else c.source.handle.netns_of(),
                    )
                    for c in mine
                ]
            )
            result, failure = self.runner.agent(node, self.python, request, 60)
            return probes.parse_probe_answer(result.stdout, [c.id for c in mine], failure)

        answers = self.runner.on_each_node(by_node, run)
        return {
            c.id: observation(
                answers[c.source_node][c.id], probes.first_line, self.reproduce_cell(c)
            )
            for c in cells
        }

    # -- leftovers --------------------------------------------------------------------------

    def sweep(self, keep_prefix: str) -> list[str]:
        """Remove every sandbox of earlier runs (name starts with nl- but not keep_prefix)."""
        stale: dict[str, list[str]] = {}
        for node in self.nodes:
            (listing,) = self.runner.probe(node, cmd("ip", "netns", "list", sudo=False))
            names = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
            stale[node] = [
                n for n in names if n.startswith(POD_PREFIX) and not n.startswith(keep_prefix)
            ]
        self._teardown_names(stale)
        return [f"{node}/{name}" for node, names in stale.items() for name in names]

    def dump_pod(self, pod: CniPod) -> dict[str, Any]:
        return pod_json(pod, {"result": dict(pod.handle.result), "pids": dict(pod.handle.pids)})

    def load_pod(self, data: Mapping[str, Any]) -> CniPod:
        name, node, ip, containers = pod_fields(data)
        handle = CniHandle(data["handle"]["result"], dict(data["handle"]["pids"]))
        return Pod(name, node, ip, containers, handle)


def _torn_down(job: probes.JobResult) -> bool:
    """Teardown steps: stop units (none may be running: fine), DEL (must pass), rm (fine),
    netns delete (the sandbox may be gone already, e.g. after a reboot: fine)."""
    if job.error:
        return False
    return len(job.steps) >= 2 and job.steps[1].ok


def _teardown_failure(job: probes.JobResult) -> str:
    if job.error or len(job.steps) < 2:
        return job.failure() or "no answer for the teardown"
    step = job.steps[1]
    text = (step.stdout.strip() or step.stderr.strip())[:400]
    return f"CNI DEL ({step.plugin or 'chain'}) exited {step.exit_code}: {text}"


def observation(
    result: probes.CellResult,
    address: Any,
    reproduce: str,
) -> rm.Observation:
    """An agent's cell result as a matrix observation (`address` reads the client address
    the echo server answered)."""
    seen = address(result.answer) if result.ok else None
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
    )
