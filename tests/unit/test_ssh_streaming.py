"""A command whose stdin is a local file: the bytes go raw over a session channel of their own
(tested against a small stand-in of paramiko's Channel: no host), the command is shown with
`< FILE`, a failure carries a pasteable reproduce line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.adapters.ssh import SshChannel
from lab.common.commands import Command
from lab.common.errors import CommandFailed
from lab.hosts.parse import SshTarget

TARGET = SshTarget("node1", "192.168.121.17", 22, "vagrant", ("/k",))


class FakeSession:
    """paramiko.Channel, as much as run_streaming uses of it."""

    def __init__(self, exit_code: int, stdout: bytes = b"", stderr: bytes = b"") -> None:
        self.exit_code = exit_code
        self.out = [stdout, b""]
        self.err = [stderr, b""]
        self.received = bytearray()
        self.command = ""
        self.shut = False
        self.closed = False

    def settimeout(self, seconds: float) -> None:
        self.timeout = seconds

    def exec_command(self, command: str) -> None:
        self.command = command

    def sendall(self, data: bytes) -> None:
        assert not self.shut, "data after shutdown_write"
        self.received += data

    def shutdown_write(self) -> None:
        self.shut = True

    def recv(self, size: int) -> bytes:
        return self.out.pop(0)

    def recv_stderr(self, size: int) -> bytes:
        return self.err.pop(0)

    def recv_exit_status(self) -> int:
        return self.exit_code

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self, session: FakeSession) -> None:
        self.transport = self
        self.session = session

    def open_session(self, timeout: float | None = None) -> FakeSession:
        return self.session


def channel(tmp_path: Path, session: FakeSession) -> SshChannel:
    ch = SshChannel("ci-debian12", "node1", TARGET, log_file=tmp_path / "node1.log")
    ch._conn = FakeConnection(session)  # type: ignore[assignment]
    return ch


def archive(tmp_path: Path) -> Path:
    path = tmp_path / "images.tar"
    path.write_bytes(bytes(range(256)) * 4096 + b"\xff\xfe tail")  # 1 MiB, not UTF-8
    return path


def test_the_file_arrives_byte_for_byte_and_the_command_line_carries_none_of_it(
    tmp_path: Path,
) -> None:
    data = archive(tmp_path)
    session = FakeSession(0, b"unpacking netlab.invalid/echo:0123 ...done\n")
    command = Command(("ctr", "images", "import", "-"), stdin_file=str(data))
    result = channel(tmp_path, session).run(command, timeout=60)
    assert bytes(session.received) == data.read_bytes()
    assert session.command == "sudo -n ctr images import -"
    assert session.shut
    assert session.closed
    assert result.ok
    assert result.command == f"sudo -n ctr images import - < {data}"
    assert "unpacking" in result.stdout
    log = (tmp_path / "node1.log").read_text()
    assert f"$ sudo -n ctr images import - < {data}\n[exit 0]" in log
    assert len(log) < 1000, "the file's content is never logged"


def test_a_failing_import_raises_with_the_exit_code_and_a_pasteable_reproduce_line(
    tmp_path: Path,
) -> None:
    data = archive(tmp_path)
    session = FakeSession(1, b"", b"ctr: unrecognized image format\n")
    command = Command(("ctr", "images", "import", "-"), stdin_file=str(data))
    with pytest.raises(CommandFailed) as info:
        channel(tmp_path, session).run(command, timeout=60)
    assert info.value.exit_code == 1
    assert "unrecognized image format" in str(info.value)
    assert info.value.reproduce == (
        f"python -m lab ssh ci-debian12 node1 -- 'sudo -n ctr images import -' < {data}"
    )


def test_check_false_answers_the_failure_as_a_result(tmp_path: Path) -> None:
    data = archive(tmp_path)
    ch: Any = channel(tmp_path, FakeSession(3))
    result = ch.run(Command(("cat",), stdin_file=str(data), sudo=False), check=False)
    assert result.exit_code == 3


# --- the other way: a command's stdout saved raw to a local file (`docker save`) -------------


def test_a_commands_stdout_is_saved_byte_for_byte_and_shown_with_the_file(tmp_path: Path) -> None:
    data = archive(tmp_path).read_bytes()
    session = FakeSession(0)
    session.out = [data[:300_000], data[300_000:], b""]  # as the channel hands it over
    target = tmp_path / "images" / "e2e-images.tar"
    command = Command(("docker", "save", "busybox:1.28", "nginx:1.19"))
    result = channel(tmp_path, session).run_to_file(command, str(target), timeout=60)
    assert target.read_bytes() == data
    assert not (tmp_path / "images" / "e2e-images.tar.part").exists()
    assert session.command == "sudo -n docker save busybox:1.28 nginx:1.19"
    assert session.closed
    assert result.command == f"sudo -n docker save busybox:1.28 nginx:1.19 > {target}"
    log = (tmp_path / "node1.log").read_text()
    assert f"[exit 0]\n({len(data)} bytes to {target})" in log
    assert len(log) < 1000, "the archive is never logged"


def test_a_failed_save_leaves_no_file_and_says_why_with_a_reproduce_line(tmp_path: Path) -> None:
    session = FakeSession(1, b"", b"Error response from daemon: reference does not exist\n")
    target = tmp_path / "flannel-image.tar"
    with pytest.raises(CommandFailed) as info:
        channel(tmp_path, session).run_to_file(
            Command(("docker", "save", "quay.io/coreos/flannel:v0.14.0")), str(target)
        )
    assert info.value.exit_code == 1
    assert "reference does not exist" in str(info.value)
    assert info.value.reproduce == (
        "python -m lab ssh ci-debian12 node1 -- "
        f"'sudo -n docker save quay.io/coreos/flannel:v0.14.0' > {target}"
    )
    assert list(tmp_path.glob("flannel-image.tar*")) == []
