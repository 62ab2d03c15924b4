"""Long-lived node agents: one `e2e/agent.py serve` per node (a few when calls overlap), so
a node command costs one request line instead of an SSH session, a sudo and, for the agent's
probes, a Python start (about 0.7 s of a TCG guest's single vCPU per command).

The agent runs as root (`sudo -n python3 -u -c BOOT serve`), so only commands that would run
under sudo anyway go through it; what a person pastes to reproduce one stays the plain
`ssh ... sudo -n ARGV` line. A session that breaks (the node froze, rebooted, or the SSH
connection was closed) is dropped; the next call starts a new one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from e2e import probes
from lab.commands import Command, render_remote

# reads the agent's text from stdin (its length in characters first: the agent is ASCII) and
# runs it as __main__; works under Python 2.7 and 3
BOOT = "import sys;exec(compile(sys.stdin.read(int(sys.stdin.readline())),'e2e/agent.py','exec'))"
READY_TIMEOUT_S = 60  # a Python start in a busy TCG guest
ANSWER_SLACK_S = 15  # the agent bounds each step itself; this bounds the agent


class SessionError(Exception):
    """The session gave no answer: it did not start, broke, or overran its bound."""


class LineStream(Protocol):
    """A remote process's stdin and stdout, line by line (lab.adapters.ssh.SshStream)."""

    def write(self, text: str) -> None: ...

    def readline(self, timeout: float) -> str:
        """One line without its newline; raises TimeoutError, or EOFError when it ended."""
        ...

    def alive(self) -> bool: ...

    def close(self) -> None: ...


OpenStream = Callable[[str], LineStream]


def boot_command(python: str) -> Command:
    return Command((python, "-u", "-c", BOOT, "serve"))


class AgentSession:
    """One serving agent: strictly one request at a time."""

    def __init__(self, open_stream: OpenStream, python: str) -> None:
        source = probes.agent_source()
        if not source.isascii():
            raise ValueError("e2e/agent.py must be ASCII: BOOT reads it by character count")
        self.stream = open_stream(render_remote(boot_command(python)))
        try:
            self.stream.write(f"{len(source)}\n{source}")
            hello = self._answer(READY_TIMEOUT_S)
        except SessionError:
            self.stream.close()
            raise
        if hello.get("ready") is not True:
            self.stream.close()
            raise SessionError(f"the agent did not say it was ready: {hello}")

    def alive(self) -> bool:
        return self.stream.alive()

    def call(self, request: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        self.stream.write(json.dumps(request) + "\n")
        answer = self._answer(timeout + ANSWER_SLACK_S)
        if "error" in answer:
            raise SessionError(f"the agent refused the request: {answer['error']}")
        return answer

    def _answer(self, timeout: float) -> Mapping[str, Any]:
        try:
            line = self.stream.readline(timeout)
        except TimeoutError:
            raise SessionError(f"no answer within {timeout:.0f}s") from None
        except (EOFError, OSError) as exc:
            raise SessionError(f"the agent's stream ended ({exc or type(exc).__name__})") from None
        try:
            doc = json.loads(line)
        except ValueError:
            raise SessionError(f"the agent answered no JSON: {line[:200]!r}") from None
        if not isinstance(doc, dict):
            raise SessionError(f"the agent answered no JSON object: {line[:200]!r}")
        return doc

    def close(self) -> None:
        self.stream.close()


class SessionPool:
    """The serving agents of one node: an idle one answers; when all are busy, another is
    started. A session that failed is closed, never reused."""

    def __init__(self, open_stream: OpenStream, python: str) -> None:
        self.open_stream = open_stream
        self.python = python
        self._idle: list[AgentSession] = []
        self._lock = threading.Lock()

    def call(self, request: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        session = self._take()
        try:
            answer = session.call(request, timeout)
        except BaseException:
            session.close()
            raise
        with self._lock:
            self._idle.append(session)
        return answer

    def warm(self) -> None:
        """Start an agent ahead of the first call; a failure is left for that call to report."""
        try:
            session = self._take()
        except SessionError:
            return
        with self._lock:
            self._idle.append(session)

    def _take(self) -> AgentSession:
        with self._lock:
            while self._idle:
                session = self._idle.pop()
                if session.alive():
                    return session
                session.close()  # its connection was closed (a fault, a reboot): start anew
        try:
            return AgentSession(self.open_stream, self.python)
        except SessionError:
            raise
        except Exception as exc:  # noqa: BLE001 (ssh could not open a channel: no session)
            raise SessionError(f"cannot start the agent: {exc}") from None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()
