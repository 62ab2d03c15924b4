"""Fabric connections to the lab's nodes, built from one `vagrant ssh-config` output.

The user's ~/.ssh/config is never read: every setting comes from the parsed ssh-config.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fabric
import paramiko
from invoke.exceptions import CommandTimedOut, ThreadException

from lab.adapters.protocols import RemoteResult
from lab.common.commands import Command, Output, parse_probe, render_probe, render_remote
from lab.common.errors import CommandFailed
from lab.common.redact import redact
from lab.hosts.parse import SshTarget

log = logging.getLogger(__name__)

CHANNEL_TIMEOUT_S = 30
FAIL_FAST_S = 10
STREAM_CHUNK = 256 * 1024


def ssh_argv(
    target: SshTarget, remote: Sequence[str] = (), options: Sequence[str] = ()
) -> list[str]:
    """The OpenSSH command line for `target` (what `python -m lab ssh` executes): the same
    settings as the Fabric connection, no user config read; `options` go before the
    destination (e.g. `-N -L ...` for a forward)."""
    return [
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
        *options,
        f"{target.user}@{target.hostname}",
        *remote,
    ]


def connection(target: SshTarget, connect_timeout: int = 20) -> fabric.Connection:
    config = fabric.Config(ssh_config=paramiko.SSHConfig())  # explicit: no files are read
    return fabric.Connection(
        host=target.hostname,
        user=target.user,
        port=target.port,
        config=config,
        connect_timeout=connect_timeout,
        connect_kwargs={
            "key_filename": list(target.identity_files),
            "look_for_keys": False,
            "allow_agent": False,
        },
    )


@dataclass
class SshChannel:
    """One node's SSH channel; `run` raises CommandFailed with a command to reproduce it."""

    lab: str
    name: str
    target: SshTarget
    log_file: Path | None = None
    _conn: fabric.Connection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _unreachable_until: float = field(default=0.0, repr=False)

    @property
    def conn(self) -> fabric.Connection:
        with self._lock:
            return self._open()

    def _open(self) -> fabric.Connection:
        if self._conn is None:
            if time.monotonic() < self._unreachable_until:
                raise OSError(f"{self.name} did not answer ssh moments ago (fail fast)")
            conn = connection(self.target)
            try:
                conn.open()
            except BaseException:
                # many threads may want this node: the first failure answers for all of them
                # for a few seconds instead of each waiting out its own connect timeout
                self._unreachable_until = time.monotonic() + FAIL_FAST_S
                raise
            # paramiko waits an hour for a channel by default: a frozen node must not hang us
            conn.transport.channel_timeout = CHANNEL_TIMEOUT_S
            conn.transport.set_keepalive(5)
            self._conn = conn
        return self._conn

    def reproduce(self, remote: str) -> str:
        return f"python -m lab ssh {self.lab} {self.name} -- {shlex.quote(remote)}"

    def probe(
        self, commands: Sequence[Command], timeout: float = 120, one_sudo: bool = False
    ) -> tuple[RemoteResult, tuple[Output, ...]]:
        """Several read-only commands in one round trip: the raw result, and each command's
        stdout and exit code (`one_sudo`: all of them under one sudo, see render_probe)."""
        script = render_probe(commands, one_sudo)
        result = self.run_shell(script, timeout=timeout, check=False)
        return result, parse_probe(result.stdout, len(commands))

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult:
        remote = render_remote(command)
        if command.stdin_file is not None:
            return self.run_streaming(remote, command.stdin_file, timeout, check)
        return self.run_shell(remote, timeout=timeout, check=check, secrets=command.secrets)

    def _session(self, remote: str, timeout: float) -> paramiko.Channel:
        """`remote` started on a session channel of its own (raw bytes either way)."""
        with self._lock:
            transport = self._open().transport
        chan = transport.open_session(timeout=CHANNEL_TIMEOUT_S)
        chan.settimeout(timeout)
        chan.exec_command(remote)
        return chan

    def run_streaming(
        self, remote: str, stdin_file: str, timeout: float = 120, check: bool = True
    ) -> RemoteResult:
        """`remote` with the local file `stdin_file` as its stdin, raw bytes over its own SSH
        session channel (Fabric's in_stream reads one byte per 10 ms: hours for an image
        archive). Bounded by `timeout` for the whole transfer and the command."""
        shown = f"{remote} < {stdin_file}"
        reproduce = f"{self.reproduce(remote)} < {stdin_file}"
        deadline = time.monotonic() + timeout
        try:
            chan = self._session(remote, timeout)
            try:
                with open(stdin_file, "rb") as f:
                    while chunk := f.read(STREAM_CHUNK):
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"still sending {stdin_file} after {timeout}s")
                        chan.sendall(chunk)
                chan.shutdown_write()
                out = _read_all(chan.recv, deadline)
                err = _read_all(chan.recv_stderr, deadline)
                code = chan.recv_exit_status()
            finally:
                chan.close()
        except TimeoutError as exc:
            self._log(shown, None, "", str(exc), ())
            raise CommandFailed(
                shown,
                None,
                "",
                f"no exit after {timeout:.0f}s: {exc}",
                where=self.name,
                reproduce=reproduce,
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            with self._lock:
                self._drop()
            raise CommandFailed(
                shown,
                None,
                "",
                f"ssh to {self.name} failed: {exc}",
                where=self.name,
                reproduce=reproduce,
            ) from None
        self._log(shown, code, out, err, ())
        if check and code != 0:
            raise CommandFailed(shown, code, out, err, where=self.name, reproduce=reproduce)
        return RemoteResult(self.name, shown, code, out, err)

    def run_to_file(self, command: Command, path: str, timeout: float = 900) -> RemoteResult:
        """`command`'s stdout saved raw to the local file `path` (an image archive from `docker
        save`), over a session channel of its own, bounded by `timeout` for the whole transfer.
        The file appears only complete: it is written beside and renamed on exit 0; a failure
        raises CommandFailed with the command's stderr and a reproduce line."""
        remote = render_remote(command)
        shown = f"{remote} > {path}"
        reproduce = f"{self.reproduce(remote)} > {path}"
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        deadline = time.monotonic() + timeout

        def failed(code: int | None, err: str) -> CommandFailed:
            partial.unlink(missing_ok=True)
            self._log(shown, code, "", err, command.secrets)
            return CommandFailed(shown, code, "", err, where=self.name, reproduce=reproduce)

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = partial.open("wb")
        except OSError as exc:
            raise failed(None, f"cannot write {path}: {exc}") from None
        with out:
            try:
                chan = self._session(remote, timeout)
                try:
                    while chunk := chan.recv(STREAM_CHUNK):
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"still receiving {path} after {timeout}s")
                        out.write(chunk)
                    err = _read_all(chan.recv_stderr, deadline)
                    code = chan.recv_exit_status()
                finally:
                    chan.close()
            except TimeoutError as exc:
                raise failed(None, f"no exit after {timeout:.0f}s: {exc}") from None
            except (OSError, EOFError, paramiko.SSHException) as exc:
                with self._lock:
                    self._drop()
                raise failed(None, f"ssh to {self.name} failed: {exc}") from None
            size = out.tell()
        if code != 0:
            raise failed(code, err)
        self._log(shown, code, f"({size} bytes to {path})\n", err, command.secrets)
        partial.replace(target)
        return RemoteResult(self.name, shown, code, "", err)

    def run_shell(
        self, remote: str, timeout: float = 120, check: bool = True, secrets: Iterable[str] = ()
    ) -> RemoteResult:
        secrets = tuple(secrets)
        try:
            res = self.conn.run(remote, hide=True, warn=True, timeout=timeout, in_stream=False)
        except CommandTimedOut as exc:
            self._log(remote, None, exc.result.stdout, exc.result.stderr, secrets)
            raise CommandFailed(
                remote,
                None,
                exc.result.stdout,
                exc.result.stderr,
                where=self.name,
                reproduce=self.reproduce(remote),
                secrets=secrets,
            ) from None
        except (OSError, EOFError, paramiko.SSHException, ThreadException) as exc:
            # the node went away under us (suspended, rebooted): an answer, not a crash
            with self._lock:
                self._drop()
            raise CommandFailed(
                remote,
                None,
                "",
                f"ssh to {self.name} failed: {exc}",
                where=self.name,
                reproduce=self.reproduce(remote),
                secrets=secrets,
            ) from None
        result = RemoteResult(self.name, remote, res.exited, res.stdout, res.stderr)
        self._log(remote, res.exited, res.stdout, res.stderr, secrets)
        if check and res.exited != 0:
            raise CommandFailed(
                remote,
                res.exited,
                res.stdout,
                res.stderr,
                where=self.name,
                reproduce=self.reproduce(remote),
                secrets=secrets,
            )
        return result

    def _log(
        self, remote: str, code: int | None, out: str, err: str, secrets: tuple[str, ...]
    ) -> None:
        if self.log_file is None:
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a") as f:
            f.write(redact(f"$ {remote}\n[exit {code}]\n{out}{err}\n", secrets))

    def open_stream(self, remote: str) -> SshStream:
        """`remote` started on its own channel of this node's connection, kept running: its
        stdin and stdout as lines (e2e/session.py serves node agents over it)."""
        self._log(remote, None, "(a long-lived stream)", "", ())
        try:
            transport = self.conn.client.get_transport()
            if transport is None:
                raise OSError(f"no SSH transport to {self.name}")
            channel = transport.open_session(timeout=CHANNEL_TIMEOUT_S)
            channel.exec_command(remote)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            with self._lock:
                self._drop()
            raise OSError(f"ssh to {self.name} failed: {exc}") from None
        return SshStream(channel)

    def close(self) -> None:
        """Drop the connection (the next command reconnects) and forget past failures."""
        with self._lock:
            self._unreachable_until = 0.0
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SshStream:
    """One remote process's stdin and stdout over an SSH channel, read line by line."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self._buffer = b""

    def write(self, text: str) -> None:
        self.channel.sendall(text.encode())

    def readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line within {timeout:.0f}s")
            self.channel.settimeout(left)
            try:
                data = self.channel.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"no line within {timeout:.0f}s") from None
            if not data:
                raise EOFError(self._stderr_tail() or "the remote process closed its output")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def _stderr_tail(self) -> str:
        self.channel.settimeout(1)
        try:
            data: bytes = self.channel.recv_stderr(4096)
        except TimeoutError:
            return ""
        return data.decode(errors="replace").strip()[-300:]

    def alive(self) -> bool:
        return not (self.channel.closed or self.channel.exit_status_ready())

    def close(self) -> None:
        self.channel.close()


def _read_all(recv: Callable[[int], bytes], deadline: float) -> str:
    """Everything a channel stream gives until EOF (bounded by `deadline`), as text."""
    chunks = []
    while data := recv(65536):
        chunks.append(data)
        if time.monotonic() > deadline:
            raise TimeoutError("the command was still writing at its deadline")
    return b"".join(chunks).decode(errors="replace")
