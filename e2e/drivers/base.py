"""The one small interface both workload drivers implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Protocol


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
