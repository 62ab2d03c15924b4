"""Command objects (pure): argv tuples, rendered for a remote shell in exactly one place."""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

HEREDOC_MARK = "NETLAB_STDIN"
PROBE_MARK = "@@NETLAB-EXIT"


@dataclass(frozen=True)
class Command:
    """One command to run on a node. `stdin` is fed as a quoted here-document; `stdin_file`
    names a local file (e.g. a 16 MiB image archive) the SSH channel streams to the command's
    stdin as raw bytes: the remote command line carries none of it, and every place that shows
    the command (plans, logs, reproduce lines) shows `< FILE` instead of its content."""

    argv: tuple[str, ...]
    stdin: str | None = None
    sudo: bool = True
    # words of argv/stdin that are secrets (join tokens, keys): redacted wherever shown
    secrets: tuple[str, ...] = field(default=(), compare=False)
    # talks to a mirror or downloads: the applier may retry it (bounded); nothing else is retried
    mirror: bool = False
    stdin_file: str | None = None

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a command needs at least one argv word")
        if self.stdin is not None and self.stdin_file is not None:
            raise ValueError("a command takes stdin or stdin_file, not both")
        if self.stdin is not None and HEREDOC_MARK in self.stdin.splitlines():
            raise ValueError(f"stdin must not contain a line {HEREDOC_MARK!r}")


def cmd(*argv: str, stdin: str | None = None, sudo: bool = True, mirror: bool = False) -> Command:
    return Command(tuple(argv), stdin, sudo, mirror=mirror)


def render_remote(command: Command) -> str:
    """The one shell string a remote shell runs for `command` (sudo, quoting, here-document)."""
    argv = ("sudo", "-n", *command.argv) if command.sudo else command.argv
    line = shlex.join(argv)
    if command.stdin is None:
        return line
    body = command.stdin if command.stdin.endswith("\n") else command.stdin + "\n"
    return f"{line} <<'{HEREDOC_MARK}'\n{body}{HEREDOC_MARK}"


def render_shown(command: Command) -> str:
    """How a command is shown to a person (plans, logs, reproduce lines): the remote shell
    string, and `< FILE` for a file streamed to its stdin (pasteable after `python -m lab ssh
    LAB NODE -- '...'`, whose ssh passes its own stdin on)."""
    line = render_remote(command)
    return f"{line} < {command.stdin_file}" if command.stdin_file is not None else line


# --- probes: several read-only commands, one round trip, each output and exit code kept --


@dataclass(frozen=True)
class Output:
    """What one probe command printed (stdout only) and how it exited."""

    exit_code: int
    stdout: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def text_or_none(self) -> str | None:
        return self.stdout if self.ok else None


def render_probe(commands: Sequence[Command], one_sudo: bool = False) -> str:
    """One remote script running every probe, each followed by a marker with its exit code.

    Probes read the node; they take no stdin (a here-document could not be followed by the
    marker on its closing line). With `one_sudo` the whole script runs under a single sudo
    (commands marked sudo=False then run as root too, with sudo's PATH): one sudo per round
    trip instead of one per command (each costs about 0.3 s under QEMU TCG)."""
    if any(c.stdin is not None or c.stdin_file is not None for c in commands):
        raise ValueError("a probe command cannot take stdin")
    root = one_sudo and any(c.sudo for c in commands)
    script = "\n".join(
        f"{render_remote(dataclasses.replace(c, sudo=False) if root else c)} 2>/dev/null; "
        f"printf '\\n{PROBE_MARK} %s\\n' \"$?\""
        for c in commands
    )
    return render_remote(Command(("sh", "-c", script))) if root else script


def parse_probe(stdout: str, expected: int) -> tuple[Output, ...]:
    """Split `render_probe`'s output back into one Output per command."""
    outputs = []
    rest = stdout
    for _ in range(expected):
        m = re.search(rf"\n{PROBE_MARK} (\d+)\n", rest)
        if m is None:
            raise ValueError(f"probe output ended early: expected {expected} markers")
        outputs.append(Output(int(m.group(1)), rest[: m.start()]))
        rest = rest[m.end() :]
    return tuple(outputs)
