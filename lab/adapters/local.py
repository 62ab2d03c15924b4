"""Local subprocesses, the one runner: argv only, always bounded, failures carry the command and
the tail of its output. `run` collects the output; `stream` hands each line on as it comes (and
tees it to a log), for long commands a person watches (vagrant, the nightly's pytest passes);
`spawn` starts a daemon in a process group of its own, its output to a log file (an SSH
forward, a containerd), for its owner to stop with `stop_group`.

A command that runs past its bound, or is interrupted (Ctrl-C), gets a signal to its whole
process group first (SIGTERM by default: traps clean up; vagrant wants SIGINT to remove the
machines it half-created), then SIGKILL after a grace period."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.common.errors import CommandFailed

log = logging.getLogger(__name__)

# Time a stopped command gets to clean up (traps, unmounts) before its group is killed.
STOP_GRACE_S = 30


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    check: bool = True,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Result:
    """Run argv to completion within `timeout` seconds; then SIGTERM its process group (its
    traps clean up) and SIGKILL what is left after STOP_GRACE_S."""
    argv = tuple(argv)
    full_env = {**os.environ, **(env or {})}
    log.debug("run: %s", shlex.join(argv))
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc, signal.SIGTERM, STOP_GRACE_S)
            out, err = proc.communicate()
            raise CommandFailed(shlex.join(argv), None, out, err) from None
        except BaseException:
            stop_group(proc, signal.SIGTERM, STOP_GRACE_S)
            raise
    result = Result(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise CommandFailed(shlex.join(argv), proc.returncode, out, err)
    return result


def stream(
    argv: Sequence[str],
    *,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    log_file: Path | None = None,
    merge_stderr: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
    grace_s: float = STOP_GRACE_S,
    where: str = "local",
    reproduce: str = "",
    check: bool = True,
) -> Result:
    """Run argv within `timeout` seconds, each stdout line handed to `on_line` and appended to
    `log_file` as it arrives (stderr too with `merge_stderr`, else collected and logged at the
    end). On the bound or an interrupt: `stop_signal` to the group, SIGKILL after `grace_s`."""
    argv = tuple(argv)
    line = shlex.join(argv)
    log.debug("stream: %s", line)
    stdout_lines: list[str] = []
    stderr_chunks: list[str] = []
    expired = threading.Event()
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        logf = stack.enter_context(log_file.open("a")) if log_file is not None else None
        if logf is not None:
            logf.write(f"\n$ {line}\n")
            logf.flush()
        proc = stack.enter_context(
            subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                text=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                start_new_session=True,  # our own group: we decide how it is stopped
            )
        )

        def expire() -> None:
            expired.set()
            _stop(proc, stop_signal, grace_s, f"{line}: ran past its {timeout:.0f}s bound")

        err_reader = None
        if not merge_stderr:
            err_reader = threading.Thread(
                target=lambda: stderr_chunks.append(proc.stderr.read() if proc.stderr else ""),
                daemon=True,
            )
            err_reader.start()
        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for text in proc.stdout:
                stdout_lines.append(text)
                if logf is not None:
                    logf.write(text)
                    logf.flush()
                if on_line is not None:
                    on_line(text.rstrip("\n"))
            proc.wait()
        except BaseException:
            _stop(proc, stop_signal, grace_s, f"{line}: interrupted")
            raise
        finally:
            timer.cancel()
            if err_reader is not None:
                err_reader.join(timeout=5)
            if logf is not None:
                logf.write("".join(stderr_chunks))
    stdout, stderr = "".join(stdout_lines), "".join(stderr_chunks)
    if expired.is_set() or (check and proc.returncode != 0):
        raise CommandFailed(
            line,
            None if expired.is_set() else proc.returncode,
            stdout,
            stderr,
            where=where,
            reproduce=reproduce,
        )
    return Result(argv, proc.returncode, stdout, stderr)


def spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen[str]:
    """A long-running process, its stdout and stderr to `log_path`; the caller owns it."""
    with log_path.open("w") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[str], sig: signal.Signals, grace_s: float, why: str) -> None:
    if proc.poll() is not None:
        return
    log.warning("%s; sending %s, then SIGKILL after %.0fs", why, sig.name, grace_s)
    stop_group(proc, sig, grace_s)


def stop_group(proc: subprocess.Popen[str], sig: signal.Signals, grace_s: float) -> None:
    """Send `sig` to the process group of `proc` (started with start_new_session), wait up to
    `grace_s` for it to exit, then SIGKILL whatever is left of the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
