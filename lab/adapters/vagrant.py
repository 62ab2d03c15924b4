"""Vagrant through python-vagrant, wrapped: every call is bounded, its output is logged, a
non-zero exit is an error (never swallowed), Ctrl-C lets vagrant clean up before we go on.

python-vagrant builds the command lines; its three runners (`_call_vagrant_command`,
`_run_vagrant_command`, `_stream_vagrant_command`) are replaced by one bounded runner here,
because the originals have no timeout and, interrupted, leave vagrant running unsupervised.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vagrant

from lab import paths
from lab.adapters.local import stop_group
from lab.errors import CommandFailed
from lab.parse import MachineState, parse_vagrant_status

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
        command = [str(a) for a in self._make_vagrant_command(args)]
        line = shlex.join(command)
        log.debug("vagrant: %s", line)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        stdout_lines: list[str] = []
        stderr_chunks: list[str] = []
        with self.log_file.open("a") as logf:
            logf.write(f"\n$ {line}\n")
            logf.flush()
            proc = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env,
                text=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # our own group: we decide how it is interrupted
            )
            err_reader = threading.Thread(
                target=lambda: stderr_chunks.append(proc.stderr.read() if proc.stderr else ""),
                daemon=True,
            )
            err_reader.start()
            deadline = time.monotonic() + self.timeout_s
            timer = threading.Timer(self.timeout_s, self._stop, args=(proc, "timeout"))
            timer.daemon = True
            timer.start()
            try:
                assert proc.stdout is not None
                for text in proc.stdout:
                    stdout_lines.append(text)
                    logf.write(text)
                    logf.flush()
                    if self.on_line:
                        self.on_line(text.rstrip("\n"))
                proc.wait()
            except BaseException:
                self._stop(proc, "interrupt")
                raise
            finally:
                timer.cancel()
                err_reader.join(timeout=5)
                logf.write("".join(stderr_chunks))
        stdout, stderr = "".join(stdout_lines), "".join(stderr_chunks)
        timed_out = time.monotonic() >= deadline and proc.returncode != 0
        if timed_out or proc.returncode != 0:
            raise CommandFailed(
                line,
                None if timed_out else proc.returncode,
                stdout,
                stderr,
                where="local (vagrant)",
                reproduce=f"python -m lab ssh-config {self.lab_name}  # env as in {self.log_file}",
            )
        return stdout

    @staticmethod
    def _stop(proc: subprocess.Popen[str], why: str) -> None:
        """SIGINT the group (vagrant cleans up half-created machines), then SIGKILL."""
        if proc.poll() is not None:
            return
        log.warning(
            "vagrant: %s; sending SIGINT and waiting up to %ss for its cleanup",
            why,
            INTERRUPT_GRACE_S,
        )
        stop_group(proc, signal.SIGINT, INTERRUPT_GRACE_S)

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

    def machine_states(self) -> dict[str, MachineState]:
        with self.budget(60):
            return parse_vagrant_status(self._execute(["status", "--machine-readable"]))

    def ssh_config_text(self) -> str:
        """One `vagrant ssh-config` call for every machine (parse with parse_ssh_config)."""
        with self.budget(60):
            return self._execute(["ssh-config"])
