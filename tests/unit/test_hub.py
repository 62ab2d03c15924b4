"""The agent hub of a parallel run, for real on this host: the controller's serving agents
(real `e2e/agent.py serve` processes, started as the SSH adapter would, minus the SSH) answer
the runners of several "workers" through the hub's Unix sockets, so the node starts agents once
for all of them; what fails on the way is an answer, never a hang."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from e2e import hub
from e2e.drivers.base import NO_EXIT_CODE, NodeRunner
from e2e.session import SessionError, SessionPool
from lab.common.commands import Command, cmd
from tests.unit.test_session import StreamNode


@pytest.fixture
def shared() -> Iterator[tuple[hub.Hub, StreamNode]]:
    node = StreamNode()
    served = hub.Hub({"node1": SessionPool(node.open_stream, sys.executable)})
    served.start()
    yield served, node
    served.close()
    node.close()


def worker(node: StreamNode, served: hub.Hub) -> NodeRunner:
    """A worker's runner, told by its controller where the hub is."""
    return NodeRunner({"node1": node}, python=sys.executable, hub=served.directory)


def test_the_workers_commands_run_in_the_controllers_agents(
    shared: tuple[hub.Hub, StreamNode],
) -> None:
    served, node = shared
    first, second = worker(node, served), worker(node, served)
    assert first.run("node1", cmd("true")).ok
    started = len(node.streams)  # the hub's warm-up agent
    a = first.run("node1", Command(("sh", "-c", "echo out; echo err >&2; exit 3")))
    b = second.run("node1", Command(("cat",), stdin="fed on stdin\n"))
    c = first.run("node1", cmd("echo", "again"))
    assert (a.exit_code, a.stdout, a.stderr) == (3, "out\n", "err\n")
    assert (b.exit_code, b.stdout, c.stdout) == (0, "fed on stdin\n", "again\n")
    assert a.reproduce == node.reproduce("sudo -n sh -c 'echo out; echo err >&2; exit 3'")
    assert len(node.streams) == started == 1, "one agent on the node served both workers"
    assert node.over_ssh == []
    first.close()
    second.close()


def test_overlapping_calls_of_workers_are_served_at_once(
    shared: tuple[hub.Hub, StreamNode],
) -> None:
    served, node = shared
    runners = [worker(node, served) for _ in range(3)]
    barrier = threading.Barrier(3, timeout=20)  # each call waits until all three run

    def call(runner: NodeRunner) -> None:
        runner.run("node1", Command(("sh", "-c", "sleep 0.3")))
        barrier.wait()

    threads = [threading.Thread(target=call, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not barrier.broken
    assert len(node.streams) == 1, "one agent served the overlapping calls"


def test_an_agent_that_died_answers_the_worker_no_exit_code_and_the_next_call_recovers(
    shared: tuple[hub.Hub, StreamNode],
) -> None:
    served, node = shared
    runner = worker(node, served)
    assert runner.run("node1", cmd("true")).ok
    started = len(node.streams)
    res = runner.run("node1", Command(("sh", "-c", "kill -9 $PPID; sleep 5")))
    assert res.exit_code == NO_EXIT_CODE
    assert "the agent session on node1 broke" in res.stderr
    assert runner.run("node1", cmd("true")).ok
    assert len(node.streams) <= started + 1


def test_a_gone_hub_is_a_broken_session_not_a_hang(shared: tuple[hub.Hub, StreamNode]) -> None:
    served, node = shared
    runner = worker(node, served)
    assert runner.run("node1", cmd("true")).ok
    served.close()
    res = runner.run("node1", cmd("true"))
    assert res.exit_code == NO_EXIT_CODE
    assert "the agent hub gave no answer" in res.stderr or "cannot reach" in res.stderr


class Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def call(self, request: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        raise self.error

    def warm(self) -> None: ...

    def close(self) -> None: ...


@pytest.mark.parametrize(
    ("line", "error", "expected"),
    [
        (b"not json\n", SessionError("-"), "the hub cannot read the request: "),
        (b'{"request": {}}\n', SessionError("-"), "the hub cannot read the request: 'timeout'"),
        (b'{"request": {}, "timeout": 5}\n', SessionError("no answer within 20s"), "no answer "),
        (b'{"request": {}, "timeout": 5}\n', RuntimeError(), "RuntimeError"),
    ],
)
def test_every_failure_in_the_controller_is_an_answer(
    line: bytes, error: Exception, expected: str
) -> None:
    doc = json.loads(hub.answer(Refusing(error), line))
    assert list(doc) == ["error"]
    assert doc["error"].startswith(expected)


def test_a_worker_finds_the_hub_only_where_the_controller_made_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hub.hub_pool("node1", "") is None
    assert hub.hub_pool("node1", str(tmp_path)) is None, "no socket: the worker's own agents"
    (tmp_path / "node1.sock").touch()
    pool = hub.hub_pool("node1", str(tmp_path))
    assert isinstance(pool, hub.HubPool)
    assert pool.path == str(tmp_path / "node1.sock")


def test_closing_the_hub_removes_its_sockets_and_closes_the_agents() -> None:
    node = StreamNode()
    served = hub.Hub({"node1": SessionPool(node.open_stream, sys.executable)})
    directory = served.start()
    assert os.listdir(directory) == ["node1.sock"]
    assert hub.HubPool(hub.socket_path(directory, "node1")).call(
        {"op": "steps", "jobs": []}, 10
    ) == {"jobs": []}
    served.close()
    assert not os.path.exists(directory)
    assert all(not s.alive() for s in node.streams)
