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
    """Run argv to completion within `timeout` seconds; kill its whole process group after."""
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
            kill_group(proc)
            out, err = proc.communicate()
            raise CommandFailed(shlex.join(argv), None, out, err) from None
        except BaseException:
            kill_group(proc)
            raise
    result = Result(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise CommandFailed(shlex.join(argv), proc.returncode, out, err)
    return result


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
