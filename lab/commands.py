"""Command objects (pure): argv tuples, rendered for a remote shell in exactly one place."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

HEREDOC_MARK = "NETLAB_STDIN"


@dataclass(frozen=True)
class Command:
    """One command to run on a node. `stdin` is fed as a quoted here-document."""

    argv: tuple[str, ...]
    stdin: str | None = None
    sudo: bool = True
    # words of argv/stdin that are secrets (join tokens, keys): redacted wherever shown
    secrets: tuple[str, ...] = field(default=(), compare=False)
    # talks to a mirror or downloads: the applier may retry it (bounded); nothing else is retried
    mirror: bool = False

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a command needs at least one argv word")
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


def render_script(commands: tuple[Command, ...]) -> str:
    """Several commands as one script that stops at the first failure."""
    return "set -e\n" + "\n".join(render_remote(c) for c in commands) + "\n"
