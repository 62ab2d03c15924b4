"""The node agent for real, on this host's loopback: TCP probes against a server the test
starts, steps, and a CNI chain through stand-in plugins that show what each one was given.
Run under Python 3 and, where this machine has it, Python 2.7 (CentOS 7's interpreter)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import probes

PY27_PATHS = sorted(Path("/root/.pyenv/versions").glob("2.7*/bin/python2.7"))
INTERPRETERS = [sys.executable] + ([str(PY27_PATHS[0])] if PY27_PATHS else [])


def run_agent(python: str, request: dict[str, Any]) -> dict[str, Any]:
    command = probes.agent_command(python, request)
    out = subprocess.run(
        list(command.argv),
        input=command.stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A loopback server that answers every connection with the client address it saw."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except OSError:
                continue
            conn.sendall(f"{addr[0]}\n".encode())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("python", INTERPRETERS)
def test_probes_run_concurrently_and_each_answers(python: str, echo_port: int) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    cells = [probes.Cell(f"c{i}", "127.0.0.1", echo_port, timeout_s=3) for i in range(5)]
    cells.append(probes.Cell("refused", "127.0.0.1", dead_port, timeout_s=3))
    answer = run_agent(python, probes.probe_request(cells, parallel=3))
    results = probes.parse_probe_answer(json.dumps(answer), [c.id for c in cells], "")
    assert {i: (r.ok, probes.first_line(r.answer)) for i, r in results.items()} == {
        **{f"c{i}": (True, "127.0.0.1") for i in range(5)},
        "refused": (False, None),
    }
    assert "refused" in results["refused"].error.lower()
    assert all(r.connect_s is not None and r.retransmits == 0 for r in results.values() if r.ok)
    assert not any(r.unknown for r in results.values())


@pytest.mark.parametrize("python", INTERPRETERS)
def test_a_failing_step_stops_its_job_unless_told_to_keep_going(python: str) -> None:
    jobs = [
        probes.Job("stop", (probes.Step(argv=("false",)), probes.Step(argv=("echo", "never")))),
        probes.Job(
            "go-on",
            (probes.Step(argv=("false",)), probes.Step(argv=("echo", "ran"))),
            keep_going=True,
        ),
        probes.Job("missing", (probes.Step(argv=("/nonexistent/netlab",)),)),
    ]
    answer = run_agent(python, probes.steps_request(jobs, parallel=2))
    results = probes.parse_steps_answer(json.dumps(answer), [j.id for j in jobs], "")
    assert [s.exit_code for s in results["stop"].steps] == [1]
    assert [(s.exit_code, s.stdout) for s in results["go-on"].steps] == [(1, ""), (0, "ran\n")]
    assert results["missing"].steps[0].exit_code == 127
    assert results["stop"].failure() == "step 1 exited 1: "


def test_an_agent_that_answered_nothing_leaves_every_cell_unknown() -> None:
    results = probes.parse_probe_answer("", ["a", "b"], "the agent on node1 exited 124: timeout")
    assert all(r.unknown and not r.ok for r in results.values())
    assert results["a"].error == "the agent on node1 exited 124: timeout"
    jobs = probes.parse_steps_answer("not json", ["p"], "ssh failed")
    assert (jobs["p"].ok, jobs["p"].failure()) == (False, "ssh failed")


def test_answers_for_cells_not_asked_are_ignored_and_missing_ones_are_unknown() -> None:
    text = json.dumps({"results": [{"id": "x", "ok": True, "answer": "10.0.0.1"}]})
    results = probes.parse_probe_answer(text, ["a"], "")
    assert results["a"].unknown


def test_probe_ids_must_be_unique() -> None:
    cell = probes.Cell("a", "10.244.0.2", 8080)
    with pytest.raises(ValueError, match="probe ids repeat"):
        probes.probe_request([cell, cell])


@pytest.mark.parametrize(
    ("answer", "seen"),
    [
        ("HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.1.7:43122", "10.244.1.7"),
        ("10.244.1.7:43122", "10.244.1.7"),
        ("HTTP/1.1 200 OK\r\n\r\n", None),
        ("[fd00::5]:443", "fd00::5"),
    ],
)
def test_agnhost_clientip_answers_give_the_client_address(answer: str, seen: str | None) -> None:
    assert probes.http_body_address(answer) == seen


def _free_udp_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@pytest.fixture
def udp_echo() -> Iterator[int]:
    """The fleet's UDP echo (lab/runtime/echo.py) on loopback, as pod `p1`."""
    from lab.runtime.echo import UDP_SERVER

    port = _free_udp_port()
    env = {"NETLAB_POD": "p1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-c", UDP_SERVER, str(port), "127.0.0.1"], env=env)
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture
def dns_server(tmp_path: Path) -> Iterator[int]:
    """e2e/dnsd.py on loopback with a one-Service zone. Run from a file, not `-c`: under
    mutmut the module holds every mutant and outgrows one argument (E2BIG, 128 KiB)."""
    from e2e import dnsd

    port = _free_udp_port()
    zone = {"records": {"echo.ns.svc.cluster.local": ["10.96.0.11"]}, "port": port}
    script = tmp_path / "dnsd.py"
    script.write_text(Path(dnsd.__file__).read_text().replace('"0.0.0.0"', '"127.0.0.1"'))
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(zone)])
    yield port
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("python", INTERPRETERS)
def test_udp_and_dns_probes_say_who_answered_and_what(
    python: str, udp_echo: int, dns_server: int
) -> None:
    sport = _free_udp_port()
    cells = [
        *(probes.Cell(f"u{i}", "127.0.0.1", udp_echo, timeout_s=3, proto="udp") for i in range(6)),
        probes.Cell("kept", "127.0.0.1", udp_echo, timeout_s=3, proto="udp", sport=sport),
        probes.Cell("a", "127.0.0.1", dns_server, timeout_s=3, proto="dns",
                    name="echo.ns.svc.cluster.local"),
        probes.Cell("nx", "127.0.0.1", dns_server, timeout_s=3, proto="dns",
                    name="nope.ns.svc.cluster.local"),
        probes.Cell("refused", "127.0.0.1", dns_server, timeout_s=3, proto="dns",
                    name="example.org"),
    ]  # fmt: skip
    from lab.common import waits

    servers_up = waits.Policy("the loopback UDP echo and DNS servers answer", 10, 0.2)
    results = waits.wait_until(
        servers_up,
        lambda: probes.parse_probe_answer(
            json.dumps(run_agent(python, probes.probe_request(cells, parallel=4))),
            [c.id for c in cells],
            "",
        ),
        lambda found: all(r.ok for r in found.values()),
    )
    echoes = {i: probes.parse_echo(results[i].answer) for i in ("u0", "u5", "kept")}
    assert all(e == probes.Echo("127.0.0.1", "p1", "127.0.0.1") for e in echoes.values())
    assert results["a"].answer == "echo.ns.svc.cluster.local A 10.96.0.11"
    assert results["nx"].answer == "nope.ns.svc.cluster.local RCODE 3"
    assert results["refused"].answer == "example.org RCODE 5"
