"""The local runner stops a command the way its cleanup needs: a signal first, SIGKILL last."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.adapters import local
from lab.common.errors import CommandFailed


def test_a_timed_out_command_runs_its_cleanup_trap(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    script = f"trap 'touch {marker}; exit 143' TERM; sleep 30 & wait"
    with pytest.raises(CommandFailed) as info:
        local.run(["bash", "-c", script], timeout=0.5)
    assert info.value.exit_code is None, "a timeout has no exit code"
    assert marker.exists(), "SIGTERM let the trap clean up"


def test_a_group_that_ignores_the_signal_is_killed_after_the_grace() -> None:
    proc = subprocess.Popen(
        ["bash", "-c", "trap '' INT; sleep 30"], start_new_session=True, text=True
    )
    time.sleep(0.2)  # the trap is set
    start = time.monotonic()
    local.stop_group(proc, signal.SIGINT, grace_s=0.5)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - start < 5


def test_spawn_sends_both_streams_to_the_log_in_a_group_of_its_own(tmp_path: Path) -> None:
    log_path = tmp_path / "daemon.log"
    leads = "import os, sys; print(os.getpgid(0) == os.getpid()); print('err', file=sys.stderr)"
    proc = local.spawn([sys.executable, "-c", leads], log_path)
    assert proc.wait(timeout=10) == 0
    assert proc.stdin is None
    assert log_path.read_text() == "True\nerr\n"  # it leads a process group of its own
