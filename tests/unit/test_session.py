"""Serving node agents for real, on this host: the runner's commands, probes and agent calls go
through `e2e/agent.py serve` processes (started as the SSH adapter would start them, minus the
SSH), one at a time per agent, a new agent when one broke or all are busy."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e import probes
from e2e.drivers.base import NO_EXIT_CODE, NodeRunner
from e2e.session import SessionPool
from lab.adapters.protocols import RemoteResult
from lab.common.commands import Command, Output, cmd, render_remote
from tests.fakes import LocalStream

PY27_PATHS = sorted(Path("/root/.pyenv/versions").glob("2.7*/bin/python2.7"))
INTERPRETERS = [sys.executable] + ([str(PY27_PATHS[0])] if PY27_PATHS else [])


@dataclass
class StreamNode:
    """A node whose only way in for sudo commands is a stream; anything sent over plain SSH
    is recorded (and answered only for commands without sudo)."""

    name: str = "node1"
    streams: list[LocalStream] = field(default_factory=list)
    over_ssh: list[Command] = field(default_factory=list)

    def open_stream(self, remote: str) -> LocalStream:
        stream = LocalStream(remote)
        self.streams.append(stream)
        return stream

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult:
        self.over_ssh.append(command)
        if command.sudo:
            raise AssertionError(f"a sudo command went over SSH: {command.argv}")
        return RemoteResult(self.name, render_remote(command), 0, "over ssh\n", "")

    def probe(
        self, commands: list[Command], timeout: float = 120, one_sudo: bool = False
    ) -> tuple[RemoteResult, tuple[Output, ...]]:
        raise AssertionError("a probe went over SSH")

    def reproduce(self, remote: str) -> str:
        return f"python -m lab ssh lab {self.name} -- {remote!r}"

    def close(self) -> None:
        for s in self.streams:
            s.close()


@pytest.fixture(params=INTERPRETERS, ids=lambda p: "py27" if "2.7" in p else "py3")
def served(request: pytest.FixtureRequest) -> Iterator[tuple[NodeRunner, StreamNode]]:
    node = StreamNode()
    runner = NodeRunner({"node1": node}, python=request.param)
    yield runner, node
    runner.close()
    node.close()


def test_commands_run_in_one_agent_with_their_exit_code_output_and_stdin(
    served: tuple[NodeRunner, StreamNode],
) -> None:
    runner, node = served
    a = runner.run("node1", Command(("sh", "-c", "echo out; echo err >&2; exit 3")))
    b = runner.run("node1", Command(("cat",), stdin="fed on stdin\n"))
    assert (a.exit_code, a.stdout, a.stderr) == (3, "out\n", "err\n")
    assert (b.exit_code, b.stdout) == (0, "fed on stdin\n")
    assert len(node.streams) == 1, "one agent served both"
    assert node.over_ssh == []
    assert a.reproduce == node.reproduce("sudo -n sh -c 'echo out; echo err >&2; exit 3'")
    assert "[exit 3]" in runner.log.entries[0]


def test_a_command_past_its_timeout_is_killed_with_its_children_and_has_no_exit_code(
    served: tuple[NodeRunner, StreamNode],
) -> None:
    runner, _ = served
    started = time.monotonic()
    res = runner.run("node1", Command(("sh", "-c", "sleep 30 & sleep 30")), timeout=1)
    assert time.monotonic() - started < 10, "the grandchild did not keep the agent waiting"
    assert res.exit_code == NO_EXIT_CODE
    assert "(no exit code after 1s: timed out)" in res.stderr
    assert runner.run("node1", cmd("true")).ok, "the agent serves on"


def test_an_agent_that_died_between_calls_is_replaced(
    served: tuple[NodeRunner, StreamNode],
) -> None:
    runner, node = served
    assert runner.run("node1", cmd("true")).ok
    node.streams[0].close()
    assert runner.run("node1", cmd("echo", "again")).stdout == "again\n"
    assert len(node.streams) == 2


def test_an_agent_that_dies_during_a_call_answers_no_exit_code_and_the_next_call_recovers(
    served: tuple[NodeRunner, StreamNode],
) -> None:
    runner, node = served
    res = runner.run("node1", Command(("sh", "-c", "kill -9 $PPID; sleep 5")))
    assert res.exit_code == NO_EXIT_CODE
    assert "the agent session on node1 broke" in res.stderr
    assert runner.run("node1", cmd("true")).ok
    assert len(node.streams) == 2


def test_overlapping_calls_are_served_at_once_by_one_agent(
    served: tuple[NodeRunner, StreamNode],
) -> None:
    runner, node = served
    results: list[str] = []

    def call(word: str) -> None:
        results.append(runner.run("node1", cmd("sh", "-c", f"sleep 1; echo {word}")).stdout)

    threads = [threading.Thread(target=call, args=(w,)) for w in ("a", "b", "c")]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["a\n", "b\n", "c\n"]
    assert time.monotonic() - started < 2.5, "the three 1 s commands ran side by side"
    assert len(node.streams) == 1, "one agent answered all three, each with its id"


def test_a_probe_reads_every_command_in_one_call_and_drops_stderr(
    served: tuple[NodeRunner, StreamNode],
) -> None:
    runner, _ = served
    outputs = runner.probe(
        "node1", cmd("echo", "one"), cmd("sh", "-c", "echo two; echo noise >&2; exit 1")
    )
    assert outputs == (Output(0, "one\n"), Output(1, "two\n"))
    assert runner.log.entries[-1].startswith("[node1] $ sudo -n echo one 2>/dev/null;")


def test_agent_calls_are_answered_without_a_python_start(
    served: tuple[NodeRunner, StreamNode],
) -> None:
    runner, node = served
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer_once() -> None:
        conn, addr = server.accept()
        conn.sendall(f"{addr[0]}\n".encode())
        conn.close()

    threading.Thread(target=answer_once, daemon=True).start()
    request = probes.probe_request([probes.Cell("a", "127.0.0.1", port, timeout_s=5)])
    result, failure = runner.agent("node1", "python3", request, timeout=20)
    server.close()
    assert failure == ""
    (cell,) = probes.parse_probe_answer(result.stdout, ["a"], failure).values()
    assert cell.ok
    assert cell.answer == "127.0.0.1\n"
    assert result.reproduce.endswith("< e2e/agent.py")
    assert node.over_ssh == []


def test_commands_without_sudo_still_go_over_ssh(served: tuple[NodeRunner, StreamNode]) -> None:
    runner, node = served
    res = runner.run("node1", cmd("id", "-un", sudo=False))
    assert res.stdout == "over ssh\n"
    assert [c.argv for c in node.over_ssh] == [("id", "-un")]
    assert node.streams == []


@pytest.fixture
def pool() -> Iterator[tuple[SessionPool, StreamNode]]:
    node = StreamNode()
    agents = SessionPool(node.open_stream, sys.executable)
    yield agents, node
    agents.close()
    node.close()


def test_a_refused_request_is_an_error_and_the_agent_serves_on(
    pool: tuple[SessionPool, StreamNode],
) -> None:
    # a refusal is the agent's answer to a bad request: the protocol held, the agent is sound
    # (and other calls may be in flight on it)
    agents, node = pool
    with pytest.raises(Exception, match="refused the request: KeyError"):
        agents.call({"op": "no such op"}, timeout=10)
    assert json.loads(json.dumps(agents.call(probes.steps_request([]), timeout=10))) == {"jobs": []}
    assert len(node.streams) == 1


def test_calls_in_flight_when_the_agent_dies_all_fail_and_the_next_call_starts_another(
    pool: tuple[SessionPool, StreamNode],
) -> None:
    agents, node = pool
    errors: list[str] = []

    def slow() -> None:
        job = probes.Job("slow", (probes.Step(("sleep", "5"), None, 10),))
        try:
            agents.call(probes.steps_request([job]), timeout=10)
        except Exception as exc:  # noqa: BLE001 (the test reads the message)
            errors.append(str(exc))

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    killer = probes.Job("kill", (probes.Step(("sh", "-c", "kill -9 $PPID"), None, 10),))
    with pytest.raises(Exception, match="the agent's stream ended"):
        agents.call(probes.steps_request([killer]), timeout=10)  # dies with two calls in flight
    for t in threads:
        t.join(10)
    assert len(errors) == 2
    assert all(e.startswith("the agent's stream ended") for e in errors), errors
    assert agents.call(probes.steps_request([]), timeout=10) == {"jobs": []}
    assert len(node.streams) == 2


def test_an_answer_nobody_asked_for_breaks_the_session(
    pool: tuple[SessionPool, StreamNode],
) -> None:
    agents, node = pool
    assert agents.call(probes.steps_request([]), timeout=10) == {"jobs": []}
    node.streams[0].proc.stdin.write('{"op": "steps", "jobs": []}\n')  # type: ignore[union-attr]
    node.streams[0].proc.stdin.flush()  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    session = agents._current
    assert session is not None
    while session.usable() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session.broken.startswith("the agent answered no request of ours")
    assert agents.call(probes.steps_request([]), timeout=10) == {"jobs": []}
    assert len(node.streams) == 2


def test_without_an_interpreter_the_runner_uses_ssh_only() -> None:
    node = StreamNode()
    runner = NodeRunner({"node1": node})
    assert runner.pool("node1") is None


def test_a_warmed_runner_has_its_agent_ready_before_the_first_command() -> None:
    node = StreamNode()
    runner = NodeRunner({"node1": node}, python=sys.executable)
    runner.warm()
    deadline = time.monotonic() + 20
    while runner.pool("node1")._current is None and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    assert runner.run("node1", cmd("true")).ok
    assert len(node.streams) == 1, "the warmed agent served the command"
    runner.close()
    node.close()
