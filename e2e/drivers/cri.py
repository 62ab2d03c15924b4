"""CRI driver: pods made by a real container runtime, the way kubelet makes them. containerd 1.6
on each node serves CRI runtime.v1; the suite reaches it through an SSH socket forward per node
(lab/adapters/forward.py) and asks, as kubelet does:

    RunPodSandbox            the runtime creates the network namespace, starts the infra (pause)
                             container in it and calls CNI ADD (the node's /etc/cni/net.d)
    CreateContainer + Start  the pod's containers, joining the sandbox's namespaces
    ExecSync                 commands in a container (probes, `ip addr`, ...)
    StopPodSandbox           containers stopped, CNI DEL (the IPAM lease released)
    RemovePodSandbox         the sandbox and its containers gone

Every pod carries the labels netlab.io/e2e=true, netlab.io/run=<run id> (and netlab.io/managed,
netlab.io/pod), so a sweep finds leftovers of other runs by label. Pods are made and removed per
node in parallel; a pod's handle keeps the sandbox id, container ids, the sandbox's pinned
network namespace, the infra process's PID and the CNI result the runtime cached.

Images are the lab's own (lab/runtime/images.py), imported by provisioning: `client` (iproute2,
python3, busybox applets, socat) for probes and the guide pod's two containers; `echo` for the echo
server. Every result carries one pasteable command that does the same thing again on the node
(`python -m lab ssh LAB NODE -- 'sudo -n ctr ... task exec --exec-id netlab-repro CID ...'`).
"""

from __future__ import annotations

import copy
import json
import logging
import shlex
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol

from e2e import probes
from e2e.drivers.base import (
    ECHO_CONTAINER,
    ECHO_LISTENS,
    NO_EXIT_CODE,
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
    listening_or_removed,
    observe_cells,
    pod_dns,
    pod_fields,
    pod_json,
    runner_for,
)
from e2e.drivers.cni import bridge_subnets, client_probe
from lab.adapters import cri as cri_adapter
from lab.adapters.forward import FORWARD_READY, SocketForward
from lab.adapters.protocols import NodeChannel
from lab.common import waits
from lab.common.commands import Command, cmd, render_remote
from lab.common.errors import LabStateError
from lab.model.config import Lab
from lab.net import reachability as rm
from lab.runtime import containerd, echo, images
from lab.runtime.cri import messages
from lab.runtime.cri import runtime_v1_pb2 as pb

log = logging.getLogger(__name__)

SOCKET = "/run/containerd/containerd.sock"  # on the node (provision/containerd.py)
E2E_LABEL = "netlab.io/e2e"
ECHO_PORT = images.ECHO_PORT
PODS_AT_ONCE = 4  # per node: RunPodSandbox calls in flight together
EXEC_ID = "netlab-repro"  # the exec id of reproduce lines (`ctr task exec` needs one)
CRI_READY = waits.Policy("CRI runtime reports NetworkReady", timeout_s=120, interval_s=1)


class CriRuntime(Protocol):
    """What the driver needs of a CRI client: lab.adapters.cri.CriClient (through an SSH socket
    forward), or a test's strict fake (tests/fakes.py FakeCri)."""

    def version(self) -> pb.VersionResponse: ...

    def network_ready(self) -> bool: ...

    def wait_for_network_ready(
        self, policy: waits.Policy = ..., sleep: Callable[[float], None] | None = None
    ) -> None: ...

    def run_pod_sandbox(self, pod: messages.PodSpec, timeout_s: float = ...) -> str: ...

    def stop_pod_sandbox(self, sandbox_id: str, timeout_s: float = ...) -> None: ...

    def remove_pod_sandbox(self, sandbox_id: str, timeout_s: float = ...) -> None: ...

    def pod_sandbox_status(
        self, sandbox_id: str, verbose: bool = False
    ) -> pb.PodSandboxStatusResponse: ...

    def list_pod_sandboxes(self, labels: Mapping[str, str]) -> list[pb.PodSandbox]: ...

    def create_container(
        self, sandbox_id: str, pod: messages.PodSpec, spec: messages.ContainerSpec
    ) -> str: ...

    def start_container(self, container_id: str) -> None: ...

    def container_status(
        self, container_id: str, verbose: bool = False
    ) -> pb.ContainerStatusResponse: ...

    def list_containers(
        self, labels: Mapping[str, str], sandbox_id: str = ""
    ) -> list[pb.Container]: ...

    def exec_sync(
        self, container_id: str, argv: Sequence[str], timeout_s: int = 30
    ) -> cri_adapter.ExecResult: ...

    def close(self) -> None: ...


Connect = Callable[[str], CriRuntime]  # node -> its runtime's client


# the controller starts its forwards while xdist starts the workers: a worker's first CRI call
# waits for its node's socket (or the reason it failed), never starts a forward of its own
SHARED_READY = waits.Policy(
    "the controller's forward of containerd's socket",
    timeout_s=FORWARD_READY.timeout_s + 15,
    interval_s=0.05,
)


def shared_socket(node: str, directory: str, policy: waits.Policy = SHARED_READY) -> str | None:
    """The controller's forward of `node`'s containerd socket, when the run shares them (in
    `directory`; None when it does not: ""): waits until it listens; DriverError with the
    controller's reason when it failed or did not come up in time."""
    if not directory:
        return None
    path, failed = Path(directory, f"{node}.sock"), Path(directory, f"{node}.failed")
    try:
        waits.wait_until(policy, lambda: path.exists() or failed.exists(), bool)
    except waits.WaitTimeout as exc:
        raise DriverError(f"{node}: {exc}") from None
    if failed.exists():
        raise DriverError(f"{node}: the controller's forward failed: {failed.read_text()}")
    return str(path)


class ForwardedRuntimes:
    """The real `Connect`: per node, an SSH forward of containerd's socket to a socket in this
    process's own short temp dir, and a CRI client on it; made on first use, closed together.
    In a parallel run the workers use the controller's forwards instead (`share`): one SSH
    connection per node for the run, not one per worker."""

    def __init__(self, channels: Mapping[str, NodeChannel], shared: str = "") -> None:
        self.channels = channels
        self.shared = shared  # the controller's forwards' directory ("": this process's own)
        self.dir = tempfile.mkdtemp(prefix="nl-cri-", dir="/tmp")  # sun_path: 108 bytes
        self.forwards: dict[str, SocketForward] = {}
        self.clients: dict[str, cri_adapter.CriClient] = {}
        self.lock = threading.Lock()
        self.starting: threading.Thread | None = None  # share()'s forwards, being started

    def share(self) -> str:
        """Start every node's forward (nodes at once, in the background: the workers wait for
        them, `shared_socket`); returns the directory of their sockets, for the workers."""
        self.starting = threading.Thread(target=self._share, name="cri-forwards", daemon=True)
        self.starting.start()
        return self.dir

    def _share(self) -> None:
        with ThreadPoolExecutor(max_workers=len(self.channels) or 1) as pool:
            list(pool.map(self._forward, list(self.channels)))

    def _forward(self, node: str) -> None:
        """One node's forward; why it failed, if it did, in <node>.failed for the workers."""
        try:
            target = getattr(self.channels[node], "target", None)
            if target is None:
                raise DriverError(f"{node}: its channel has no SSH target to forward through")
            forward = SocketForward.start(target, SOCKET, f"{self.dir}/{node}.sock")
        except (DriverError, LabStateError, waits.WaitTimeout, OSError) as exc:  # for the workers
            # written whole, then renamed: a worker never reads a half-written reason
            partial = Path(self.dir, f"{node}.failed.partial")
            partial.write_text(f"{type(exc).__name__}: {exc}")
            partial.rename(Path(self.dir, f"{node}.failed"))
            log.error("%s: forward of containerd's socket failed: %s", node, exc)
            return
        with self.lock:
            self.forwards[node] = forward

    def __call__(self, node: str) -> CriRuntime:
        with self.lock:
            shared = shared_socket(node, self.shared)
            if shared is not None:
                if node not in self.clients:
                    self.clients[node] = cri_adapter.CriClient.connect(shared)
                return self.clients[node]
            client = self.clients.get(node)
            forward = self.forwards.get(node)
            if client is not None and forward is not None and forward.alive():
                return client
            if client is not None:
                client.close()
            if forward is not None:
                forward.close()
            target = getattr(self.channels[node], "target", None)
            if target is None:
                raise DriverError(f"{node}: its channel has no SSH target to forward through")
            local = f"{self.dir}/{node}.sock"
            self.forwards[node] = SocketForward.start(target, SOCKET, local)
            self.clients[node] = cri_adapter.CriClient.connect(local)
            return self.clients[node]

    def close(self) -> None:
        if self.starting is not None:  # bounded: each forward's start is (FORWARD_READY)
            self.starting.join()
        with self.lock:
            for client in self.clients.values():
                client.close()
            for forward in self.forwards.values():
                forward.close()
            self.clients.clear()
            self.forwards.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True)
class CriHandle:
    sandbox_id: str
    uid: str
    namespace: str  # the pod's CRI metadata namespace (one per run)
    container_ids: Mapping[str, str]  # container name -> id
    netns: str  # the sandbox's pinned network namespace on the node (/var/run/netns/cni-...)
    infra_pid: int  # the infra (pause) process on the node
    pids: Mapping[str, int] = field(default_factory=dict)  # container name -> its task's PID
    cni_result: Mapping[str, Any] | None = None  # what the runtime cached from CNI ADD

    def as_json(self) -> dict[str, Any]:
        return {
            "sandbox_id": self.sandbox_id,
            "uid": self.uid,
            "namespace": self.namespace,
            "container_ids": dict(self.container_ids),
            "netns": self.netns,
            "infra_pid": self.infra_pid,
            "pids": dict(self.pids),
            "cni_result": self.cni_result,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CriHandle:
        return cls(
            data["sandbox_id"],
            data["uid"],
            data["namespace"],
            dict(data["container_ids"]),
            data["netns"],
            int(data["infra_pid"]),
            {k: int(v) for k, v in data["pids"].items()},
            data.get("cni_result"),
        )


CriPod = Pod[CriHandle]


def log_directory(namespace: str, name: str, uid: str) -> str:
    """kubelet's layout, /var/log/pods/<namespace>_<name>_<uid> (containerd writes each
    container's log below it; kubelet, here the driver, removes it)."""
    return f"/var/log/pods/{namespace}_{name}_{uid}"


def ctr_exec_argv(container_id: str, argv: Sequence[str]) -> tuple[str, ...]:
    """The same command in the same container through containerd's own CLI on the node (what
    a person pastes to rerun an ExecSync)."""
    return containerd.ctr_argv(SOCKET, "task", "exec", "--exec-id", EXEC_ID, container_id, *argv)


NOT_RUN = (125, 126, 127)  # `timeout` failed, or could not run (126) or find (127) its command


def agent_argv(request: Mapping[str, Any]) -> tuple[str, ...]:
    """The probe agent inside a container: ExecSync has no stdin, so its source is argv."""
    return ("python3", "-c", probes.agent_source(), json.dumps(request, sort_keys=True))


class CriDriver:
    name = "cri"
    protocols: tuple[str, ...] = ("tcp", "udp")

    def __init__(
        self,
        lab: Lab,
        channels: Mapping[str, NodeChannel] | NodeRunner,
        run_id: str,
        log: CommandLog | None = None,
        connect: Connect | None = None,
        image_set: images.ImageSet | None = None,
        ready: waits.Policy = CRI_READY,
        forwards: str = "",
        echo_listens: waits.Policy | None = ECHO_LISTENS,
    ) -> None:
        if lab.runtime != "containerd":
            raise ValueError(f"lab {lab.name} has no CRI runtime (runtime: {lab.runtime})")
        messages.run_labels(run_id)
        self.lab = lab
        self.runner = runner_for(lab, channels, log)
        self.run_id = run_id
        self.namespace = f"nl-{run_id}"
        self._forwards: ForwardedRuntimes | None = None
        if connect is None:
            self._forwards = ForwardedRuntimes(self.runner.channels, forwards)
            connect = self._forwards
        self.connect: Connect = connect
        if image_set is None:
            from lab.adapters import imagebuild

            image_set = imagebuild.planned()
        self.images = image_set
        self.ready = ready
        self.echo_listens = echo_listens  # None: pods are handed out unawaited (unit tests)
        # "netns": pod sources probe from the node's serving agent inside the sandbox's netns
        # (one round trip per node; no runtime call, so it also probes while containerd is
        # down); "exec": from the pod's client container, one ExecSync per pod (a runc exec and
        # a Python start in the guest: 3-20 s each under TCG). The network is the same (the
        # flow checks prove every container joins the sandbox's netns): the matrices use
        # "netns", the checks of what a container itself sees use ExecSync
        self.pod_probes = "netns"
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def probing_from_netns(self) -> CriDriver:
        """The same driver (runtimes, pods, log), whose pod-source probes need no CRI call: the
        node agent enters each source sandbox's pinned netns (the faults that stop containerd)."""
        view = copy.copy(self)
        view.pod_probes = "netns"
        return view

    def probing_from_containers(self) -> CriDriver:
        """The same driver, whose pod-source probes run inside each source pod's client
        container (ExecSync): what a container's own process sees of its peers."""
        view = copy.copy(self)
        view.pod_probes = "exec"
        return view

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self.runner.channels)

    def close(self) -> None:
        """Stop this process's socket forwards (the pods stay)."""
        if self._forwards is not None:
            self._forwards.close()

    def cri(self, node: str) -> CriRuntime:
        """The node's runtime, once it reported NetworkReady (it has loaded a CNI config)."""
        if node not in self.runner.channels:
            raise ValueError(f"node {node!r} is not a node of lab {self.lab.name}")
        runtime = self.connect(node)
        with self._lock:
            if node in self._ready:
                return runtime
        runtime.wait_for_network_ready(self.ready)
        with self._lock:
            self._ready.add(node)
        return runtime

    # -- containers and pods ----------------------------------------------------------------

    def echo_container(self) -> Container:
        """The echo server from the client image (busybox's applets, socat, iproute2), so that
        it answers the scenarios' `readlink` and `ip addr` as its pod's client does."""
        return Container(
            ECHO_CONTAINER, echo.identity_echo_args(ECHO_PORT), self.images.ref("client")
        )

    def client_container(self, name: str = "client") -> Container:
        return Container(name, ("catatonit", "-P"), self.images.ref("client"))

    def fleet_containers(self, index: int = 0) -> tuple[Container, ...]:
        """A node's first fleet pod is the guide's shape, a server and a client sharing the
        pod's namespace (the shared-namespace and guide-pod checks run on it); the others are
        the server alone, which runs their probes too (it is the client image): every pod
        still sends and answers, at one container and its shim calls less per pod."""
        if index:
            return (self.echo_container(),)
        return (self.echo_container(), self.client_container())

    def client_of(self, pod: CriPod) -> str:
        names = [c.name for c in pod.containers]
        if "client" in names:
            return "client"
        client = self.images.ref("client")
        return next((c.name for c in pod.containers if c.image == client), names[0])

    def guide_pod(self) -> GuidePod:
        """The guide's busybox + nginx pod is the fleet's pod: a client container (the guide's
        busybox) and a server (its nginx: here the echo server, which answers a connection on
        localhost with the 127.0.0.1 it saw), one image with busybox's applets, socat and
        iproute2, so both answer the scenario's `readlink` and `cat`."""
        return GuidePod(
            containers=self.fleet_containers(),
            client="client",
            server="echo",
            port=ECHO_PORT,
            banner="127.0.0.1",
            in_fleet=True,
        )

    def pod_spec(self, request: PodRequest) -> messages.PodSpec:
        uid = str(uuid.uuid4())
        labels = {**dict(request.labels or {}), E2E_LABEL: "true"}
        return messages.PodSpec(
            name=request.name,
            namespace=self.namespace,
            uid=uid,
            run_id=self.run_id,
            labels=tuple(sorted(labels.items())),
            log_directory=log_directory(self.namespace, request.name, uid),
            dns=None if self.lab.services is None else pod_dns(self.lab.services, self.name),
        )

    def container_spec(self, container: Container, pod: str = "") -> messages.ContainerSpec:
        """The container as kubelet asks for it; its pod's name in its environment, as the
        downward API hands it (the echo server says it with every answer)."""
        env = ((echo.POD_NAME_ENV, pod),) if pod else ()
        image = container.image or self.images.ref("client")
        return messages.ContainerSpec(container.name, image, command=container.argv, env=env)

    def make_pod(self, request: PodRequest, spec: messages.ContainerSpec | None = None) -> CriPod:
        """One pod as kubelet makes it; on any failure its sandbox is stopped and removed.
        `spec` adds one more container with a spec of its own (the breakage tests)."""
        runtime = self.cri(request.node)
        pod = self.pod_spec(request)
        where = f"{request.node}: pod {request.name}"
        try:
            sandbox_id = runtime.run_pod_sandbox(pod)
        except cri_adapter.CriError as exc:
            raise DriverError(f"{where}: RunPodSandbox: {exc}") from None
        try:
            ids: dict[str, str] = {}
            specs = [self.container_spec(c, request.name) for c in request.containers]
            for cspec in [*specs, *([spec] if spec is not None else [])]:
                cid = runtime.create_container(sandbox_id, pod, cspec)
                runtime.start_container(cid)
                ids[cspec.name] = cid
            return self.read_pod(request, pod, sandbox_id, ids)
        except (cri_adapter.CriError, messages.InfoError, DriverError) as exc:
            self._remove(runtime, sandbox_id)
            raise DriverError(f"{where}: {exc}") from None

    def read_pod(
        self,
        request: PodRequest,
        pod: messages.PodSpec,
        sandbox_id: str,
        ids: Mapping[str, str],
    ) -> CriPod:
        runtime = self.cri(request.node)
        response = runtime.pod_sandbox_status(sandbox_id, verbose=True)
        info = messages.parse_verbose_info(response.info)
        ipv4 = [ip for ip in messages.sandbox_ips(response.status) if ip.version == 4]
        if not ipv4:
            raise DriverError(f"PodSandboxStatus reports no IPv4 address: {response.status}")
        pids = {}
        for name, cid in ids.items():
            status = runtime.container_status(cid, verbose=True)
            if status.status.state != pb.CONTAINER_RUNNING:
                raise DriverError(
                    f"container {name} is {pb.ContainerState.Name(status.status.state)}: "
                    f"{status.status.reason} {status.status.message}".strip()
                )
            pids[name] = messages.parse_verbose_info(status.info).pid
        handle = CriHandle(
            sandbox_id,
            pod.uid,
            pod.namespace,
            dict(ids),
            info.netns_path,
            info.pid,
            pids,
            info.cni_result,
        )
        containers = tuple(request.containers) + tuple(
            Container(n, (), "") for n in ids if n not in {c.name for c in request.containers}
        )
        return Pod(request.name, request.node, IPv4Address(str(ipv4[0])), containers, handle)

    def _remove(self, runtime: CriRuntime, sandbox_id: str) -> list[str]:
        """Stop (CNI DEL) and remove one sandbox; the failures, never raised."""
        failures = []
        for call in (runtime.stop_pod_sandbox, runtime.remove_pod_sandbox):
            try:
                call(sandbox_id)
            except cri_adapter.CriError as exc:
                failures.append(str(exc))
        return failures

    def create_pods(self, requests: Sequence[PodRequest]) -> list[CriPod]:
        """Every pod of every node, nodes in parallel (and up to PODS_AT_ONCE pods of one node
        at once); if any pod fails, every pod of the request is removed again."""
        by_node: dict[str, list[PodRequest]] = {}
        for r in requests:
            if r.node not in self.runner.channels:
                raise ValueError(f"node {r.node!r} is not a node of lab {self.lab.name}")
            by_node.setdefault(r.node, []).append(r)

        def on_node(node: str, mine: list[PodRequest]) -> list[CriPod | DriverError]:
            def one(request: PodRequest) -> CriPod | DriverError:
                started = time.monotonic()
                try:
                    pod = self.make_pod(request)
                except DriverError as exc:
                    return exc
                self.runner.log.add(
                    node,
                    f"CRI RunPodSandbox {request.name} + {len(request.containers)} container(s)",
                    ExecResult(0, f"sandbox {pod.handle.sandbox_id} ip {pod.ip}\n", "", ""),
                    time.monotonic() - started,
                )
                return pod

            try:
                self.cri(node)
            except Exception as exc:  # noqa: BLE001 (its runtime unreachable: an answer per pod)
                return [DriverError(f"{node}: pod {r.name}: no CRI runtime: {exc}") for r in mine]
            with ThreadPoolExecutor(max_workers=min(PODS_AT_ONCE, len(mine))) as pool:
                return list(pool.map(one, mine))

        made = self.runner.on_each_node(by_node, on_node)
        pods = {p.name: p for results in made.values() for p in results if isinstance(p, Pod)}
        failures = [str(e) for results in made.values() for e in results if not isinstance(e, Pod)]
        if failures:
            self.delete_pods(list(pods.values()))
            raise DriverError(
                f"{len(failures)} of {len(requests)} pod(s) did not start:\n"
                + "\n".join(f"  - {f}" for f in failures)
            )
        return listening_or_removed(self, [pods[r.name] for r in requests], self.echo_listens)

    def delete_pods(self, pods: Sequence[CriPod]) -> None:
        """StopPodSandbox (containers stopped, CNI DEL) then RemovePodSandbox for every pod,
        nodes in parallel (and up to PODS_AT_ONCE pods of one node at once), every pod tried;
        then the pods' log directories go (kubelet's part).
        All failures are raised together at the end."""
        by_node: dict[str, list[CriPod]] = {}
        for pod in pods:
            by_node.setdefault(pod.node, []).append(pod)

        def on_node(node: str, mine: list[CriPod]) -> list[str]:
            runtime = self.cri(node)
            with ThreadPoolExecutor(max_workers=min(PODS_AT_ONCE, len(mine))) as pool:
                answers = list(pool.map(lambda p: self._remove(runtime, p.handle.sandbox_id), mine))
            failures = [
                f"{node}: {pod.name}: {f}"
                for pod, found in zip(mine, answers, strict=True)
                for f in found
                if "NOT_FOUND" not in f  # removed already (a test removed it): what we want
            ]
            dirs = [log_directory(p.handle.namespace, p.name, p.handle.uid) for p in mine]
            result = self.runner.run(node, cmd("rm", "-rf", "--", *dirs))
            if not result.ok:
                failures.append(f"{node}: removing log dirs exited {result.exit_code}")
            return failures

        found = self.runner.on_each_node(by_node, on_node)
        failures = [f for per_node in found.values() for f in per_node]
        if failures:
            raise DriverError("teardown failed:\n" + "\n".join(f"  - {f}" for f in failures))

    # -- commands ---------------------------------------------------------------------------

    def reproduce_exec(self, node: str, container_id: str, argv: Sequence[str]) -> str:
        remote = render_remote(Command(ctr_exec_argv(container_id, argv)))
        return self.runner.channels[node].reproduce(remote)

    def exec(
        self, pod: CriPod, container: str, argv: tuple[str, ...], timeout: float = 30
    ) -> ExecResult:
        """ExecSync in the container; its exit code is argv's. A failed call (the runtime
        unreachable, the container gone) is answered as exit NO_EXIT_CODE with the error."""
        cid = pod.handle.container_ids[container]
        return self.exec_sync(pod.node, cid, argv, timeout)

    def exec_sync(
        self,
        node: str,
        container_id: str,
        argv: Sequence[str],
        timeout: float = 30,
        shown: str = "",
    ) -> ExecResult:
        return self._exec_sync(node, container_id, argv, timeout, shown)[0]

    def _exec_sync(
        self, node: str, container_id: str, argv: Sequence[str], timeout: float, shown: str = ""
    ) -> tuple[ExecResult, bool]:
        """The result, and whether the call itself failed (the runtime did not run argv)."""
        reproduce = self.reproduce_exec(node, container_id, argv)
        started = time.monotonic()
        failed = False
        try:
            answer = self.cri(node).exec_sync(container_id, argv, max(1, int(timeout)))
            result = ExecResult(answer.exit_code, answer.stdout, answer.stderr, reproduce)
        except cri_adapter.CriError as exc:
            result, failed = ExecResult(NO_EXIT_CODE, "", str(exc), reproduce), True
        what = shown or shlex.join(argv)
        self.runner.log.add(
            node,
            f"CRI ExecSync {container_id[:12]} {what}",
            result,
            time.monotonic() - started,
        )
        return result, failed

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        return self.runner.run(node, Command(argv), timeout)

    def netns_exec(self, pod: CriPod, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        """The node's own tools inside the sandbox's pinned network namespace."""
        return self.runner.run(pod.node, netns_command(pod, argv), timeout)

    def netns_command(self, pod: CriPod, argv: tuple[str, ...]) -> Command:
        return netns_command(pod, argv)

    # -- probes -----------------------------------------------------------------------------

    def reproduce_cell(self, cell: Probe) -> str:
        if cell.proto != "tcp" and (isinstance(cell.source, str) or self.pod_probes == "netns"):
            netns = None if isinstance(cell.source, str) else cell.source.handle.netns
            return self.runner.reproduce_agent(cell.source_node, cell.cell(netns))
        argv = client_probe(cell.host, cell.dport)
        if isinstance(cell.source, str):
            remote = render_remote(Command(argv, sudo=False))
            return self.runner.channels[cell.source].reproduce(remote)
        pod = cell.source
        if self.pod_probes == "netns":
            remote = render_remote(netns_command(pod, argv))
            return self.runner.channels[pod.node].reproduce(remote)
        return self.reproduce_exec(pod.node, pod.handle.container_ids[self.client_of(pod)], argv)

    def observe(self, cells: Sequence[Probe]) -> dict[str, rm.Observation]:
        """Node sources: the node agent (one call per node). Pod sources: the node agent inside
        each source sandbox's netns, or (probing_from_containers) from each source pod's client
        container by one ExecSync per pod, the pods at once: a single cell runs its own client
        command; several run in the same agent (python3 -c), concurrently inside the pod."""

        def cell(c: Probe) -> probes.Cell:
            return c.cell(None if isinstance(c.source, str) else c.source.handle.netns)

        def from_pod(mine: list[Probe]) -> CellResults:
            pod = mine[0].source
            assert not isinstance(pod, str)
            cid = pod.handle.container_ids[self.client_of(pod)]
            if len(mine) == 1 and mine[0].proto == "tcp":  # its own one-cell command
                return {mine[0].id: self._client_cell(pod.node, cid, mine[0])}
            request = probes.probe_request([c.cell() for c in mine])
            shown = f'python3 -c "$(cat {probes.AGENT_FILE})" {shlex.quote(json.dumps(request))}'
            result = self.exec_sync(pod.node, cid, agent_argv(request), 60, shown=shown)
            failure = (
                ""
                if result.ok
                else f"the agent in {pod.name} exited {result.exit_code}: "
                f"{(result.stderr.strip() or result.stdout.strip())[-300:]}"
            )
            return probes.parse_probe_answer(result.stdout, [c.id for c in mine], failure)

        def route(c: Probe) -> Route:
            if isinstance(c.source, str) or self.pod_probes == "netns":
                node = c.source_node
                return f"node {node}", lambda mine: agent_cells(
                    self.runner, node, "python3", mine, cell
                )
            return f"pod {c.source.name}", from_pod

        return observe_cells(self.runner, cells, route, probes.parse_echo, self.reproduce_cell)

    def _client_cell(self, node: str, container_id: str, cell: Probe) -> probes.CellResult:
        """One probe from a container: the client command a person pastes to rerun the cell,
        by one ExecSync (the agent's Python would cost a TCG guest seconds to start)."""
        argv = client_probe(cell.host, cell.dport)
        result, failed = self._exec_sync(node, container_id, argv, 30)
        if result.ok:
            return probes.CellResult(True, answer=result.stdout)
        why = (result.stderr.strip() or result.stdout.strip())[-300:] or "no output"
        # the call failed, or `timeout` could not run the client (125-127): nothing was probed
        unknown = failed or result.exit_code in NOT_RUN
        return probes.CellResult(
            False, result.stdout, f"exit {result.exit_code}: {why}", unknown=unknown
        )

    def node_subnets(self) -> dict[str, tuple[IPv4Network, ...]]:
        """As the kernel reports them: the pod bridge's network on each node (the runtime
        calls the same bridge plugin the lab configured)."""
        return bridge_subnets(self.runner, self.lab)

    # -- leftovers --------------------------------------------------------------------------

    def sweep(self, keep_prefix: str) -> list[str]:
        """Stop and remove every e2e sandbox (netlab.io/e2e=true) of another run on every
        node: its run label is not ours and its name does not start with keep_prefix."""

        def on_node(node: str, _: None) -> list[str]:
            runtime = self.cri(node)
            gone = []
            for sandbox in runtime.list_pod_sandboxes({E2E_LABEL: "true"}):
                name = sandbox.metadata.name
                if sandbox.labels.get(messages.RUN_LABEL) == self.run_id:
                    continue
                if keep_prefix and name.startswith(keep_prefix):
                    continue
                self._remove(runtime, sandbox.id)
                gone.append(f"{node}/{name}")
            return gone

        found = self.runner.on_each_node({n: None for n in self.nodes}, on_node)
        return sorted(g for names in found.values() for g in names)

    def remove_run(self, run_id: str) -> list[str]:
        """Stop and remove every sandbox of run `run_id` (an interrupted run's); what the
        runtime still holds of it."""

        def on_node(node: str, _: None) -> None:
            runtime = self.cri(node)
            for sandbox in runtime.list_pod_sandboxes({messages.RUN_LABEL: run_id}):
                self._remove(runtime, sandbox.id)

        self.runner.on_each_node({n: None for n in self.nodes}, on_node)
        return sorted(f"{n}/{x}" for n, found in self.leftovers(run_id).items() for x in found)

    def leftovers(self, run_id: str = "") -> dict[str, list[str]]:
        """Sandboxes and containers of this run (or of run `run_id`) still known to each
        node's runtime."""

        def on_node(node: str, _: None) -> list[str]:
            runtime = self.cri(node)
            labels = messages.run_labels(run_id or self.run_id)
            found = [f"sandbox {s.metadata.name}" for s in runtime.list_pod_sandboxes(labels)]
            found += [f"container {c.metadata.name}" for c in runtime.list_containers(labels)]
            return found

        return self.runner.on_each_node({n: None for n in self.nodes}, on_node)

    def dump_pod(self, pod: CriPod) -> dict[str, Any]:
        return pod_json(pod, pod.handle.as_json())

    def load_pod(self, data: Mapping[str, Any]) -> CriPod:
        name, node, ip, containers = pod_fields(data)
        return Pod(name, node, ip, containers, CriHandle.from_json(data["handle"]))


def netns_command(pod: CriPod, argv: Sequence[str]) -> Command:
    return cmd("nsenter", f"--net={pod.handle.netns}", "--", *argv)
