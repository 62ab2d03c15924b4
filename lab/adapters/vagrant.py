"""Vagrant through python-vagrant, wrapped: every call is bounded, its output is logged, a
non-zero exit is an error (never swallowed), Ctrl-C lets vagrant clean up before we go on.

python-vagrant builds the command lines; its three runners (`_call_vagrant_command`,
`_run_vagrant_command`, `_stream_vagrant_command`) are replaced by one bounded runner here,
because the originals have no timeout and, interrupted, leave vagrant running unsupervised.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vagrant

from lab.adapters import local
from lab.common.errors import CommandFailed
from lab.hosts.parse import MachineState, parse_vagrant_status
from lab.hosts.vagrant_up import without_progress
from lab.model import paths

log = logging.getLogger(__name__)

# Grace given to vagrant to clean up after SIGINT (it destroys half-created machines).
INTERRUPT_GRACE_S = 60


def vagrant_env(lab_name: str) -> dict[str, str]:
    state = paths.state_dir(lab_name)
    return {
        **os.environ,
        "VAGRANT_CWD": str(paths.REPO),
        "VAGRANT_DOTFILE_PATH": str(state / ".vagrant"),
        "NETLAB_VAGRANT_JSON": str(state / "vagrant.json"),
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
        "VAGRANT_NO_COLOR": "1",
    }


def kill_strays(lab_name: str) -> list[int]:
    """SIGKILL every vagrant still working on this lab (e.g. its parent was killed with -9):
    found by the NETLAB_VAGRANT_JSON of the lab in the process environment."""
    marker = f"NETLAB_VAGRANT_JSON={paths.state_dir(lab_name) / 'vagrant.json'}".encode()
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    if killed:
        log.warning("killed %d stray vagrant process(es) of lab %s", len(killed), lab_name)
    return killed


class BoundedVagrant(vagrant.Vagrant):
    """python-vagrant with one bounded runner; use `with v.budget(seconds): v.up(...)`."""

    def __init__(self, lab_name: str, log_file: Path, on_line: Callable[[str], None] | None = None):
        super().__init__(root=str(paths.REPO), env=vagrant_env(lab_name))
        self.lab_name = lab_name
        self.log_file = log_file
        self.on_line = on_line
        self.timeout_s: float = 120.0

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        previous, self.timeout_s = self.timeout_s, seconds
        try:
            yield
        finally:
            self.timeout_s = previous

    # -- the single runner ------------------------------------------------------------------

    def _execute(self, args: list[Any]) -> str:
        """Run vagrant; its whole output goes to the log file, and a failure names that file
        and carries the tail of the output without the progress meter."""
        command = [str(a) for a in self._make_vagrant_command(args)]
        try:
            result = local.stream(
                command,
                timeout=self.timeout_s,
                on_line=self.on_line,
                log_file=self.log_file,
                env=self.env,
                cwd=self.root,
                stop_signal=signal.SIGINT,  # vagrant removes the machines it half-created
                grace_s=INTERRUPT_GRACE_S,
                where=f"local (vagrant; its whole output: {self.log_file})",
                reproduce=f"python -m lab ssh-config {self.lab_name}  # env as in {self.log_file}",
            )
        except CommandFailed as exc:
            raise CommandFailed(
                exc.command,
                exc.exit_code,
                without_progress(exc.stdout),
                without_progress(exc.stderr),
                where=exc.where,
                reproduce=exc.reproduce,
            ) from None
        return result.stdout

    def _call_vagrant_command(self, args: list[Any]) -> None:
        self._execute(args)

    def _run_vagrant_command(self, args: list[Any]) -> str:
        return self._execute(args)

    def _stream_vagrant_command(self, args: list[Any]) -> Iterator[str]:
        yield from self._execute(args).splitlines()

    # -- typed verbs (python-vagrant's own methods, bounded by the runner above) -------------

    def up_all(self, parallel: bool = True) -> None:
        if parallel:  # vagrant-libvirt boots machines in parallel by default
            self.up(provision=False)
        else:
            self._execute(["up", "--no-provision", "--no-parallel"])

    def halt_all(self) -> None:
        self.halt()

    def destroy_all(self) -> None:
        self.destroy()

    def reload_node(self, node: str) -> None:
        self.reload(vm_name=node, provision=False)

    def snapshot_save_all(self, name: str) -> None:
        self.snapshot_save(name)

    def snapshot_restore_all(self, name: str) -> None:
        self._execute(["snapshot", "restore", "--no-provision", name])

    def snapshot_list_all(self) -> str:
        return self._execute(["snapshot", "list"])

    def snapshot_delete_all(self, name: str) -> None:
        self.snapshot_delete(name)

    # -- our own parsers instead of python-vagrant's lenient ones ---------------------------

    def kill_strays(self) -> list[int]:
        return kill_strays(self.lab_name)

    def machine_states(self) -> dict[str, MachineState]:
        with self.budget(60):
            return parse_vagrant_status(self._execute(["status", "--machine-readable"]))

    def ssh_config_text(self) -> str:
        """One `vagrant ssh-config` call for every machine (parse with parse_ssh_config)."""
        with self.budget(60):
            return self._execute(["ssh-config"])
