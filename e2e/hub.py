"""The node agents of a parallel run, shared by its xdist workers: the controller holds each
node's serving agents (e2e/session.py) and answers the workers on one Unix socket per node.
Without it every worker started agents of its own on every node: an SSH connection, a sudo and
a Python start in a 1-vCPU TCG guest each, about 7 s of guest CPU per worker per node in a run.

One request per line, one answer per line, on a connection a worker keeps while it is idle:

    worker -> hub   {"timeout": 60, "request": {"op": "steps", ...}}
    hub -> worker   {"answer": {...}}  or  {"error": "no answer within 75s"}

An error is the SessionError the controller's call raised, passed on as text; the worker raises
it again (the caller treats it as a broken session, as without the hub).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from e2e.session import ANSWER_SLACK_S, READY_TIMEOUT_S, SessionError

CONNECT_TIMEOUT_S = 10
LINE_LIMIT = 64 * 1024 * 1024  # an answer carries at most a few MiB of command output


class Pool(Protocol):
    """What the hub serves from (e2e.session.SessionPool)."""

    def call(self, request: Mapping[str, Any], timeout: float) -> Mapping[str, Any]: ...

    def warm(self) -> None: ...

    def close(self) -> None: ...


def socket_path(directory: str, node: str) -> str:
    return str(Path(directory) / f"{node}.sock")


class Hub:
    """The controller's side: a listening socket per node, a thread per worker connection."""

    def __init__(self, pools: Mapping[str, Pool]) -> None:
        self.pools = dict(pools)
        self.directory = tempfile.mkdtemp(prefix="nl-hub-", dir="/tmp")  # sun_path: 108 bytes
        self._listeners: list[socket.socket] = []
        self._conns: set[socket.socket] = set()
        self._warming: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> str:
        """Listen for every node and warm its first agent; returns the sockets' directory."""
        for node, pool in self.pools.items():
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(socket_path(self.directory, node))
            listener.listen(64)
            self._listeners.append(listener)
            threading.Thread(
                target=self._accept, args=(listener, pool), name=f"hub-{node}", daemon=True
            ).start()
            warm = threading.Thread(target=pool.warm, name=f"hub-warm-{node}", daemon=True)
            warm.start()
            self._warming.append(warm)
        return self.directory

    def _accept(self, listener: socket.socket, pool: Pool) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(conn, pool), daemon=True).start()

    def _serve(self, conn: socket.socket, pool: Pool) -> None:
        with self._lock:
            if self._closed:
                conn.close()
                return
            self._conns.add(conn)
        try:
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    conn.sendall(answer(pool, line) + b"\n")
        except OSError:  # the worker went, or the hub closed
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns, self._conns = list(self._conns), set()
        for listener in self._listeners:
            listener.close()
        for conn in conns:  # a worker's kept connection ends: its next call says so
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for warm in self._warming:  # an agent still starting would outlive its closed pool
            warm.join(READY_TIMEOUT_S)
        for pool in self.pools.values():
            pool.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def answer(pool: Pool, line: bytes) -> bytes:
    """One worker request line -> one answer line (without its newline)."""
    try:
        doc = json.loads(line)
        request, timeout = doc["request"], float(doc["timeout"])
    except (ValueError, KeyError, TypeError) as exc:
        return json.dumps({"error": f"the hub cannot read the request: {exc}"}).encode()
    try:
        return json.dumps({"answer": pool.call(request, timeout)}).encode()
    except Exception as exc:  # noqa: BLE001 (every failure is an answer: the worker waits)
        return json.dumps({"error": str(exc) or type(exc).__name__}).encode()


class HubPool:
    """A worker's side, in place of its own SessionPool: the same call(), through the hub.
    Connections are kept while idle; one that failed is dropped."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._idle: list[tuple[socket.socket, Any]] = []
        self._lock = threading.Lock()

    def call(self, request: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        conn, lines = self._take()
        try:
            conn.settimeout(timeout + 2 * ANSWER_SLACK_S)
            conn.sendall(json.dumps({"timeout": timeout, "request": request}).encode() + b"\n")
            line = lines.readline(LINE_LIMIT)
            doc = json.loads(line) if line.endswith(b"\n") else None
        except (OSError, ValueError) as exc:
            conn.close()
            raise SessionError(f"the agent hub gave no answer: {exc}") from None
        if not isinstance(doc, dict) or not ("answer" in doc or "error" in doc):
            conn.close()
            raise SessionError(f"the agent hub's answer was cut or is not ours: {line[:200]!r}")
        with self._lock:
            self._idle.append((conn, lines))
        if "error" in doc:
            raise SessionError(str(doc["error"]))
        answer: Mapping[str, Any] = doc["answer"]
        return answer

    def _take(self) -> tuple[socket.socket, Any]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(CONNECT_TIMEOUT_S)
        try:
            conn.connect(self.path)
        except OSError as exc:
            conn.close()
            raise SessionError(f"cannot reach the agent hub at {self.path}: {exc}") from None
        return conn, conn.makefile("rb")

    def warm(self) -> None:
        """The hub warms the node's agents itself."""

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, lines in idle:
            lines.close()
            conn.close()


def hub_pool(node: str, directory: str) -> HubPool | None:
    """This worker's way to the controller's agents on `node`, when the run has a hub (its
    sockets' directory, from the controller: "" when it has none)."""
    if not directory:
        return None
    path = socket_path(directory, node)
    return HubPool(path) if os.path.exists(path) else None
