"""A node's unix socket brought to this host through SSH: `ssh -N -L LOCAL:REMOTE` (OpenSSH's
stream-local forwarding), so the CRI client talks gRPC to containerd on a node as if the socket
were local. The login user (vagrant) connects to the remote socket: containerd's socket group
is that user's (provision/containerd.py), so no root and no TCP port on the node.

    with SocketForward.start(target, "/run/containerd/containerd.sock", "/tmp/nl-cri-x/node1.sock"):
        CriClient.connect("/tmp/nl-cri-x/node1.sock") ...

One forward per node per process (an xdist worker has its own), started when first needed,
waited for (bounded: the local socket exists and the ssh process is alive), stopped on close.
The ssh command line comes from lab.adapters.ssh.ssh_argv: one place builds ssh argv.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from lab.adapters.local import spawn, stop_group
from lab.adapters.ssh import ssh_argv
from lab.common import waits
from lab.common.errors import LabStateError
from lab.hosts.parse import SshTarget

log = logging.getLogger(__name__)

FORWARD_READY = waits.Policy("ssh socket forward listening", timeout_s=30, interval_s=0.1)
STOP_GRACE_S = 5
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


def forward_argv(target: SshTarget, local: str, remote: str) -> list[str]:
    """`ssh -N` forwarding `local` (a unix socket here) to `remote` (one on the node): fails
    at once when the forward cannot be set up, replaces a stale local socket file."""
    if len(local.encode()) > UNIX_PATH_MAX:
        raise ValueError(
            f"local socket path {local!r} is {len(local.encode())} bytes; unix sockets take "
            f"at most {UNIX_PATH_MAX}: use a shorter directory (e.g. under /tmp)"
        )
    options: Sequence[str] = (
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "StreamLocalBindUnlink=yes",
        "-o",
        "ServerAliveInterval=5",
        "-L",
        f"{local}:{remote}",
    )
    return ssh_argv(target, options=options)


@dataclass
class SocketForward:
    target: SshTarget
    local: str
    remote: str
    proc: subprocess.Popen[str]
    log_path: Path
    closed: bool = field(default=False)

    @classmethod
    def start(
        cls, target: SshTarget, remote: str, local: str, policy: waits.Policy = FORWARD_READY
    ) -> SocketForward:
        argv = forward_argv(target, local, remote)
        log_path = Path(local).with_suffix(".ssh.log")
        proc = spawn(argv, log_path)
        forward = cls(target, local, remote, proc, log_path)
        log.info("ssh forward %s -> %s:%s (pid %d)", local, target.hostname, remote, proc.pid)

        def listening() -> bool:
            if proc.poll() is not None:
                raise LabStateError(
                    f"ssh forward to {target.hostname}:{remote} exited {proc.returncode}: "
                    f"{forward.output()}\n  reproduce: {' '.join(argv)}"
                )
            return os.path.exists(local)

        try:
            waits.wait_until(policy, listening, bool)
        except BaseException:
            forward.close()
            raise
        return forward

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-500:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Stop ssh (its whole process group) and remove the local socket."""
        if self.closed:
            return
        self.closed = True
        if self.proc.poll() is None:
            stop_group(self.proc, signal.SIGTERM, STOP_GRACE_S)
        else:
            self.proc.wait()
        for path in (self.local, str(self.log_path)):
            if os.path.lexists(path):
                os.unlink(path)

    def __enter__(self) -> SocketForward:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
