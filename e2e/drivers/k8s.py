"""Kubernetes workload driver: pods are real Kubernetes pods, created and inspected with
`kubectl --kubeconfig /etc/kubernetes/admin.conf ...` over SSH on the control-plane node.

Every object the suite creates lives in a per-test namespace labelled with the run
(`netlab.io/run=<run id>`, `netlab.io/e2e=true`), so a sweep finds leftovers of earlier runs by
label. Manifests are rendered by `lab.k8s` and fed to `kubectl apply -f -` on stdin; kubectl's
JSON answers are parsed by `lab.k8s` too. Every result carries one pasteable command
(`python -m lab ssh LAB NODE -- '<remote command>'`) that runs the same thing again.
"""

from __future__ import annotations

import dataclasses
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from e2e import probes
from e2e.drivers.base import (
    CellResults,
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
    node_python,
    observe_cells,
    pod_fields,
    pod_json,
    runner_for,
)
from e2e.drivers.kube import ENDPOINTS_READY, NAMESPACE_READY, KubeCluster
from lab import k8s
from lab.adapters.protocols import NodeChannel
from lab.common import waits
from lab.common.commands import Command, cmd, render_remote
from lab.model.config import Lab
from lab.net import reachability as rm

# The images are the lab's kubernetes.e2e_images (the names provisioning pre-pulled, through
# their mirrors, on every node): the guide's busybox + nginx pod, and agnhost
# `netexec --http-port=8080` as the echo server (/hostname: the pod name, /clientip: "ip:port").
ECHO_PORT = 8080

POD_RUNNING = waits.Policy("pod Running with every container ready", timeout_s=300, interval_s=2)

# waiting reasons that no amount of waiting fixes
FATAL_WAITING = frozenset(
    {"InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"}
)


class PodNotRunning(DriverError):
    """A test pod did not come up; says what its containers are doing and how to look."""


@dataclass(frozen=True)
class K8sHandle:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    container_ids: Mapping[str, str] = field(default_factory=dict)  # name -> docker://<id>


K8sPod = Pod[K8sHandle]
PROBE_MARK = "@@NETLAB-CELL"


def _terminal(pod: k8s.ClusterPod) -> bool:
    if pod.phase in ("Failed", "Succeeded"):
        return True
    return any(
        s.state == "terminated" or (s.state == "waiting" and s.reason in FATAL_WAITING)
        for s in pod.statuses
    )


class K8sDriver:
    """The Driver protocol over kubectl. A driver is bound to one namespace (`in_namespace`)
    for pods and services; unbound, it reads cluster-wide state (nodes, kube-system, ...)."""

    name = "k8s"
    # agnhost netexec answers UDP one command per datagram (`clientip` or `hostname`): a UDP
    # cell asks both from one socket (one flow, so one endpoint answers both: `agnhost_cell`)
    # and learns the source and who answered, as over TCP
    protocols: tuple[str, ...] = ("tcp", "udp")

    def __init__(
        self,
        lab: Lab,
        channels: Mapping[str, NodeChannel] | NodeRunner,
        run_id: str,
        namespace: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pod_wait: waits.Policy = POD_RUNNING,
        namespace_wait: waits.Policy = NAMESPACE_READY,
        endpoints_wait: waits.Policy = ENDPOINTS_READY,
        log: CommandLog | None = None,
    ) -> None:
        if lab.kubernetes is None:
            raise ValueError(f"lab {lab.name} has no kubernetes section")
        if lab.control_plane is None:
            raise ValueError(f"lab {lab.name} has no control-plane node")
        k8s.run_labels(run_id)  # fail early on a run id that is no valid label value
        self.lab = lab
        self.runner = runner_for(lab, channels, log)
        self.run_id = run_id
        self.namespace = namespace
        images = lab.kubernetes.e2e_images
        self.busybox_image = images.busybox.image
        self.nginx_image = images.nginx.image
        self.agnhost_image = images.echo.image
        self.sleep = sleep
        self.pod_wait = pod_wait
        self.namespace_wait = namespace_wait
        self.endpoints_wait = endpoints_wait
        self.control_plane = lab.control_plane.name
        self.cluster = KubeCluster(lab, self.runner, run_id, sleep, namespace_wait, endpoints_wait)
        self._netns: dict[str, str] = {}  # pod name -> /proc/PID/ns/net (Service cells)
        self._netns_lock = threading.Lock()

    def in_namespace(self, namespace: str) -> K8sDriver:
        """The same cluster and settings, bound to `namespace` (created on first use)."""
        return K8sDriver(
            self.lab,
            self.runner,
            self.run_id,
            namespace,
            self.sleep,
            self.pod_wait,
            self.namespace_wait,
            self.endpoints_wait,
        )

    # -- the cluster's side: namespaces, objects, kubectl (KubeCluster) ----------------------

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> ExecResult:
        return self.cluster.kubectl(*args, stdin=stdin, timeout=timeout)

    def _must(self, what: str, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        return self.cluster.must(what, *args, stdin=stdin, timeout=timeout)

    def reproduce(self, *args: str) -> str:
        return self.cluster.reproduce(*args)

    def _bound(self) -> str:
        if self.namespace is None:
            raise ValueError("this driver is not bound to a namespace; use in_namespace(NAME)")
        return self.namespace

    @property
    def bound(self) -> str:
        """The namespace this driver makes its pods and services in."""
        return self._bound()

    def ensure_namespace(self) -> None:
        self.cluster.ensure_namespace(self._bound())

    def delete_namespace(self) -> None:
        self.cluster.delete_namespace(self._bound())

    def dump(self) -> str:
        return self.cluster.dump(self._bound())

    def sweep(self, keep_prefix: str = "") -> list[str]:
        return self.cluster.sweep(keep_prefix)

    def remove_run(self, run_id: str) -> list[str]:
        return self.cluster.remove_run(run_id)

    # -- pods -------------------------------------------------------------------------------

    def _spec(self, container: Container) -> k8s.ContainerSpec:
        return k8s.ContainerSpec(
            container.name, container.image or self.busybox_image, container.argv
        )

    def start_pod(
        self,
        name: str,
        node: str,
        containers: tuple[Container, ...],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Apply a pod pinned to `node`; does not wait (see wait_for_pod)."""
        if node not in self.lab.node_names:
            raise ValueError(f"node {node!r} is not a node of lab {self.lab.name}")
        self.ensure_namespace()
        manifest = k8s.render_pod(
            name, self._bound(), node, [self._spec(c) for c in containers], self.run_id, labels
        )
        self.cluster.apply(manifest)

    def get_pod(self, name: str) -> k8s.ClusterPod:
        out = self._must(f"read pod {name}", "-n", self._bound(), "get", "pod", name, "-o", "json")
        (pod,) = k8s.parse_pods(out)
        return pod

    def wait_for_pod(self, name: str, node: str, containers: tuple[Container, ...]) -> K8sPod:
        """Bounded wait until the pod is Running with every container ready; its IP is
        status.podIP. Fails early when a container terminated or cannot be created."""
        namespace = self._bound()
        inspect = self.reproduce("-n", namespace, "describe", "pod", name)
        seen: list[k8s.ClusterPod] = []

        def probe() -> k8s.ClusterPod:
            seen[:] = [self.get_pod(name)]
            return seen[0]

        try:
            pod = waits.wait_until(
                self.pod_wait,
                probe,
                lambda p: p.running_and_ready or _terminal(p),
                sleep=self.sleep,
            )
        except waits.WaitTimeout:
            last = _pod_state(seen[0]) + _image_hint(seen[0]) if seen else "never read"
            raise PodNotRunning(
                f"pod {namespace}/{name} on {node}: not Running with every container ready "
                f"within {self.pod_wait.timeout_s:.0f}s ({self.pod_wait.name}): {last}\n"
                f"  inspect: {inspect}"
            ) from None
        if not pod.running_and_ready:
            raise PodNotRunning(
                f"pod {namespace}/{name} on {node}: {_pod_state(pod)}\n  inspect: {inspect}"
            )
        if pod.node_name != node or pod.pod_ip is None:
            raise PodNotRunning(
                f"pod {namespace}/{name}: runs on {pod.node_name} with IP {pod.pod_ip}, "
                f"expected node {node} and an IP\n  inspect: {inspect}"
            )
        ids = {s.name: s.container_id for s in pod.statuses if s.container_id}
        return Pod(name, node, pod.pod_ip, containers, K8sHandle(namespace, dict(pod.labels), ids))

    def create_pod(
        self,
        name: str,
        node: str,
        containers: tuple[Container, ...],
        labels: Mapping[str, str] | None = None,
    ) -> K8sPod:
        (pod,) = self.create_pods([PodRequest(name, node, containers, labels)])
        return pod

    def create_pods(self, requests: Sequence[PodRequest]) -> list[K8sPod]:
        """Apply every pod first, then wait for each: the pods start in parallel. If one does
        not come up, every pod of the request is deleted before the error is raised."""
        try:
            for r in requests:
                self.start_pod(r.name, r.node, r.containers, r.labels)
            return [self.wait_for_pod(r.name, r.node, r.containers) for r in requests]
        except BaseException:
            for r in requests:
                self.kubectl(
                    "delete",
                    "pod",
                    r.name,
                    "-n",
                    self._bound(),
                    "--ignore-not-found",
                    "--wait=false",
                )
            raise

    def fleet_containers(self, index: int = 0) -> tuple[Container, ...]:
        return (echo_container(self.agnhost_image), sleeper_container(self.busybox_image))

    def client_of(self, pod: K8sPod) -> str:
        names = [c.name for c in pod.containers]
        return "client" if "client" in names else names[0]

    def guide_pod(self) -> GuidePod:
        """The guide's own example: busybox and nginx in one pod."""
        return GuidePod(
            containers=(
                Container(
                    "busybox",
                    ("/bin/sh", "-c", "while true;do echo hello;sleep 1;done"),
                    self.busybox_image,
                ),
                Container("nginx", (), self.nginx_image),
            ),
            client="busybox",
            server="nginx",
            port=80,
            banner="Welcome to nginx!",
        )

    def exec(
        self, pod: K8sPod, container: str, argv: tuple[str, ...], timeout: float = 30
    ) -> ExecResult:
        """`kubectl exec -n NS POD -c CONTAINER -- argv`; its exit code is argv's."""
        args = exec_args(pod, container, argv)
        return self.kubectl(*args, timeout=timeout + 15)  # kubectl's own start-up on top

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        return self.runner.run(node, Command(argv), timeout)

    def netns_exec(self, pod: K8sPod, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        """argv on the pod's node, inside the network namespace of its first container (found
        through the Docker runtime the guide installs)."""
        return self.runner.run(pod.node, netns_command(pod, argv), timeout)

    def netns_command(self, pod: K8sPod, argv: tuple[str, ...]) -> Command:
        return netns_command(pod, argv)

    def delete_pod(self, pod: K8sPod) -> None:
        self.delete_pods([pod])

    def delete_pods(self, pods: Sequence[K8sPod]) -> None:
        by_namespace: dict[str, list[str]] = {}
        for pod in pods:
            by_namespace.setdefault(pod.handle.namespace, []).append(pod.name)
        for namespace, names in by_namespace.items():
            self._must(
                f"delete pods {', '.join(names)} in {namespace}",
                "delete",
                "pod",
                *names,
                "-n",
                namespace,
                "--ignore-not-found",
                "--timeout=60s",
                timeout=90,
            )

    # -- probes -----------------------------------------------------------------------------

    def reproduce_cell(self, cell: Probe) -> str:
        url = f"http://{cell.host}:{cell.dport}/clientip"
        if cell.proto != "tcp" or (service_cell(cell) and not isinstance(cell.source, str)):
            netns = None if isinstance(cell.source, str) else self._netns.get(cell.source.name)
            return self.runner.reproduce_agent(cell.source_node, agnhost_cell(cell, netns))
        if isinstance(cell.source, str):
            remote = render_remote(Command(("curl", "-s", "--max-time", "5", url), sudo=False))
            return self.runner.channels[cell.source].reproduce(remote)
        pod = cell.source
        return self.reproduce(
            *exec_args(pod, self.client_of(pod), ("wget", "-qO-", "-T", "5", url))
        )

    def observe(self, cells: Sequence[Probe]) -> dict[str, rm.Observation]:
        """Node sources: the node agent, one call per node (agnhost asked /hostname and
        /clientip on one connection; over UDP both on one socket). Pod sources: one agent
        call on the control plane running, concurrently, one `kubectl exec` per source pod
        whose busybox shell probes all its targets at once; a Service cell (`service_cell`)
        from a pod: the node agent inside the pod's network namespace, one call per node."""
        python = node_python(self.lab)
        plane = f"{self.control_plane} (kubectl exec)"

        def cell(c: Probe) -> probes.Cell:
            return agnhost_cell(c, None)

        def in_netns(node: str) -> Callable[[list[Probe]], CellResults]:
            def probe_group(mine: list[Probe]) -> CellResults:
                pods = {c.source.name: c.source for c in mine if not isinstance(c.source, str)}
                found, failed = self._pod_netns(node, list(pods.values()))
                out: CellResults = {
                    c.id: probes.CellResult(False, error=failed[c.source.name], unknown=True)
                    for c in mine
                    if not isinstance(c.source, str) and c.source.name in failed
                }
                ready = [c for c in mine if c.id not in out]

                def with_netns(c: Probe) -> probes.Cell:
                    assert not isinstance(c.source, str)
                    return agnhost_cell(c, found[c.source.name])

                if ready:
                    out.update(agent_cells(self.runner, node, python, ready, with_netns))
                return out

            return probe_group

        def from_pods(mine: list[Probe]) -> CellResults:
            by_pod: dict[str, list[Probe]] = {}
            for c in mine:
                assert not isinstance(c.source, str)
                by_pod.setdefault(c.source.name, []).append(c)
            return self._probe_from_pods(by_pod, python)

        def route(c: Probe) -> Route:
            if isinstance(c.source, str):
                node = c.source
                return node, lambda mine: agent_cells(self.runner, node, python, mine, cell)
            if service_cell(c):
                return f"{c.source.node} (pods' netns)", in_netns(c.source.node)
            return plane, from_pods

        return observe_cells(
            self.runner, cells, route, parse_agnhost_or_busybox, self.reproduce_cell
        )

    def _pod_netns(
        self, node: str, pods: Sequence[K8sPod]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Each pod's network namespace on `node` (/proc/PID/ns/net of its first container,
        PID from Docker, one round trip for the node's pods; remembered while the container
        runs): the paths found, and why a pod's was not."""
        wanted = [p for p in pods if p.name not in self._netns]
        failed: dict[str, str] = {}
        asks = [(p, docker_id(p)) for p in wanted]
        bad = [(p, cid) for p, cid in asks if not cid]
        for pod, _ in bad:
            failed[pod.name] = (
                f"pod {pod.handle.namespace}/{pod.name} has no Docker container id "
                f"({dict(pod.handle.container_ids)}): its network namespace cannot be entered"
            )
        asks = [(p, cid) for p, cid in asks if cid]
        if asks:
            commands = [cmd("docker", "inspect", "-f", "{{.State.Pid}}", cid) for _, cid in asks]
            outputs = self.runner.probe(node, *commands)
            for (pod, cid), out in zip(asks, outputs, strict=True):
                pid = out.stdout.strip()
                if out.ok and pid.isdigit() and pid != "0":
                    with self._netns_lock:
                        self._netns[pod.name] = f"/proc/{pid}/ns/net"
                else:
                    failed[pod.name] = (
                        f"pod {pod.handle.namespace}/{pod.name}: `docker inspect -f "
                        f"'{{{{.State.Pid}}}}' {cid}` on {node} gave {pid!r} "
                        f"(exit {out.exit_code}): its container does not run"
                    )
        found = {p.name: self._netns[p.name] for p in pods if p.name in self._netns}
        return found, failed

    def _probe_from_pods(
        self, by_pod: Mapping[str, list[Probe]], python: str
    ) -> dict[str, probes.CellResult]:
        jobs = []
        for mine in by_pod.values():
            pod = mine[0].source
            assert not isinstance(pod, str)
            script = busybox_probe_script([(c.id, str(c.target.ip)) for c in mine])
            argv = (
                *k8s.KUBECTL,
                *exec_args(pod, self.client_of(pod), ("sh", "-c", script)),
            )
            jobs.append(probes.Job(pod.name, (probes.Step(argv=argv, timeout_s=60),)))
        request = probes.steps_request(jobs, parallel=len(jobs))
        result, failure = self.runner.agent(self.control_plane, python, request, 120)
        answers = probes.parse_steps_answer(result.stdout, [j.id for j in jobs], failure)
        out: dict[str, probes.CellResult] = {}
        for name, mine in by_pod.items():
            job = answers[name]
            text = job.steps[0].stdout if job.steps else ""
            why = job.failure() or "kubectl exec answered nothing for it"
            out.update(parse_busybox_probes(text, [c.id for c in mine], why))
        return out

    def node_subnets(self) -> dict[str, tuple[IPv4Network, ...]]:
        """What the cluster allots: each node's spec.podCIDRs (IPv4)."""
        nodes = self.cluster.get_nodes()
        return {n.name: n.pod_cidrs for n in nodes if n.name in self.lab.node_names}

    def dump_pod(self, pod: K8sPod) -> dict[str, Any]:
        handle = pod.handle
        return pod_json(
            pod,
            {
                "namespace": handle.namespace,
                "labels": dict(handle.labels),
                "container_ids": dict(handle.container_ids),
            },
        )

    def load_pod(self, data: Mapping[str, Any]) -> K8sPod:
        name, node, ip, containers = pod_fields(data)
        h = data["handle"]
        return Pod(
            name, node, ip, containers, K8sHandle(h["namespace"], h["labels"], h["container_ids"])
        )

    # -- services ---------------------------------------------------------------------------


def _pod_state(pod: k8s.ClusterPod) -> str:
    text = f"phase {pod.phase}"
    if pod.reason:
        text += f" ({pod.reason}: {pod.message})" if pod.message else f" ({pod.reason})"
    details = []
    for status in pod.statuses:
        detail = f"{status.name} {status.describe()}"
        if status.message:
            detail += f": {status.message[:200]}"
        details.append(detail)
    if details:
        text += "; containers: " + "; ".join(details)
    return text


def _image_hint(pod: k8s.ClusterPod) -> str:
    if any(s.reason in ("ErrImagePull", "ImagePullBackOff") for s in pod.statuses):
        return (
            " (the node cannot pull an image: pre-pull it, or pass a mirror's image to "
            "K8sDriver(busybox_image=..., nginx_image=..., agnhost_image=...))"
        )
    return ""


def parse_agnhost_or_busybox(answer: str) -> probes.Echo:
    """A node's agent reads agnhost's pipelined answer (HTTP); a busybox probe in a pod
    prints `CLIENTIP HOSTNAME` (busybox_probe_script)."""
    if answer.startswith("HTTP/"):
        return probes.parse_agnhost(answer)
    words = answer.split()
    if not words:
        return probes.Echo(None)
    seen = probes.http_body_address(words[0])
    return probes.Echo(seen, words[1] if len(words) > 1 else None)


# agnhost netexec's UDP server answers one command per datagram: the client address it saw,
# then its hostname (the pod's name), asked on one socket so that one endpoint answers both
AGNHOST_UDP = ("clientip", "hostname")


@dataclass(frozen=True)
class DatagramsCell(probes.Cell):
    """A UDP cell that asks several questions on one socket (the agent's `datagrams`)."""

    datagrams: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        doc = super().as_json()
        doc["datagrams"] = list(self.datagrams)
        return doc


def service_cell(cell: Probe) -> bool:
    """A cell with an address, a port or a protocol of its own (a Service's ClusterIP, a
    NodePort, UDP, a DNS question): from a pod it runs in the node agent inside the pod's
    network namespace, which speaks all of them as it does from the node; the busybox probe
    of the pod matrix cannot (its wget asks agnhost on two connections, which a Service may
    send to two endpoints)."""
    return bool(cell.address or cell.port) or cell.proto != "tcp"


def agnhost_cell(cell: Probe, netns: str | None) -> probes.Cell:
    """The agent's probe of agnhost netexec for this cell: TCP, both questions pipelined on
    one connection; UDP, both as datagrams of one socket (answer `CLIENTIP\nHOSTNAME`, read
    as the busybox probe's `CLIENTIP HOSTNAME`), and a probe's own payload (the tunnel
    proof's tag) last on that socket as agnhost's `echo PAYLOAD`; DNS, as asked."""
    if cell.proto == "tcp":
        return cell.cell(netns, send=probes.AGNHOST_REQUEST)
    base = cell.cell(netns)
    if cell.proto != "udp":
        return base
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    own = cell.payload.strip()
    return DatagramsCell(**values, datagrams=AGNHOST_UDP + ((f"echo {own}",) if own else ()))


def docker_id(pod: K8sPod) -> str:
    """The Docker id of the pod's first container ("" when it has none)."""
    ref = next(iter(pod.handle.container_ids.values()), "")
    runtime, _, cid = ref.partition("://")
    return cid if runtime == "docker" else ""


def exec_args(pod: K8sPod, container: str, argv: tuple[str, ...]) -> tuple[str, ...]:
    """kubectl arguments running argv in one container of the pod."""
    return ("exec", "-n", pod.handle.namespace, pod.name, "-c", container, "--", *argv)


def netns_command(pod: K8sPod, argv: tuple[str, ...]) -> Command:
    """nsenter into the network namespace of the pod's first container, by its Docker PID."""
    cid = docker_id(pod)
    if not cid:
        ref = next(iter(pod.handle.container_ids.values()), "")
        raise DriverError(
            f"pod {pod.handle.namespace}/{pod.name}: container id {ref!r} is not a Docker one; "
            "entering its network namespace needs the guide's Docker runtime"
        )
    script = (
        f"pid=$(docker inspect -f '{{{{.State.Pid}}}}' {shlex.quote(cid)}) && "
        f'exec nsenter -t "$pid" -n -- {shlex.join(argv)}'
    )
    return Command(("sh", "-c", script))


def busybox_probe_script(cells: Sequence[tuple[str, str]], timeout_s: int = 5) -> str:
    """A busybox shell script probing every (id, ip) at once: `wget` of agnhost's /clientip,
    then its /hostname (who answered), one marker line per cell with wget's exit code and
    `CLIENTIP HOSTNAME`."""
    parts = []
    for cell_id, ip in cells:
        url = f"http://{ip}:{ECHO_PORT}"
        parts.append(
            f"(out=$(wget -qO- -T {timeout_s} {shlex.quote(url + '/clientip')} 2>&1); rc=$?; "
            f"who=$(wget -qO- -T {timeout_s} {shlex.quote(url + '/hostname')} 2>/dev/null); "
            f'echo "{PROBE_MARK} {cell_id} $rc $(echo $out) $who") &'
        )
    return "\n".join([*parts, "wait"])


def parse_busybox_probes(
    text: str, ids: Sequence[str], failure: str
) -> dict[str, probes.CellResult]:
    """The marker lines of busybox_probe_script -> one result per cell (missing: unknown)."""
    found: dict[str, probes.CellResult] = {}
    for line in text.splitlines():
        words = line.split(" ", 3)
        if len(words) < 3 or words[0] != PROBE_MARK or words[1] not in ids:
            continue
        answer = words[3].strip() if len(words) > 3 else ""
        ok = words[2] == "0" and bool(answer)
        found[words[1]] = probes.CellResult(
            ok, answer=answer if ok else "", error="" if ok else f"wget exit {words[2]}: {answer}"
        )
    return {i: found.get(i, probes.CellResult(False, error=failure, unknown=True)) for i in ids}


def echo_container(image: str, port: int = ECHO_PORT) -> Container:
    """agnhost netexec: answers /hostname with the pod name and /clientip with `ip:port`,
    over HTTP and, on the same port number, over UDP (`hostname`, `clientip`)."""
    return Container(
        "echo", ("/agnhost", "netexec", f"--http-port={port}", f"--udp-port={port}"), image
    )


def sleeper_container(image: str, name: str = "client") -> Container:
    """A busybox that idles: a place to run wget/nslookup from."""
    return Container(name, ("sleep", "86400"), image)
