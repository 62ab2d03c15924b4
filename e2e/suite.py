"""The suite's session: one per pytest process, built once by the lab plugin
(app/pytest_plugin.py) from the lab file and stashed on the config. Hooks and fixtures read the
lab, the run id, the artifacts folder and the controller's shared connections from it, never
from the environment; a parallel run's controller hands the workers what they need through
xdist's `workerinput`, and each worker builds its own session from that.

The controller of a parallel run (or the only process) also holds what its workers share
(`Shared`): every node's serving agents behind a Unix socket per node (e2e/hub.py) and one
forward of each node's containerd socket (e2e/drivers/cri.py), over one SSH connection per
node, which removes the run's pods at the end as well."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from e2e.drivers.base import node_python
from e2e.drivers.cri import ForwardedRuntimes
from e2e.hub import Hub
from e2e.session import SessionPool
from lab.hosts.machines import LabMachines
from lab.model.config import Lab

Role = Literal["main", "controller", "worker"]


def new_run_id() -> str:
    return "r" + secrets.token_hex(3)


class Shared:
    """The controller's connections, shared with its workers: started before xdist starts
    them, closed after the run's pods are removed."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.machines = LabMachines(lab, log_tag="controller")
        self.hub: Hub | None = None
        self.forwards: ForwardedRuntimes | None = None

    def start(self) -> tuple[str, str]:
        """Start the agent hub (and the containerd forwards on a lab with a runtime); returns
        their directories for the workers."""
        channels = self.machines.channels()
        python = node_python(self.lab)
        self.hub = Hub({node: SessionPool(ch.open_stream, python) for node, ch in channels.items()})
        hub_dir = self.hub.start()
        forwards_dir = ""
        if self.lab.runtime == "containerd":
            self.forwards = ForwardedRuntimes(channels)
            forwards_dir = self.forwards.share()
        return hub_dir, forwards_dir

    def close(self) -> None:
        if self.forwards is not None:
            self.forwards.close()
            self.forwards = None
        if self.hub is not None:
            self.hub.close()
            self.hub = None
        self.machines.close()


@dataclass
class Suite:
    lab: Lab
    run_id: str
    artifacts: Path
    role: Role
    worker: str = "main"  # "main" without xdist, "controller", or the worker's id ("gw0")
    hub: str = ""  # the controller's agent hub ("": this process starts agents of its own)
    forwards: str = ""  # the controller's containerd socket forwards ("": its own)
    created: bool = False  # this run brought the lab up (and takes it down at the end)
    shared: Shared | None = field(default=None, repr=False)  # the controller's (or main's)

    def for_worker(self) -> dict[str, str]:
        """What a worker needs of this run (xdist `workerinput`: plain strings)."""
        return {
            "netlab_run_id": self.run_id,
            "netlab_artifacts": str(self.artifacts),
            "netlab_hub": self.hub,
            "netlab_forwards": self.forwards,
            "netlab_instance": self.lab.name if self.lab.definition else "",
        }

    @classmethod
    def of_worker(cls, lab: Lab, workerinput: Mapping[str, Any]) -> Suite:
        return cls(
            lab,
            workerinput["netlab_run_id"],
            Path(workerinput["netlab_artifacts"]),
            "worker",
            worker=str(workerinput["workerid"]),
            hub=workerinput["netlab_hub"],
            forwards=workerinput["netlab_forwards"],
        )


SUITE = pytest.StashKey[Suite]()


def suite_of(config: pytest.Config) -> Suite | None:
    """This process's suite session; None when no lab was named (--lab)."""
    return config.stash.get(SUITE, None)


def suite_lab(config: pytest.Config) -> Lab | None:
    suite = suite_of(config)
    return None if suite is None else suite.lab
