"""Commands as data (lab/common/commands.py): argv quoted once for the remote shell, stdin as a
quoted here-document, probe scripts framed per command and split back, commands that cannot run
as given refused saying why."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from lab.common.commands import Command, Output, cmd, parse_probe, render_probe, render_remote


def test_argv_is_quoted_once_for_the_remote_shell() -> None:
    assert render_remote(cmd("echo", "a b", "$HOME", sudo=False)) == "echo 'a b' '$HOME'"
    assert render_remote(cmd("swapoff", "-a")) == "sudo -n swapoff -a"


def test_stdin_travels_as_a_quoted_here_document() -> None:
    rendered = render_remote(Command(("tee", "/tmp/x"), stdin="$not_expanded\n"))
    assert rendered == "sudo -n tee /tmp/x <<'NETLAB_STDIN'\n$not_expanded\nNETLAB_STDIN"
    with pytest.raises(ValueError, match="must not contain"):
        Command(("cat",), stdin="NETLAB_STDIN\n")


def test_probe_outputs_are_split_back_per_command() -> None:
    script = render_probe([cmd("cat", "/proc/swaps", sudo=False), cmd("cat", "/nope")])
    assert script.count("@@NETLAB-EXIT") == 2
    stdout = "Filename Type\n/swapfile file\n\n@@NETLAB-EXIT 0\n\n@@NETLAB-EXIT 1\n"
    assert parse_probe(stdout, 2) == (
        Output(0, "Filename Type\n/swapfile file\n"),
        Output(1, ""),
    )
    with pytest.raises(ValueError, match=r"^probe output ended early: expected 3 markers$"):
        parse_probe(stdout, 3)
    with pytest.raises(ValueError, match="cannot take stdin"):
        render_probe([Command(("cat",), stdin="x\n")])


def test_cmd_keeps_stdin_sudo_and_mirror() -> None:
    assert cmd("tee", "/f", stdin="x", sudo=False, mirror=True) == Command(
        ("tee", "/f"), "x", False, mirror=True
    )
    assert cmd("true") == Command(("true",), None, True, mirror=False)


def test_stdin_without_a_final_newline_gets_one_before_the_end_marker() -> None:
    assert render_remote(cmd("tee", "/f", stdin="a", sudo=False)) == (
        "tee /f <<'NETLAB_STDIN'\na\nNETLAB_STDIN"
    )
    assert render_remote(cmd("tee", "/f", stdin="a\n", sudo=False)) == (
        "tee /f <<'NETLAB_STDIN'\na\nNETLAB_STDIN"
    )


def test_probe_script_is_one_line_per_command_with_its_exit_marker() -> None:
    script = render_probe([cmd("cat", "/a", sudo=False), cmd("cat", "/b")])
    assert script == (
        "cat /a 2>/dev/null; printf '\\n@@NETLAB-EXIT %s\\n' \"$?\"\n"
        "sudo -n cat /b 2>/dev/null; printf '\\n@@NETLAB-EXIT %s\\n' \"$?\""
    )
    with pytest.raises(ValueError, match=r"^a probe command cannot take stdin$"):
        render_probe([cmd("cat", stdin="x")])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Command(()), "a command needs at least one argv word"),
        (
            lambda: Command(("cat",), stdin="x", stdin_file="/tmp/a.tar"),
            "a command takes stdin or stdin_file, not both",
        ),
        (
            lambda: Command(("tee", "/f"), stdin="a\nNETLAB_STDIN\nb"),
            "stdin must not contain a line 'NETLAB_STDIN'",
        ),
    ],
    ids=["no-argv", "two-stdins", "end-marker-in-stdin"],
)
def test_a_command_that_cannot_be_run_as_given_is_refused_saying_why(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make()


def test_a_command_needs_a_word() -> None:
    with pytest.raises(ValueError, match=r"^a command needs at least one argv word$"):
        Command(())
