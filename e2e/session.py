"""Long-lived node agents: one `e2e/agent.py serve` per node, serving concurrent calls, so
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
from lab.common.commands import Command, render_remote

# reads the agent's text from stdin (its length in characters first: the agent is ASCII) and
# runs it as __main__; works under Python 2.7 and 3
BOOT = "import sys;exec(compile(sys.stdin.read(int(sys.stdin.readline())),'e2e/agent.py','exec'))"
READY_TIMEOUT_S = 60  # a Python start in a busy TCG guest
ANSWER_SLACK_S = 15  # the agent bounds each step itself; this bounds the agent


class SessionError(Exception):
    """The session gave no answer: it did not start, broke, or overran its bound."""


class _Quiet(SessionError):
    """No line within the time asked for."""


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


READ_POLL_S = 5  # how often the reader looks up from a quiet stream (to notice a close)


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: Mapping[str, Any] = {}
        self.broken = ""


class AgentSession:
    """One serving agent, many requests in flight: each request carries an id, the agent runs
    it in a thread of its own and answers with the id; a reader thread hands each answer to
    its caller. A call that gets no answer in time, a stream that ends or says something that
    is not an answer breaks the session: every call in flight fails with the reason."""

    def __init__(self, open_stream: OpenStream, python: str) -> None:
        source = probes.agent_source()
        if not source.isascii():
            raise ValueError("e2e/agent.py must be ASCII: BOOT reads it by character count")
        self.stream = open_stream(render_remote(boot_command(python)))
        try:
            self.stream.write(f"{len(source)}\n{source}")
            hello = self._line(READY_TIMEOUT_S)
        except SessionError:
            self.stream.close()
            raise
        if hello.get("ready") is not True:
            self.stream.close()
            raise SessionError(f"the agent did not say it was ready: {hello}")
        self._lock = threading.Lock()  # the waiters, the next id, writes to the stream
        self._waiters: dict[int, _Waiter] = {}
        self._next_id = 0
        self.broken = ""
        threading.Thread(target=self._read, name="agent-reader", daemon=True).start()

    def usable(self) -> bool:
        return not self.broken and self.stream.alive()

    def call(self, request: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        waiter = _Waiter()
        with self._lock:
            if self.broken:
                raise SessionError(self.broken)
            self._next_id += 1
            ident = self._next_id
            self._waiters[ident] = waiter
            try:
                self.stream.write(json.dumps({**request, "id": ident}) + "\n")
            except OSError as exc:
                del self._waiters[ident]
                raise SessionError(f"cannot write to the agent ({exc})") from None
        bound = timeout + ANSWER_SLACK_S
        if not waiter.done.wait(bound):
            self._break(f"no answer within {bound:.0f}s")  # the agent bounds every step itself
        if waiter.broken:
            raise SessionError(waiter.broken)
        if "error" in waiter.answer:
            raise SessionError(f"the agent refused the request: {waiter.answer['error']}")
        return waiter.answer

    def _read(self) -> None:
        while True:
            try:
                doc = dict(self._line(READ_POLL_S))
            except _Quiet:
                if self.broken:
                    return
                continue  # nothing asked, or the agent is busy: each call bounds its own wait
            except SessionError as exc:
                self._break(str(exc))
                return
            ident = doc.pop("id", None)
            with self._lock:
                waiter = self._waiters.pop(ident, None) if isinstance(ident, int) else None
            if waiter is None:
                self._break(f"the agent answered no request of ours: {json.dumps(doc)[:200]}")
                return
            waiter.answer = doc
            waiter.done.set()

    def _break(self, why: str) -> None:
        with self._lock:
            self.broken = self.broken or why
            waiters, self._waiters = list(self._waiters.values()), {}
        for waiter in waiters:
            waiter.broken = self.broken
            waiter.done.set()

    def _line(self, timeout: float) -> Mapping[str, Any]:
        try:
            line = self.stream.readline(timeout)
        except TimeoutError:
            raise _Quiet(f"no answer within {timeout:.0f}s") from None
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
        self._break("the session was closed")
        self.stream.close()


class SessionPool:
    """A node's serving agent: one session answers every call, concurrent ones included;
    one that broke is closed, never reused, and the next call starts another."""

    def __init__(self, open_stream: OpenStream, python: str) -> None:
        self.open_stream = open_stream
        self.python = python
        self._current: AgentSession | None = None
        self._lock = threading.Lock()  # held while an agent starts: callers wait for it

    def call(self, request: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        session = self._session()
        try:
            return session.call(request, timeout)
        except SessionError:
            if not session.usable():
                self._drop(session)
            raise

    def warm(self) -> None:
        """Start the agent ahead of the first call; a failure is left for that call to report."""
        try:
            self._session()
        except SessionError:
            return

    def _session(self) -> AgentSession:
        with self._lock:
            current = self._current
            if current is not None and current.usable():
                return current
            self._current = None
            if current is not None:
                current.close()  # its connection was closed (a fault, a reboot): start anew
            try:
                self._current = AgentSession(self.open_stream, self.python)
            except SessionError:
                raise
            except Exception as exc:  # noqa: BLE001 (ssh could not open a channel: no session)
                raise SessionError(f"cannot start the agent: {exc}") from None
            return self._current

    def _drop(self, session: AgentSession) -> None:
        with self._lock:
            if self._current is session:
                self._current = None
        session.close()

    def close(self) -> None:
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            current.close()
