"""A strict stand-in for a node's SSH channel, for the applier's tests.

The node is a small world (a dict of named values: file contents, flags). Each probe command
the test declares is answered from the world; each command the test declares runnable changes
it (and returns an exit code). Any other command is an AssertionError: a test never passes on
a command nobody expected."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.adapters.protocols import RemoteResult
from lab.common.commands import Command, Output, render_remote
from lab.common.errors import CommandFailed

World = dict[str, object]
Read = Callable[[World], Output]
Write = Callable[[World], int]  # returns the exit code


@dataclass
class FakeNode:
    name: str
    world: World
    reads: Mapping[Command, Read]
    writes: Mapping[Command, Write]
    round_trips: list[tuple[Command, ...]] = field(default_factory=list)
    ran: list[Command] = field(default_factory=list)
    # commands whose stdout an input source saves to a local file (`docker save`): the bytes
    saves: Mapping[Command, Callable[[World], bytes]] = field(default_factory=dict)
    one_sudo: list[bool] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def probe(
        self, commands: Sequence[Command], timeout: float = 120, one_sudo: bool = False
    ) -> tuple[RemoteResult, tuple[Output, ...]]:
        with self.lock:
            unexpected = [render_remote(c) for c in commands if c not in self.reads]
            if unexpected:
                raise AssertionError(f"unexpected probe command(s) on {self.name}: {unexpected}")
            self.round_trips.append(tuple(commands))
            self.one_sudo.append(one_sudo)
            outputs = tuple(self.reads[c](self.world) for c in commands)
        return RemoteResult(self.name, "<probe>", 0, "", ""), outputs

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult:
        remote = render_remote(command)
        with self.lock:
            if command not in self.writes:
                raise AssertionError(f"unexpected command on {self.name}: {remote}")
            self.ran.append(command)
            code = self.writes[command](self.world)
        if check and code != 0:
            raise CommandFailed(
                remote, code, "", "failed", where=self.name, secrets=command.secrets
            )
        return RemoteResult(self.name, remote, code, "", "")

    def run_to_file(self, command: Command, path: str, timeout: float = 900) -> RemoteResult:
        with self.lock:
            if command not in self.saves:
                raise AssertionError(f"unexpected save on {self.name}: {render_remote(command)}")
            self.ran.append(command)
            data = self.saves[command](self.world)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return RemoteResult(self.name, f"{render_remote(command)} > {path}", 0, "", "")

    def ran_argv(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.ran]


def text(key: str) -> Read:
    """A file: its content, or exit 1 when the world has none."""

    def read(world: World) -> Output:
        value = world.get(key)
        return Output(0, str(value)) if value is not None else Output(1, "")

    return read


def flag(key: str) -> Read:
    """A command that succeeds while the world's flag is set."""
    return lambda world: Output(0 if world.get(key) else 1, "")


def sets(**values: object) -> Write:
    def write(world: World) -> int:
        world.update(values)
        return 0

    return write
