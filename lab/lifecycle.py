"""Orchestration: wires the pure core to the adapters (render, up, status, snapshot, destroy)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from lab import paths
from lab.adapters import libvirt as lv
from lab.adapters import sandbox
from lab.adapters.host import probe_host_facts
from lab.adapters.ssh import Node as SshNode
from lab.adapters.vagrant import BoundedVagrant, kill_strays
from lab.config import Lab
from lab.errors import CommandFailed, LabStateError
from lab.hypervisor import HypervisorChoice, choose_hypervisor
from lab.parse import MachineState, SshTarget, parse_ssh_config
from lab.render import render_lab_files

log = logging.getLogger(__name__)
console = Console(stderr=True, highlight=False)

# taken by the nightly right after provisioning; the disruptive tests restore it when needed
PROVISIONED_SNAPSHOT = "netlab-provisioned"
UP_LINE = re.compile(r"^==> (?P<node>[\w.-]+): (?P<msg>.*)$")


def hypervisor(lab: Lab) -> HypervisorChoice:
    return choose_hypervisor(lab.vm.hypervisor, probe_host_facts())


def flannel_upstream(lab: Lab) -> str | None:
    """The upstream flannel manifest (pinned by checksum; cached, else downloaded)."""
    if lab.pod_network.flannel is None:
        return None
    from lab.adapters.fetch import fetch_pinned

    fl = lab.pod_network.flannel
    return fetch_pinned(fl.manifest_url, fl.manifest_sha256).decode()


def render(lab: Lab) -> list[Path]:
    """Write every rendered file under .lab/<lab>/; returns the paths written."""
    upstream = flannel_upstream(lab)
    choice = hypervisor(lab)
    if choice.warning:
        log.warning("%s", choice.warning)
    state = paths.state_dir(lab.name)
    state.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render_lab_files(lab, choice, upstream).items():
        path = state / name
        path.write_text(content)
        written.append(path)
    return written


class Progress:
    """One line per vagrant event, prefixed with elapsed time and the node it concerns."""

    def __init__(self, label: str) -> None:
        self.start = time.monotonic()
        self.label = label

    def __call__(self, line: str) -> None:
        m = UP_LINE.match(line)
        if m:
            elapsed = time.monotonic() - self.start
            console.print(
                f"[dim]{elapsed:6.1f}s[/dim] {self.label} [bold]{m['node']}[/bold]: {m['msg']}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )


def prepare_host(lab: Lab) -> None:
    netns = sandbox.start()
    if lab.vm.box_build:
        from lab import box as box_builder

        box_builder.ensure_box(lab)
    sandbox.enter(netns)


class Runtime:
    """A lab's live side: vagrant, libvirt and ssh for one lab definition."""

    def __init__(
        self, lab: Lab, on_line: Callable[[str], None] | None = None, log_tag: str = ""
    ) -> None:
        self.lab = lab
        self.log_tag = log_tag  # per-process node logs (xdist workers): logs/<node>.<tag>.log
        self.state = paths.state_dir(lab.name)
        self.logs = self.state / "logs"
        self.vagrant = BoundedVagrant(lab.name, self.logs / "vagrant.log", on_line)
        self._nodes: dict[str, SshNode] | None = None

    # -- setup ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """libvirt reachable, the box built (it needs the network, so before we join the lab
        namespace, which has none), files rendered, then this process inside the namespace."""
        prepare_host(self.lab)
        render(self.lab)

    def domain(self, node: str) -> str:
        return f"{self.lab.prefix}{node}"

    @property
    def private_network(self) -> str:
        return f"{self.lab.prefix}priv"

    # -- lifecycle --------------------------------------------------------------------------

    def up(self, parallel: bool = True) -> float:
        """Bring every node up; on failure (or Ctrl-C) sweep what was half-created."""
        start = time.monotonic()
        budget = self.lab.vm.boot_timeout_s + 120 * len(self.lab.nodes)
        try:
            with self.vagrant.budget(budget):
                self.vagrant.up_all(parallel)
        except BaseException:
            log.warning("up failed: removing what it created (log: %s)", self.logs / "vagrant.log")
            self.sweep()
            raise
        self.refresh_ssh_config()
        return time.monotonic() - start

    def states(self) -> dict[str, MachineState]:
        return self.vagrant.machine_states()

    def expect_running(self) -> None:
        states = self.states()
        down = [f"{n}: {s.state}" for n, s in states.items() if s.state != "running"]
        if down or not states:
            raise LabStateError(
                f"lab {self.lab.name} is not running ({', '.join(down) or 'no machines'}); "
                f"run `make lab LAB={self.lab.name}`"
            )

    def halt(self) -> None:
        with self.vagrant.budget(300):
            self.vagrant.halt_all()

    def destroy(self) -> lv.LabObjects:
        """vagrant destroy (if it still knows the machines), then sweep by prefix."""
        self.close()
        if (self.state / ".vagrant").exists():
            try:
                with self.vagrant.budget(300):
                    self.vagrant.destroy_all()
            except CommandFailed as exc:
                log.warning("vagrant destroy failed (%s); sweeping by prefix", exc.exit_code)
        return self.sweep()

    def sweep(self) -> lv.LabObjects:
        """Everything of this lab in libvirt, after stopping any vagrant still creating it."""
        self.close()
        kill_strays(self.lab.name)
        swept = lv.sweep(self.lab.prefix)
        self.forget()
        return swept

    def forget(self) -> None:
        """Drop vagrant's and our own record of machines that no longer exist."""
        shutil.rmtree(self.state / ".vagrant", ignore_errors=True)
        (self.state / "ssh-config").unlink(missing_ok=True)

    def leftovers(self) -> lv.LabObjects:
        return lv.list_lab_objects(self.lab.prefix)

    def reload(self, node: str) -> None:
        self.close()
        with self.vagrant.budget(self.lab.vm.boot_timeout_s + 120):
            self.vagrant.reload_node(node)
        self.refresh_ssh_config()

    def snapshot_save(self, name: str) -> None:
        self.close()
        with self.vagrant.budget(300):
            self.vagrant.snapshot_save_all(name)

    def snapshot_restore(self, name: str) -> None:
        self.close()
        with self.vagrant.budget(600):
            self.vagrant.snapshot_restore_all(name)
        self.refresh_ssh_config()

    def snapshot_list(self) -> str:
        with self.vagrant.budget(60):
            return self.vagrant.snapshot_list_all()

    def snapshot_delete(self, name: str) -> None:
        with self.vagrant.budget(120):
            self.vagrant.snapshot_delete_all(name)

    # -- ssh --------------------------------------------------------------------------------

    def refresh_ssh_config(self) -> dict[str, SshTarget]:
        """Ask vagrant again (addresses can change after a reboot or restore); the SSH channels
        handed out before keep working: they are the same objects, pointed at the new target."""
        self.close()
        text = self.vagrant.ssh_config_text()
        targets = parse_ssh_config(text)
        for name, node in (self._nodes or {}).items():
            if name in targets:
                node.target = targets[name]
        (self.state / "ssh-config").write_text(text)
        return targets

    def ssh_targets(self) -> dict[str, SshTarget]:
        cached = self.state / "ssh-config"
        if cached.exists():
            return parse_ssh_config(cached.read_text())
        return self.refresh_ssh_config()

    def expect_ssh_config(self) -> None:
        if not (self.state / "ssh-config").exists():
            raise LabStateError(
                f"lab {self.lab.name} has no cached ssh-config ({self.state / 'ssh-config'}): "
                f"is it up? run `make lab LAB={self.lab.name}`"
            )

    def nodes(self) -> dict[str, SshNode]:
        """name -> SSH channel, in lab order; built from one ssh-config call."""
        if self._nodes is None:
            targets = self.ssh_targets()
            missing = [n for n in self.lab.node_names if n not in targets]
            if missing:
                raise LabStateError(f"no ssh-config for {', '.join(missing)}: is the lab up?")
            suffix = f".{self.log_tag}" if self.log_tag else ""
            self._nodes = {
                name: SshNode(self.lab.name, name, targets[name], self.logs / f"{name}{suffix}.log")
                for name in self.lab.node_names
            }
        return self._nodes

    def close(self) -> None:
        """Close every SSH connection; the channel objects stay valid and reconnect on use."""
        for node in (self._nodes or {}).values():
            node.close()


# --- CLI verbs (each takes the lab and the parsed arguments, returns an exit code) ---------


def _runtime(lab: Lab, progress: bool = False) -> Runtime:
    rt = Runtime(lab, Progress(lab.name) if progress else None)
    rt.prepare()
    return rt


def up(lab: Lab, args: argparse.Namespace) -> int:
    rt = _runtime(lab, progress=True)
    console.print(f"bringing up {lab.name}: {', '.join(lab.node_names)} (parallel)")
    seconds = rt.up()
    console.print(f"[green]{lab.name} is up[/green] in {seconds:.0f}s")
    return status(lab, args, rt)


def box(lab: Lab, args: argparse.Namespace) -> int:
    if not lab.vm.box_build:
        raise LabStateError(f"lab {lab.name} uses the published box {lab.vm.box}; nothing to build")
    from lab import box as box_builder

    sandbox.start()
    print(box_builder.ensure_box(lab))
    return 0


def status(lab: Lab, args: argparse.Namespace, rt: Runtime | None = None) -> int:
    rt = rt or _runtime(lab)
    for name, st in rt.states().items():
        print(f"{name:20} {st.state:12} {st.provider}")
    return 0


def ssh_config(lab: Lab, args: argparse.Namespace) -> int:
    rt = _runtime(lab)
    print(rt.vagrant.ssh_config_text(), end="")
    return 0


def halt(lab: Lab, args: argparse.Namespace) -> int:
    _runtime(lab).halt()
    return 0


def destroy(lab: Lab, args: argparse.Namespace) -> int:
    swept = _runtime(lab).destroy()
    console.print(f"destroyed {lab.name}; leftovers swept after vagrant destroy: {swept}")
    return 0


def sweep(lab: Lab, args: argparse.Namespace) -> int:
    rt = _runtime(lab)
    swept = rt.sweep()
    console.print(f"swept {lab.prefix}*: {swept}")
    return 0


def snapshot(lab: Lab, args: argparse.Namespace) -> int:
    rt = _runtime(lab)
    if args.action in ("save", "restore", "delete") and not args.name:
        raise LabStateError(f"snapshot {args.action} needs a NAME")
    if args.action == "save":
        rt.snapshot_save(args.name)
    elif args.action == "restore":
        rt.snapshot_restore(args.name)
    elif args.action == "delete":
        rt.snapshot_delete(args.name)
    else:
        print(rt.snapshot_list(), end="")
    return 0


def ssh(lab: Lab, args: argparse.Namespace) -> int:
    """Interactive `vagrant ssh` (or one command) from inside the lab's namespace."""
    rt = _runtime(lab)
    target = rt.ssh_targets().get(args.node)
    if target is None:
        raise LabStateError(f"no node {args.node!r} in the running lab {lab.name}")
    remote = [a for a in args.remote if a != "--"]
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-i",
        target.identity_files[0],
        "-p",
        str(target.port),
        f"{target.user}@{target.hostname}",
        *remote,
    ]
    os.execvp("ssh", argv)
