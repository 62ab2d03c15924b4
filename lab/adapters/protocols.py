"""What the machine handle needs of its adapters (no side effects here). The real adapters
(`lab.adapters.vagrant.BoundedVagrant`, `lab.adapters.libvirt.Libvirt`) and the strict fakes of
the unit tests both implement these; a unit test checks the fakes against them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from lab.common.commands import Command, Output
from lab.hosts.parse import MachineState


@dataclass(frozen=True)
class LabObjects:
    """What libvirt holds of one lab (by name prefix)."""

    domains: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()  # "pool/volume"
    networks: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.domains or self.volumes or self.networks)

    def __str__(self) -> str:
        parts = [
            f"{kind}: {', '.join(names)}"
            for kind, names in (
                ("domains", self.domains),
                ("volumes", self.volumes),
                ("networks", self.networks),
            )
            if names
        ]
        return "; ".join(parts) or "nothing"


@dataclass(frozen=True)
class RunningDomain:
    """A running libvirt domain: its UUID and the IPv4 addresses of its DHCP leases."""

    uuid: str
    lease_addresses: tuple[str, ...] = ()


class VagrantPort(Protocol):
    """Vagrant for one lab, every call bounded by the current `budget`."""

    def budget(self, seconds: float) -> AbstractContextManager[None]: ...

    def up_all(self, parallel: bool = True) -> None: ...

    def halt_all(self) -> None: ...

    def destroy_all(self) -> None: ...

    def reload_node(self, node: str) -> None: ...

    def snapshot_save_all(self, name: str) -> None: ...

    def snapshot_restore_all(self, name: str) -> None: ...

    def snapshot_list_all(self) -> str: ...

    def snapshot_delete_all(self, name: str) -> None: ...

    def machine_states(self) -> dict[str, MachineState]: ...

    def ssh_config_text(self) -> str: ...

    def kill_strays(self) -> list[int]: ...


class LibvirtPort(Protocol):
    """libvirt as the lab uses it: what it owns (by prefix), sweeps, domain faults."""

    def list_lab_objects(self, prefix: str) -> LabObjects: ...

    def sweep(self, prefix: str) -> LabObjects: ...

    def network_xmls(self) -> tuple[str, ...]: ...

    def domain_state(self, domain: str) -> str: ...

    def running_domains(self, names: Sequence[str]) -> dict[str, RunningDomain]: ...

    def suspend(self, domain: str) -> None: ...

    def resume(self, domain: str) -> None: ...

    def hard_reset(self, domain: str) -> None: ...

    def set_link(self, domain: str, network: str, up: bool) -> None: ...


@dataclass(frozen=True)
class RemoteResult:
    """One command's outcome on a node."""

    node: str
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class NodeChannel(Protocol):
    """One node as provisioning and the suite reach it: lab.adapters.ssh.SshChannel, or a
    test's strict fake."""

    name: str

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult: ...

    def probe(
        self, commands: Sequence[Command], timeout: float = 120, one_sudo: bool = False
    ) -> tuple[RemoteResult, tuple[Output, ...]]: ...

    def reproduce(self, remote: str) -> str: ...
