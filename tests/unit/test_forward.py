"""The SSH socket forward: its exact command line (built from ssh_argv), and its life cycle
against a stand-in `ssh` on PATH (a script that listens on the -L socket, or fails like ssh
does when the forward cannot be set up): no host, no network."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.adapters.forward import SocketForward, forward_argv
from lab.common import waits
from lab.common.errors import LabStateError
from lab.hosts.parse import SshTarget

TARGET = SshTarget("node1", "192.168.121.17", 22, "vagrant", ("/state/.vagrant/node1/key",))
REMOTE = "/run/containerd/containerd.sock"


def test_the_forward_is_ssh_argv_with_the_forward_options_before_the_destination() -> None:
    assert forward_argv(TARGET, "/tmp/nl-cri-a/node1.sock", REMOTE) == [
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
        "/state/.vagrant/node1/key",
        "-p",
        "22",
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "StreamLocalBindUnlink=yes",
        "-o",
        "ServerAliveInterval=5",
        "-L",
        "/tmp/nl-cri-a/node1.sock:/run/containerd/containerd.sock",
        "vagrant@192.168.121.17",
    ]


def test_a_local_socket_path_too_long_for_sun_path_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="at most 107: use a shorter directory"):
        forward_argv(TARGET, "/tmp/" + "x" * 110 + ".sock", REMOTE)


LISTENING_SSH = """#!/usr/bin/env python3
import socket, sys, time
spec = sys.argv[sys.argv.index("-L") + 1]
local = spec.split(":", 1)[0]
s = socket.socket(socket.AF_UNIX); s.bind(local); s.listen(1)
time.sleep(60)
"""
FAILING_SSH = """#!/bin/sh
echo "unix_listener: cannot bind to path /tmp/x.sock: Permission denied" >&2
echo "Could not request local forwarding." >&2
exit 255
"""


@pytest.fixture
def fake_ssh(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """(a bin dir to put on PATH, a short socket dir): unix socket paths end at 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="nl-fwd-") as tmp:
        bin_dir = Path(tmp) / "bin"
        bin_dir.mkdir()
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        yield bin_dir, Path(tmp)


def install(bin_dir: Path, text: str) -> None:
    ssh = bin_dir / "ssh"
    ssh.write_text(text)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)


def test_start_waits_for_the_socket_and_close_stops_ssh_and_removes_it(
    fake_ssh: tuple[Path, Path],
) -> None:
    bin_dir, tmp = fake_ssh
    install(bin_dir, LISTENING_SSH)
    local = str(tmp / "node1.sock")
    forward = SocketForward.start(TARGET, REMOTE, local)
    try:
        assert forward.alive()
        assert stat.S_ISSOCK(os.stat(local).st_mode)
    finally:
        forward.close()
    assert not forward.alive()
    assert not os.path.exists(local)
    forward.close()  # twice is fine


def test_ssh_that_cannot_forward_fails_the_start_with_its_own_words(
    fake_ssh: tuple[Path, Path],
) -> None:
    bin_dir, tmp = fake_ssh
    install(bin_dir, FAILING_SSH)
    policy = waits.Policy("ssh socket forward listening", timeout_s=10, interval_s=0.05)
    with pytest.raises(LabStateError, match="exited 255: unix_listener: cannot bind") as info:
        SocketForward.start(TARGET, REMOTE, str(tmp / "node1.sock"), policy)
    assert "reproduce: ssh -F /dev/null" in str(info.value)
