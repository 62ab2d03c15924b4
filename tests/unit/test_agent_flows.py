"""The node agent's live flows for real, on this host's loopback (as tests/unit/test_agent.py):
the flow server and the flow client as the processes the ledger runs, an outage made by
stopping the server and starting it again, and the figures read and judged. Run under
Python 3 and, where this machine has it, Python 2.7 (CentOS 7's interpreter)."""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import faults, ledger, probes
from tests.unit.test_agent import INTERPRETERS

PAIR = ledger.PairFigures("src", "node1", "dst", "node2", "127.0.0.1")
WAIT_S = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Answer(socketserver.BaseRequestHandler):
    """The fleet's echo server's shape: one line per connection, `SEEN NAME ADDRESS`."""

    def handle(self) -> None:
        self.request.sendall(f"{self.client_address[0]} dst 127.0.0.1\n".encode())


@pytest.fixture
def echo_port() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Answer) as answers:
        thread = threading.Thread(target=answers.serve_forever, daemon=True)
        thread.start()
        yield answers.server_address[1]
        answers.shutdown()


def flows_request(tmp_path: Path, port: int, echo_port: int) -> dict[str, Any]:
    """A flow client toward loopback, fast (20 ms streams, 100 ms connections), its files in
    tmp_path: status, result, client.stop, and the marks `inject` and `healed`."""
    return {
        "op": "flows",
        "host": "127.0.0.1",
        "port": port,
        "echo_port": echo_port,
        "interval": 0.02,
        "connect_interval": 0.1,
        "stall_ms": ledger.STALL_MS,
        "status": str(tmp_path / "status"),
        "status_s": 0.1,
        "result": str(tmp_path / "result"),
        "stop": str(tmp_path / "client.stop"),
        "marks": {m: str(tmp_path / m) for m in ("inject", "healed")},
        "max_s": 60,
    }


def start(python: str, request: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [python, str(probes.AGENT), json.dumps(request)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(what: str, ready: Any, seen: Any = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S}s: {what}: {seen() if seen else ''}")
        time.sleep(0.05)


def status(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc


def server(python: str, port: int, stop: Path) -> subprocess.Popen[str]:
    request = {"op": "flowserver", "port": port, "stop": str(stop), "max_s": 60}
    return start(python, request)


@pytest.mark.parametrize("python", INTERPRETERS)
def test_an_outage_is_measured_by_every_flow_and_judged(
    python: str, echo_port: int, tmp_path: Path
) -> None:
    port = free_port()
    first = server(python, port, tmp_path / "server1.stop")
    client = start(python, flows_request(tmp_path, port, echo_port))
    second = None
    try:
        wait_for(
            "the flows carry traffic",
            lambda: _carries(status(tmp_path / "status")),
            lambda: status(tmp_path / "status"),
        )
        (tmp_path / "inject").touch()
        wait_for("the inject mark seen", lambda: "inject" in status(tmp_path / "status")["marks"])
        (tmp_path / "server1.stop").touch()  # the outage: the server goes (its socket with it)
        assert first.wait(WAIT_S) == 0
        time.sleep(0.5)
        second = server(python, port, tmp_path / "server2.stop")
        sent = status(tmp_path / "status")["udp"]["received"]
        wait_for(
            "UDP answered again",
            lambda: status(tmp_path / "status")["udp"]["received"] > sent + 10,
        )
        (tmp_path / "healed").touch()
        wait_for("the healed mark seen", lambda: "healed" in status(tmp_path / "status")["marks"])
        (tmp_path / "client.stop").touch()
        out, err = client.communicate(timeout=WAIT_S)
    finally:
        for proc in (first, second, client):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert client.returncode == 0, err
    assert json.loads(out) == json.loads((tmp_path / "result").read_text())
    pair = ledger.parse_result((tmp_path / "result").read_text(), PAIR)
    assert pair.tcp is not None
    assert pair.udp is not None
    assert pair.connect is not None
    inject, healed = pair.marks["inject"], pair.marks["healed"]
    # the held connection died with the server: cut, its stall open until the end
    assert pair.tcp.connected
    assert pair.tcp.error
    assert not pair.tcp.survived
    assert pair.tcp.stalls[-1].end_ms is None
    # datagrams lost in one run, after the inject mark and back before the healed one
    assert pair.udp.lost > 0
    assert pair.udp.received + pair.udp.lost <= pair.udp.sent
    assert len(pair.udp.windows) == 1, (pair.udp, pair.marks)
    (window,) = pair.udp.windows
    assert window.end_ms is not None
    assert inject <= window.start_ms < window.end_ms <= healed
    # the echo server never went: every new connection answered, by the target
    assert pair.connect.failures == 0
    assert pair.connect.answered_by == ("dst",)
    # judged: within a link-down's budget but for the cut connection; never zero loss
    problems = ledger.judge_pair(pair, faults.WITHIN_THE_FAULT)
    assert len(problems) == 2
    assert "TCP stream stall" in problems[0]
    assert "did not survive" in problems[1]
    assert ledger.judge_pair(pair, faults.NOTHING_LOST)


def _carries(doc: dict[str, Any]) -> bool:
    if not doc:
        return False
    return bool(
        doc["tcp"]["echoed"] > 0
        and doc["udp"]["received"] > 0
        and doc["connect"]["attempts"] > doc["connect"]["failures"]
    )


def test_flows_through_a_steady_server_lose_nothing(echo_port: int, tmp_path: Path) -> None:
    python = sys.executable  # (Python 2.7 runs the same code in the outage test)
    port = free_port()
    srv = server(python, port, tmp_path / "server.stop")
    request = flows_request(tmp_path, port, echo_port)
    for mark in request["marks"].values():
        Path(mark).touch()  # seen at once: the whole run is "the fault"
    client = start(python, request)
    try:
        wait_for(
            "the flows carry traffic",
            lambda: _carries(status(tmp_path / "status")),
            lambda: status(tmp_path / "status"),
        )
        time.sleep(0.5)
        (tmp_path / "client.stop").touch()
        out, err = client.communicate(timeout=WAIT_S)
    finally:
        (tmp_path / "server.stop").touch()
        srv.wait(WAIT_S)
        if client.poll() is None:
            client.kill()
            client.wait()
    pair = ledger.parse_result(out, PAIR)
    assert pair.udp is not None
    assert pair.udp.sent > 10
    assert ledger.judge_pair(pair, faults.NOTHING_LOST) == [], err
