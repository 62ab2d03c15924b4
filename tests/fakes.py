"""Strict test doubles for the protocols the harness owns. A fake answers only the commands a
test scripted, in order; anything else is an error of the test (never a silent default).
tests/unit/test_fakes.py checks each fake against the protocol it stands in for."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lab.adapters.ssh import RemoteResult, SshChannel
from lab.commands import Command, Output, render_probe, render_remote
from lab.errors import CommandFailed


@dataclass
class Step:
    """One expected command: on `node`, exactly `argv`; answers with the given output.
    `stdin` (if given) checks what was fed to the command; `no_exit` simulates a timeout or a
    broken channel."""

    node: str
    argv: tuple[str, ...]
    stdout: str = ""
    exit_code: int = 0
    stderr: str = ""
    stdin: Callable[[str | None], None] | None = None
    no_exit: bool = False


@dataclass
class Script:
    steps: deque[Step]
    ran: list[tuple[str, Command, float]] = field(default_factory=list)

    def take(self, node: str, command: Command, timeout: float) -> Step:
        if not self.steps:
            raise AssertionError(f"unexpected command on {node}: {command.argv}")
        step = self.steps.popleft()
        if (step.node, step.argv) != (node, command.argv):
            raise AssertionError(
                f"expected on {step.node}: {step.argv}\n     got on {node}: {command.argv}"
            )
        if step.stdin is not None:
            step.stdin(command.stdin)
        self.ran.append((node, command, timeout))
        return step

    def done(self) -> None:
        assert not self.steps, f"{len(self.steps)} expected command(s) never ran: {self.steps[0]}"


def script(*steps: Step) -> Script:
    return Script(deque(steps))


class FakeChannel:
    """A strict stand-in for lab.adapters.ssh.SshChannel (the NodeChannel protocol): runs
    nothing, answers from the script; `probe` takes one scripted step per probe command."""

    def __init__(self, lab: str, name: str, script: Script) -> None:
        self.lab = lab
        self.name = name
        self.script = script

    def reproduce(self, remote: str) -> str:
        return SshChannel.reproduce(self, remote)  # type: ignore[arg-type]  # the real format

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult:
        step = self.script.take(self.name, command, timeout)
        remote = render_remote(command)
        if step.no_exit:
            raise CommandFailed(remote, None, step.stdout, step.stderr, where=self.name)
        if check and step.exit_code != 0:
            raise CommandFailed(remote, step.exit_code, step.stdout, step.stderr, where=self.name)
        return RemoteResult(self.name, remote, step.exit_code, step.stdout, step.stderr)

    def probe(
        self, commands: Sequence[Command], timeout: float = 120
    ) -> tuple[RemoteResult, tuple[Output, ...]]:
        outputs = []
        for command in commands:
            step = self.script.take(self.name, command, timeout)
            outputs.append(Output(step.exit_code, step.stdout))
        return RemoteResult(self.name, render_probe(commands), 0, "", ""), tuple(outputs)


def channels(lab: str, names: Sequence[str], steps: Script) -> dict[str, FakeChannel]:
    return {name: FakeChannel(lab, name, steps) for name in names}
