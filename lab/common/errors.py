"""Failures that print what ran, how it ended and the tail of its output (like invoke's
UnexpectedExit), with secrets redacted."""

from __future__ import annotations

from lab.common.redact import redact

TAIL_LINES = 20


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class CommandFailed(Exception):
    def __init__(
        self,
        command: str,
        exit_code: int | None,
        stdout: str = "",
        stderr: str = "",
        where: str = "local",
        reproduce: str = "",
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.command = redact(command, secrets)
        self.exit_code = exit_code
        self.stdout = redact(stdout, secrets)
        self.stderr = redact(stderr, secrets)
        self.where = where
        self.reproduce = redact(reproduce or command, secrets)
        super().__init__(self.render())

    def render(self) -> str:
        how = "timed out" if self.exit_code is None else f"exited {self.exit_code}"
        parts = [f"command on {self.where} {how}: {self.command}"]
        if self.stdout.strip():
            parts.append(f"--- stdout (tail) ---\n{tail(self.stdout)}")
        if self.stderr.strip():
            parts.append(f"--- stderr (tail) ---\n{tail(self.stderr)}")
        parts.append(f"reproduce: {self.reproduce}")
        return "\n".join(parts)


class LabStateError(Exception):
    """The lab is not in the state an operation needs (e.g. not up)."""


class UsageError(Exception):
    """A bad argument, setting or input the user can fix (an unknown node, an unwritable state
    directory, a pinned file that cannot be found): the CLI prints it as one line, exit 2."""
