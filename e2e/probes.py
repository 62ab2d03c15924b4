"""Talking to the node agent (e2e/agent.py), pure: the requests it gets and the answers it gives.

The suite sends one request per node: every probe whose source is on that node, or every pod
of that node to set up or tear down. These functions render the request (JSON, argv) and parse
the answer; a missing or malformed answer is reported per cell or per job, never raised.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from lab.common.commands import Command

AGENT = Path(__file__).resolve().parent / "agent.py"
AGENT_FILE = "e2e/agent.py"  # as a person in the repository names it
PROBE_PARALLELISM = 8


@cache
def agent_source() -> str:
    return AGENT.read_text()


def agent_command(python: str, request: Mapping[str, Any]) -> Command:
    """`sudo python - REQUEST` with the agent on stdin (sudo: setns and CNI need root)."""
    return Command((python, "-", json.dumps(request, sort_keys=True)), stdin=agent_source())


# --- probes ----------------------------------------------------------------------------------


Proto = Literal["tcp", "udp", "dns"]


@dataclass(frozen=True)
class Cell:
    """One probe: from `netns` (a pod's network namespace; None = the host's) to host:port;
    `send` is written first (an HTTP request for servers that need one). `proto` "udp": one
    datagram and its answer; "dns": the A records of `name` asked of the server at host:port."""

    id: str
    host: str
    port: int
    netns: str | None = None
    send: str = ""
    timeout_s: float = 5.0
    proto: Proto = "tcp"
    name: str = ""
    sport: int = 0  # UDP: send from this source port (0: any)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "host": self.host,
            "port": self.port,
            "netns": self.netns,
            "send": self.send,
            "timeout": self.timeout_s,
        }
        if self.proto != "tcp":
            doc["proto"] = self.proto
        if self.name:
            doc["name"] = self.name
        if self.sport:
            doc["sport"] = self.sport
        return doc


@dataclass(frozen=True)
class CellResult:
    ok: bool  # connected and read the answer to its end
    answer: str = ""
    error: str = ""
    connect_s: float | None = None
    total_s: float | None = None
    retransmits: int = 0
    unknown: bool = False  # the agent gave no result for this cell (it did not run)


def probe_request(cells: Sequence[Cell], parallel: int = PROBE_PARALLELISM) -> dict[str, Any]:
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise ValueError(f"probe ids repeat: {sorted(i for i in ids if ids.count(i) > 1)}")
    return {"op": "probe", "parallel": parallel, "cells": [c.as_json() for c in cells]}


def _document(stdout: str) -> Mapping[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        return doc if isinstance(doc, Mapping) else None
    return None


def parse_probe_answer(stdout: str, ids: Sequence[str], failure: str) -> dict[str, CellResult]:
    """The agent's answer -> one result per asked id. Cells without a well-formed result are
    `unknown`, with `failure` (what went wrong with the call) as their error."""
    doc = _document(stdout)
    found: dict[str, CellResult] = {}
    results = doc.get("results") if doc is not None else None
    for item in results if isinstance(results, list) else []:
        if not isinstance(item, Mapping) or item.get("id") not in ids:
            continue
        retrans = item.get("retransmits")
        connect = item.get("connect_s")
        total = item.get("total_s")
        found[str(item["id"])] = CellResult(
            ok=item.get("ok") is True,
            answer=str(item.get("answer") or ""),
            error=str(item.get("error") or ""),
            connect_s=float(connect) if isinstance(connect, int | float) else None,
            total_s=float(total) if isinstance(total, int | float) else None,
            retransmits=retrans if isinstance(retrans, int) and retrans > 0 else 0,
        )
    why = failure or "the agent answered no result for it"
    return {i: found.get(i, CellResult(False, error=why, unknown=True)) for i in ids}


@dataclass(frozen=True)
class Echo:
    """What an echo server answered: the client address it saw, and who answered: the pod's
    name and its own address as the pod itself knows them (None where the server cannot say)."""

    seen: str | None
    name: str | None = None
    address: str | None = None


def first_line(answer: str) -> str | None:
    """A raw echo server's answer: the client address, first on its first line."""
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    return lines[0].split()[0] if lines else None


def parse_echo(answer: str) -> Echo:
    """The fleet's echo server (lab/runtime/echo.py: identity_echo_args): one line,
    `SEEN NAME ADDRESS`; an older or foreign server's bare `SEEN` keeps its name unknown."""
    lines = [line.split() for line in answer.splitlines() if line.strip()]
    if not lines:
        return Echo(None)
    words = lines[0]
    return Echo(words[0], *(words[1:3] if len(words) >= 3 else ()))


def _address(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return host.strip("[]") if host and port.isdigit() else text


def http_bodies(answer: str) -> list[str]:
    """The bodies of every HTTP response in `answer` (pipelined responses read off one
    connection; a body runs for its Content-Length, else to the end)."""
    bodies = []
    rest = answer
    while "\r\n\r\n" in rest:
        head, _, rest = rest.partition("\r\n\r\n")
        length = next(
            (
                int(v.strip())
                for k, _, v in (line.partition(":") for line in head.split("\r\n"))
                if k.strip().lower() == "content-length" and v.strip().isdigit()
            ),
            None,
        )
        if length is None:
            bodies.append(rest)
            break
        bodies.append(rest[:length])
        rest = rest[length:]
    return bodies


def http_body_address(answer: str) -> str | None:
    """agnhost netexec's /clientip answer (`ip:port` in an HTTP body) -> the ip."""
    bodies = http_bodies(answer)
    return _address(bodies[-1] if bodies else answer)


def parse_agnhost(answer: str) -> Echo:
    """agnhost netexec asked /hostname then /clientip on one connection (AGNHOST_REQUEST):
    the pod that answered (its hostname: the pod's name) and the client address it saw."""
    bodies = http_bodies(answer)
    if len(bodies) < 2:
        return Echo(http_body_address(answer))
    return Echo(_address(bodies[1]), bodies[0].strip() or None)


# HTTP/1.1 pipelining: both requests on one connection, so one endpoint answers both
AGNHOST_REQUEST = (
    "GET /hostname HTTP/1.1\r\nHost: netlab\r\n\r\n"
    "GET /clientip HTTP/1.1\r\nHost: netlab\r\nConnection: close\r\n\r\n"
)


# --- batched steps (the Kubernetes driver's kubectl execs) ----------------------------------


@dataclass(frozen=True)
class Step:
    """An argv for the agent to run (with its stdin and its own bound)."""

    argv: tuple[str, ...]
    stdin: str | None = None
    timeout_s: float = 60

    def as_json(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "stdin": self.stdin, "timeout": self.timeout_s}


@dataclass(frozen=True)
class Job:
    id: str
    steps: tuple[Step, ...]
    keep_going: bool = False  # teardown: every step runs, whatever failed before


@dataclass(frozen=True)
class StepResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False  # killed (with its process group) at its timeout

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class JobResult:
    id: str
    ok: bool
    steps: tuple[StepResult, ...] = field(default=())
    error: str = ""  # set when the agent gave no answer for this job

    def failure(self) -> str:
        if self.error:
            return self.error
        for step in self.steps:
            if not step.ok:
                text = (step.stdout.strip() or step.stderr.strip())[:400]
                return f"step {self.steps.index(step) + 1} exited {step.exit_code}: {text}"
        return ""


def steps_request(jobs: Sequence[Job], parallel: int = 1) -> dict[str, Any]:
    return {
        "op": "steps",
        "parallel": parallel,
        "jobs": [
            {"id": j.id, "keep_going": j.keep_going, "steps": [s.as_json() for s in j.steps]}
            for j in jobs
        ],
    }


def parse_steps_answer(stdout: str, ids: Sequence[str], failure: str) -> dict[str, JobResult]:
    return jobs_from(_document(stdout) or {}, ids, failure)


def jobs_from(doc: Mapping[str, Any], ids: Sequence[str], failure: str) -> dict[str, JobResult]:
    """An agent's `steps` answer -> one result per asked job id; jobs it did not answer carry
    `failure` (what went wrong with the call) as their error."""
    found: dict[str, JobResult] = {}
    jobs = doc.get("jobs")
    for item in jobs if isinstance(jobs, list) else []:
        if not isinstance(item, Mapping) or item.get("id") not in ids:
            continue
        steps = []
        for s in item.get("steps") or []:
            if isinstance(s, Mapping) and isinstance(s.get("exit"), int):
                steps.append(
                    StepResult(
                        s["exit"],
                        str(s.get("stdout") or ""),
                        str(s.get("stderr") or ""),
                        s.get("timed_out") is True,
                    )
                )
        found[str(item["id"])] = JobResult(str(item["id"]), item.get("ok") is True, tuple(steps))
    why = failure or "the agent answered no result for it"
    return {i: found.get(i, JobResult(i, False, error=why)) for i in ids}
