"""Strict test doubles for the protocols the harness owns. A fake answers only the commands a
test scripted, in order; anything else is an error of the test (never a silent default).
tests/unit/test_fakes.py checks each fake against the protocol it stands in for."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.adapters.ssh import RemoteResult, SshChannel
from lab.commands import Command, Output, render_probe, render_remote
from lab.errors import CommandFailed


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


class FakeDriver:
    """Answers the scenarios from tables the test writes: `observations` (cell id ->
    Observation), `execs` ((pod, container or None for the pod's netns, argv) -> result), and a
    NodeRunner over strict fake channels for node-side reads. Anything not in a table fails."""

    name = "fake"

    def __init__(self, lab: Any, steps: Script | None = None) -> None:
        from e2e.drivers.base import NodeRunner

        self.lab = lab
        self.runner = NodeRunner(channels(lab.name, lab.node_names, steps or script()))
        self.observations: dict[str, Any] = {}
        self.execs: dict[tuple[str, str | None, tuple[str, ...]], Any] = {}
        self.subnets: dict[str, Any] = {}
        self.asked: list[list[str]] = []

    def fleet_containers(self) -> tuple[Any, ...]:
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

    def observe(self, cells: Sequence[Any]) -> dict[str, Any]:
        self.asked.append([c.id for c in cells])
        missing = [c.id for c in cells if c.id not in self.observations]
        if missing:
            raise AssertionError(f"no observation scripted for {missing}")
        return {c.id: self.observations[c.id] for c in cells}

    def node_subnets(self) -> dict[str, Any]:
        return dict(self.subnets)

    def sweep(self, keep_prefix: str) -> list[str]:
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

    def suspend(self, domain: str) -> None:
        self.calls.append(("suspend", domain))

    def resume(self, domain: str) -> None:
        self.calls.append(("resume", domain))

    def hard_reset(self, domain: str) -> None:
        self.calls.append(("reset", domain))

    def set_link(self, domain: str, network: str, up: bool) -> None:
        self.calls.append(("link", domain, network, "up" if up else "down"))
