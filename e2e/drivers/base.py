"""The one small interface both workload drivers implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Protocol

from lab.adapters.ssh import RemoteResult
from lab.commands import Command, render_remote
from lab.errors import CommandFailed


@dataclass(frozen=True)
class Container:
    """A container of a pod: a name, an image (Kubernetes only) and the process it runs."""

    name: str
    argv: tuple[str, ...]
    image: str = ""


@dataclass(frozen=True)
class Pod:
    name: str  # unique per run and test; also the sandbox / Kubernetes pod name
    node: str  # the lab node it runs on
    ip: IPv4Address  # the IP the runtime (CNI result / Kubernetes API) reports
    containers: tuple[Container, ...]
    details: dict[str, object] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    reproduce: str  # one pasteable command that runs the same thing again

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


NO_EXIT_CODE = 124  # `timeout`'s code; ours when a command timed out or the SSH channel broke


class NodeChannel(Protocol):
    """What a driver needs of a node: lab.adapters.ssh.Node, or a test's strict fake."""

    name: str

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult: ...

    def reproduce(self, remote: str) -> str: ...


def run_on(channel: NodeChannel, command: Command, timeout: float) -> ExecResult:
    """Run `command` on a node; a timeout or a broken SSH channel is an answer (exit
    NO_EXIT_CODE), not a crash. Carries the pasteable command that reproduces it."""
    reproduce = channel.reproduce(render_remote(command))
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


class Driver(Protocol):
    name: str

    def create_pod(self, name: str, node: str, containers: tuple[Container, ...]) -> Pod: ...

    def exec(
        self, pod: Pod, container: str, argv: tuple[str, ...], timeout: float = 30
    ) -> ExecResult: ...

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> ExecResult: ...

    def delete_pod(self, pod: Pod) -> None: ...

    def sweep(self, keep_prefix: str) -> list[str]:
        """Remove every pod of earlier runs (by the run label/prefix); returns what went."""
        ...
