"""A lab path that is no regular file (a FIFO, a socket, a character or block device, a
directory) is a problem at once, exit 2: nothing that can block is opened (issue 30: `validate`
on a FIFO waited forever for a writer)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import main
from lab.model.labfile import read_bounded, special_file
from lab.model.problems import Problem

ROOT = Path(__file__).resolve().parents[2]


def validate_within(path: Path, seconds: float, capsys: pytest.CaptureFixture[str]) -> str:
    """`validate PATH` in-process, which must answer within `seconds`; a FIFO it still waits
    on is given a writer (so the thread ends) and the test fails."""
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(main(["validate", "--no-host-check", str(path)])),
        daemon=True,
    )
    start = time.monotonic()
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - start
    if thread.is_alive():
        if stat.S_ISFIFO(os.stat(path).st_mode):
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        thread.join(5)
        pytest.fail(f"validate {path} did not answer within {seconds} s")
    captured = capsys.readouterr()
    assert result == [2], captured.out + captured.err
    assert elapsed < seconds
    return captured.out + captured.err


def test_validate_on_a_fifo_answers_within_a_second_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "lab.yaml"
    os.mkfifo(fifo)
    output = validate_within(fifo, 1.0, capsys)
    assert f"{fifo}: 1 problem(s)" in output
    assert "is a FIFO (named pipe), not a lab file" in output
    assert "Traceback" not in output


def test_python_m_lab_validate_on_a_fifo_exits_2_at_once(tmp_path: Path) -> None:
    """The real command line, in a process of its own. A hang is caught by the timeout; the
    in-process test above holds the 1 s bound (a start-up timed here failed under mutmut's
    trampolines on a busy 2-core host: 10.7 s)."""
    fifo = tmp_path / "lab.yaml"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "lab", "validate", "--no-host-check", str(fifo)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "is a FIFO (named pipe), not a lab file" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (os.mkfifo, "a FIFO (named pipe)"),
        (Path.mkdir, "a directory"),
    ],
    ids=["fifo", "directory"],
)
def test_each_special_file_is_named_by_its_kind(
    make: Callable[[Path], object], kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lab.yaml"
    make(path)
    assert kind in validate_within(path, 1.0, capsys)


def test_a_socket_is_refused_without_being_connected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        assert "is a socket, not a lab file" in validate_within(path, 1.0, capsys)


def test_a_character_device_is_refused_without_reading_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /dev/zero would be read for ever, /dev/tty and /dev/console could block or take a terminal
    for device in ("/dev/zero", "/dev/null", "/dev/urandom"):
        assert "is a character device, not a lab file" in validate_within(Path(device), 1.0, capsys)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFIFO, "is a FIFO (named pipe), not a lab file"),
        (stat.S_IFSOCK, "is a socket, not a lab file"),
        (stat.S_IFCHR, "is a character device, not a lab file"),
        (stat.S_IFBLK, "is a block device, not a lab file"),
        (stat.S_IFDIR, "is a directory, not a lab file"),
        (0, "is not a regular file"),
    ],
    ids=["fifo", "socket", "char", "block", "dir", "unknown"],
)
def test_special_file_names_every_kind_of_file(mode: int, kind: str) -> None:
    problem = special_file("/x/lab.yaml", mode | 0o644)
    assert isinstance(problem, Problem)
    assert problem.where == "<file>"
    assert problem.value == "/x/lab.yaml"
    assert problem.message == kind
    assert special_file("/x/lab.yaml", stat.S_IFREG | 0o644) is None


def test_a_path_that_turns_into_a_fifo_after_the_check_is_refused_on_the_open_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before opening and the open are two steps: a FIFO put in the file's place
    between them is opened without blocking (O_NONBLOCK) and refused on its descriptor."""
    fifo = tmp_path / "lab.yaml"
    os.mkfifo(fifo)
    real_stat = os.stat

    def stale_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if str(path) != str(fifo):
            return result
        fields = list(result)
        fields[0] = stat.S_IFREG | 0o644  # what the path was when it was checked
        return os.stat_result(fields)

    monkeypatch.setattr(os, "stat", stale_stat)  # read_bounded's check, this test only
    start = time.monotonic()
    problem = read_bounded(fifo)
    assert time.monotonic() - start < 1
    assert isinstance(problem, Problem)
    assert problem.message == "is a FIFO (named pipe), not a lab file"
