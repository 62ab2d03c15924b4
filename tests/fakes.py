"""Strict test doubles for the protocols the harness owns. A fake answers only the commands a
test scripted, in order; anything else is an error of the test (never a silent default).
tests/unit/test_fakes.py checks each fake against the protocol it stands in for."""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.adapters.protocols import RemoteResult
from lab.adapters.ssh import SshChannel
from lab.common.commands import Command, Output, render_probe, render_remote
from lab.common.errors import CommandFailed
from lab.runtime.images import ImageSet

# the images a `runtime: containerd` lab imports, as a fixed build (inputs key 0123456789ab...)
TEST_IMAGES = ImageSet(
    "/cache/images/0123456789abcdef/netlab-images.oci.tar",
    tuple((n, f"netlab.invalid/{n}:0123456789ab") for n in ("client", "echo", "pause")),
)


@dataclass
class Step:
    """One expected command: on `node`, exactly `argv`; answers with the given output.
    `stdin` (if given) checks what was fed to the command; `no_exit` simulates a timeout or a
    broken channel."""

    node: str
    argv: tuple[str, ...]
    stdout: str = ""
    exit_code: int = 0
    stderr: str = ""
    stdin: Callable[[str | None], None] | None = None
    no_exit: bool = False
    # with `rest`: `argv` is a prefix, and the words after it go to `rest` to be checked
    rest: Callable[[tuple[str, ...]], None] | None = None


@dataclass
class Script:
    steps: deque[Step]
    ran: list[tuple[str, Command, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, node: str, command: Command, timeout: float) -> Step:
        """The next step scripted for `node` (each node keeps its own order: drivers work on
        several nodes at once); it must be exactly this command."""
        with self.lock:
            index = next((i for i, s in enumerate(self.steps) if s.node == node), None)
            if index is None:
                raise AssertionError(f"unexpected command on {node}: {command.argv}")
            step = self.steps[index]
            argv = command.argv[: len(step.argv)] if step.rest is not None else command.argv
            if step.argv != argv:
                raise AssertionError(
                    f"expected on {step.node}: {step.argv}\n     got on {node}: {command.argv}"
                )
            del self.steps[index]
            self.ran.append((node, command, timeout))
        if step.rest is not None:
            step.rest(command.argv[len(step.argv) :])
        if step.stdin is not None:
            step.stdin(command.stdin)
        return step

    def done(self) -> None:
        assert not self.steps, f"{len(self.steps)} expected command(s) never ran: {self.steps[0]}"


def script(*steps: Step) -> Script:
    return Script(deque(steps))


class FakeChannel:
    """A strict stand-in for lab.adapters.ssh.SshChannel (the NodeChannel protocol): runs
    nothing, answers from the script; `probe` takes one scripted step per probe command."""

    def __init__(self, lab: str, name: str, script: Script) -> None:
        self.lab = lab
        self.name = name
        self.script = script

    def reproduce(self, remote: str) -> str:
        return SshChannel.reproduce(self, remote)  # type: ignore[arg-type]  # the real format

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult:
        step = self.script.take(self.name, command, timeout)
        remote = render_remote(command)
        if step.no_exit:
            raise CommandFailed(remote, None, step.stdout, step.stderr, where=self.name)
        if check and step.exit_code != 0:
            raise CommandFailed(remote, step.exit_code, step.stdout, step.stderr, where=self.name)
        return RemoteResult(self.name, remote, step.exit_code, step.stdout, step.stderr)

    def probe(
        self, commands: Sequence[Command], timeout: float = 120, one_sudo: bool = False
    ) -> tuple[RemoteResult, tuple[Output, ...]]:
        outputs = []
        for command in commands:
            step = self.script.take(self.name, command, timeout)
            outputs.append(Output(step.exit_code, step.stdout))
        return RemoteResult(self.name, render_probe(commands, one_sudo), 0, "", ""), tuple(outputs)


def channels(lab: str, names: Sequence[str], steps: Script) -> dict[str, FakeChannel]:
    return {name: FakeChannel(lab, name, steps) for name in names}


# --- a strict fake of the driver protocol (e2e/drivers/base.py Driver) -------------------------


def two_pods_per_node() -> list[Any]:
    """A fleet as the fake driver's tests build it: a1, a2 on node1 (10.244.0.2-3) and b1, b2
    on node2 (10.244.1.2-3), each an echo server."""
    from ipaddress import IPv4Address

    from e2e.drivers.base import Container, Pod

    echo = (Container("echo", ("echo-server",)),)
    return [
        Pod(name, node, IPv4Address(f"10.244.{net}.{host}"), echo, None)
        for name, node, net, host in (
            ("a1", "node1", 0, 2),
            ("a2", "node1", 0, 3),
            ("b1", "node2", 1, 2),
            ("b2", "node2", 1, 3),
        )
    ]


class FakeDriver:
    """Answers the scenarios from tables the test writes: `observations` (cell id ->
    Observation), `execs` ((pod, container or None for the pod's netns, argv) -> result), and a
    NodeRunner over strict fake channels for node-side reads. Anything not in a table fails."""

    name = "fake"
    protocols: tuple[str, ...] = ("tcp", "udp")

    def __init__(self, lab: Any, steps: Script | None = None) -> None:
        from e2e.drivers.base import NodeRunner

        self.lab = lab
        self.runner = NodeRunner(channels(lab.name, lab.node_names, steps or script()))
        self.observations: dict[str, Any] = {}
        self.execs: dict[tuple[str, str | None, tuple[str, ...]], Any] = {}
        self.subnets: dict[str, Any] = {}
        self.asked: list[list[str]] = []
        self.probed: list[Any] = []  # every Probe observed, as asked

    def fleet_containers(self, index: int = 0) -> tuple[Any, ...]:
        from e2e.drivers.base import Container

        return (Container("echo", ("echo-server",)),)

    def client_of(self, pod: Any) -> str:
        return str(pod.containers[0].name)

    def guide_pod(self) -> Any:
        from e2e.drivers.base import Container, GuidePod

        return GuidePod(
            (Container("busybox", ("sh",)), Container("nginx", ("nginx",))),
            "busybox",
            "nginx",
            80,
            "Welcome to nginx!",
        )

    def create_pods(self, requests: Sequence[Any]) -> list[Any]:
        raise AssertionError("the fake driver makes no pods: build them in the test")

    def delete_pods(self, pods: Sequence[Any]) -> None:
        raise AssertionError("the fake driver deletes no pods")

    def _exec(self, pod: Any, container: str | None, argv: tuple[str, ...]) -> Any:
        key = (pod.name, container, argv)
        if key not in self.execs:
            raise AssertionError(f"unexpected exec {key}")
        return self.execs[key]

    def exec(self, pod: Any, container: str, argv: tuple[str, ...], timeout: float = 30) -> Any:
        return self._exec(pod, container, argv)

    def netns_exec(self, pod: Any, argv: tuple[str, ...], timeout: float = 30) -> Any:
        return self._exec(pod, None, argv)

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> Any:
        raise AssertionError(f"unexpected exec on node {node}: {argv}")

    def netns_command(self, pod: Any, argv: tuple[str, ...]) -> Command:
        return Command(("ip", "netns", "exec", pod.name, *argv))

    def observe(self, cells: Sequence[Any]) -> dict[str, Any]:
        self.asked.append([c.id for c in cells])
        self.probed += list(cells)
        missing = [c.id for c in cells if c.id not in self.observations]
        if missing:
            raise AssertionError(f"no observation scripted for {missing}")
        return {c.id: self._answered(c, self.observations[c.id]) for c in cells}

    @staticmethod
    def _answered(cell: Any, observed: Any) -> Any:
        """A reachable cell's echo server names itself, as the suite's does: the cell's target
        unless the script says who answered (answered_by="" for a server that names nobody)."""
        if not observed.reachable or observed.answered_by is not None:
            return observed
        return dataclasses.replace(observed, answered_by=cell.target.name)

    def node_subnets(self) -> dict[str, Any]:
        return dict(self.subnets)

    def sweep(self, keep_prefix: str) -> list[str]:
        return []

    def remove_run(self, run_id: str) -> list[str]:
        return []

    def dump_pod(self, pod: Any) -> dict[str, Any]:
        raise AssertionError("not used")

    def load_pod(self, data: Any) -> Any:
        raise AssertionError("not used")


# --- strict fakes of the machine handle's adapters (lab/adapters/protocols.py) ----------------


class FakeVagrant:
    """VagrantPort: records every verb; `states` and `ssh_config` answer; `fail_up` makes `up`
    raise as an interrupted vagrant would."""

    def __init__(self, states: dict[str, Any] | None = None, ssh_config: str = "") -> None:
        self.calls: list[tuple[str, ...]] = []
        self.budgets: list[float] = []
        self.states = states or {}
        self.ssh_config = ssh_config
        self.fail_up: BaseException | None = None

    def budget(self, seconds: float) -> Any:
        import contextlib

        self.budgets.append(seconds)
        return contextlib.nullcontext()

    def up_all(self, parallel: bool = True) -> None:
        self.calls.append(("up", str(parallel)))
        if self.fail_up is not None:
            raise self.fail_up

    def halt_all(self) -> None:
        self.calls.append(("halt",))

    def destroy_all(self) -> None:
        self.calls.append(("destroy",))

    def reload_node(self, node: str) -> None:
        self.calls.append(("reload", node))

    def snapshot_save_all(self, name: str) -> None:
        self.calls.append(("snapshot save", name))

    def snapshot_restore_all(self, name: str) -> None:
        self.calls.append(("snapshot restore", name))

    def snapshot_list_all(self) -> str:
        self.calls.append(("snapshot list",))
        return ""

    def snapshot_delete_all(self, name: str) -> None:
        self.calls.append(("snapshot delete", name))

    def machine_states(self) -> dict[str, Any]:
        self.calls.append(("status",))
        return dict(self.states)

    def ssh_config_text(self) -> str:
        self.calls.append(("ssh-config",))
        return self.ssh_config

    def kill_strays(self) -> list[int]:
        self.calls.append(("kill strays",))
        return []


class FakeLibvirt:
    """LibvirtPort: what the lab holds, and every call made."""

    def __init__(self, held: Any = None, networks: tuple[str, ...] = ()) -> None:
        from lab.adapters.protocols import LabObjects

        self.held = held if held is not None else LabObjects()
        self.networks = networks  # the XML of every network libvirt knows
        self.running: dict[str, Any] = {}  # domain -> RunningDomain, for running_domains
        self.calls: list[tuple[str, ...]] = []

    def list_lab_objects(self, prefix: str) -> Any:
        self.calls.append(("list", prefix))
        return self.held

    def sweep(self, prefix: str) -> Any:
        from lab.adapters.protocols import LabObjects

        self.calls.append(("sweep", prefix))
        swept, self.held = self.held, LabObjects()
        return swept

    def network_xmls(self) -> tuple[str, ...]:
        self.calls.append(("network_xmls",))
        return self.networks

    def domain_state(self, domain: str) -> str:
        self.calls.append(("state", domain))
        return "running"

    def running_domains(self, names: Any) -> dict[str, Any]:
        self.calls.append(("running", *names))
        return {n: d for n, d in self.running.items() if n in names}

    def suspend(self, domain: str) -> None:
        self.calls.append(("suspend", domain))

    def resume(self, domain: str) -> None:
        self.calls.append(("resume", domain))

    def hard_reset(self, domain: str) -> None:
        self.calls.append(("reset", domain))

    def set_link(self, domain: str, network: str, up: bool) -> None:
        self.calls.append(("link", domain, network, "up" if up else "down"))


class LocalStream:
    """e2e.session.LineStream over a process on this host: the remote shell line run by
    `sh -c` (its leading `sudo -n` dropped: the tests already run as the user they need), so
    the real agent serves the unit tests."""

    def __init__(self, remote: str) -> None:
        import queue
        import subprocess

        self.remote = remote.removeprefix("sudo -n ")
        self.proc = subprocess.Popen(
            ["sh", "-c", self.remote],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def readline(self, timeout: float) -> str:
        import queue

        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no line within {timeout}s") from None
        if line is None:
            raise EOFError("the process closed its output")
        return line

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# --- a strict fake CRI runtime (e2e/drivers/cri.py CriRuntime) --------------------------------


class FakeCri:
    """One node's CRI runtime in memory: sandboxes get the next IP of `ips` and PIDs counting
    up; containers start RUNNING. ExecSync answers only from `execs` ((pod name, container
    name) -> fn(argv) -> (exit, stdout, stderr)); an unknown id is NOT_FOUND, as containerd
    says it; `fail[call]` makes the next such call raise that CriError. Every call is recorded
    in `calls` as (call, name or id)."""

    def __init__(self, node: str, ips: Sequence[str]) -> None:
        self.node = node
        self.ips = list(ips)
        self.sandboxes: dict[str, dict[str, Any]] = {}
        self.containers: dict[str, dict[str, Any]] = {}
        self.execs: dict[tuple[str, str], Callable[[tuple[str, ...]], tuple[int, str, str]]] = {}
        self.fail: dict[str, Any] = {}
        self.calls: list[tuple[str, str]] = []
        self.ready_waits = 0
        self.closed = False
        self._next = 100

    def _call(self, name: str, what: str) -> None:
        self.calls.append((name, what))
        if name in self.fail:
            raise self.fail.pop(name)

    def _missing(self, call: str, what: str) -> Exception:
        from lab.adapters.cri import CriError

        return CriError(call, f"/fake/{self.node}.sock", "NOT_FOUND", f"{what} not found")

    def _pid(self) -> int:
        self._next += 1
        return self._next

    def network_ready(self) -> bool:
        self._call("Status", "")
        return True

    def wait_for_network_ready(self, policy: Any = None, sleep: Any = None) -> None:
        self.ready_waits += 1

    def run_pod_sandbox(self, pod: Any, timeout_s: float = 120) -> str:
        from lab.runtime.cri import messages

        self._call("RunPodSandbox", pod.name)
        messages.pod_sandbox_config(pod)  # the real request builder validates it
        sid = f"sb{len(self.sandboxes) + 1:02d}{pod.name}"
        self.sandboxes[sid] = {
            "pod": pod,
            "ip": self.ips.pop(0),
            "pid": self._pid(),
            "netns": f"/var/run/netns/cni-{sid}",
            "ready": True,
            "labels": messages.pod_labels(pod),
        }
        return sid

    def stop_pod_sandbox(self, sandbox_id: str, timeout_s: float = 120) -> None:
        self._call("StopPodSandbox", sandbox_id)
        if sandbox_id not in self.sandboxes:  # containerd 1.6; RemovePodSandbox is idempotent
            raise self._missing("StopPodSandbox", sandbox_id)
        self.sandboxes[sandbox_id]["ready"] = False

    def remove_pod_sandbox(self, sandbox_id: str, timeout_s: float = 120) -> None:
        self._call("RemovePodSandbox", sandbox_id)
        self.sandboxes.pop(sandbox_id, None)
        for cid in [c for c, v in self.containers.items() if v["sandbox"] == sandbox_id]:
            del self.containers[cid]

    def pod_sandbox_status(self, sandbox_id: str, verbose: bool = False) -> Any:
        import json

        from lab.runtime.cri import runtime_v1_pb2 as pb

        self._call("PodSandboxStatus", sandbox_id)
        if sandbox_id not in self.sandboxes:
            raise self._missing("PodSandboxStatus", sandbox_id)
        sb = self.sandboxes[sandbox_id]
        status = pb.PodSandboxStatus(
            id=sandbox_id,
            metadata=pb.PodSandboxMetadata(name=sb["pod"].name, namespace=sb["pod"].namespace),
            state=pb.SANDBOX_READY if sb["ready"] else pb.SANDBOX_NOTREADY,
            network=pb.PodSandboxNetworkStatus(ip=sb["ip"]),
            labels=sb["labels"],
        )
        info = {
            "pid": sb["pid"],
            "runtimeSpec": {"linux": {"namespaces": [{"type": "network", "path": sb["netns"]}]}},
            "cniResult": {
                "Interfaces": {
                    "eth0": {"IPConfigs": [{"IP": sb["ip"], "Gateway": ""}], "Sandbox": "x"}
                }
            },
        }
        return pb.PodSandboxStatusResponse(
            status=status, info={"info": json.dumps(info)} if verbose else {}
        )

    def list_pod_sandboxes(self, labels: Mapping[str, str]) -> list[Any]:
        from lab.runtime.cri import runtime_v1_pb2 as pb

        self._call("ListPodSandbox", ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
        return [
            pb.PodSandbox(
                id=sid,
                metadata=pb.PodSandboxMetadata(name=sb["pod"].name),
                labels=sb["labels"],
            )
            for sid, sb in self.sandboxes.items()
            if all(sb["labels"].get(k) == v for k, v in labels.items())
        ]

    def create_container(self, sandbox_id: str, pod: Any, spec: Any) -> str:
        from lab.runtime.cri import messages

        self._call("CreateContainer", spec.name)
        if sandbox_id not in self.sandboxes:
            raise self._missing("CreateContainer", sandbox_id)
        config = messages.container_config(pod, spec)
        cid = f"c{len(self.containers) + 1:02d}{spec.name}"
        self.containers[cid] = {
            "sandbox": sandbox_id,
            "name": spec.name,
            "pod": pod.name,
            "argv": tuple(spec.command),
            "image": spec.image,
            "env": {kv.key: kv.value for kv in config.envs},
            "labels": dict(config.labels),
            "pid": 0,
        }
        return cid

    def start_container(self, container_id: str) -> None:
        self._call("StartContainer", container_id)
        self.containers[container_id]["pid"] = self._pid()

    def container_status(self, container_id: str, verbose: bool = False) -> Any:
        import json

        from lab.runtime.cri import runtime_v1_pb2 as pb

        self._call("ContainerStatus", container_id)
        if container_id not in self.containers:
            raise self._missing("ContainerStatus", container_id)
        c = self.containers[container_id]
        sandbox_pid = self.sandboxes[c["sandbox"]]["pid"]
        info = {
            "pid": c["pid"],
            "runtimeSpec": {
                "linux": {
                    "namespaces": [{"type": "network", "path": f"/proc/{sandbox_pid}/ns/net"}]
                }
            },
        }
        state = pb.CONTAINER_RUNNING if c["pid"] else pb.CONTAINER_CREATED
        return pb.ContainerStatusResponse(
            status=pb.ContainerStatus(id=container_id, state=state),
            info={"info": json.dumps(info)} if verbose else {},
        )

    def list_containers(self, labels: Mapping[str, str], sandbox_id: str = "") -> list[Any]:
        from lab.runtime.cri import runtime_v1_pb2 as pb

        self._call("ListContainers", ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
        return [
            pb.Container(
                id=cid,
                pod_sandbox_id=c["sandbox"],
                metadata=pb.ContainerMetadata(name=c["name"]),
                labels=c["labels"],
            )
            for cid, c in self.containers.items()
            if all(c["labels"].get(k) == v for k, v in labels.items())
            and (not sandbox_id or c["sandbox"] == sandbox_id)
        ]

    def exec_sync(self, container_id: str, argv: Sequence[str], timeout_s: int = 30) -> Any:
        from lab.adapters.cri import ExecResult

        self._call("ExecSync", container_id)
        if container_id not in self.containers:
            raise self._missing("ExecSync", container_id)
        c = self.containers[container_id]
        key = (c["pod"], c["name"])
        if key not in self.execs:
            raise AssertionError(f"unexpected ExecSync in {key}: {tuple(argv)}")
        code, out, err = self.execs[key](tuple(argv))
        return ExecResult(tuple(argv), code, out, err)

    def close(self) -> None:
        self.closed = True
