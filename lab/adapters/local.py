"""Local subprocesses: argv only, always bounded, failures carry command + output tail."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lab.errors import CommandFailed

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
