"""`up` interrupted part-way (Ctrl-C, or killed outright) leaves nothing `sweep` cannot clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from lab.adapters import libvirt as lv
from lab.common import waits
from lab.hosts.machines import LabMachines, record_instance
from lab.model import paths
from lab.model.config import Lab

FIRST_BOOT = waits.Policy("a domain of the lab is running", timeout_s=300, interval_s=0.5)


def booting(lab: Lab) -> bool:
    """Part-way: at least one guest of the lab has started (so volumes, networks exist)."""
    for domain in lv.list_lab_objects(lab.prefix).domains:
        try:
            if lv.domain_state(domain) == "running":
                return True
        except Exception:  # noqa: BLE001 (defined a moment ago, or being undefined)
            continue
    return False


def booting_or_gone(lab: Lab, proc: subprocess.Popen[str]) -> bool:
    """A guest started, or `up` ended before any did (then the test shows its output)."""
    return proc.poll() is not None or booting(lab)


def start_up(lab: Lab) -> subprocess.Popen[str]:
    """`python -m lab up` as a person starts it: Ctrl-C is not ignored, even when this test
    runs in a background job (which starts with SIGINT ignored, and Python keeps it so)."""
    return subprocess.Popen(
        [sys.executable, "-m", "lab", "up", lab.name],
        cwd=paths.REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_an_interrupted_up_leaves_nothing_after_sweep(
    how: signal.Signals, ci_lab: Lab, lab_runtime: LabMachines
) -> None:
    assert not lab_runtime.leftovers(), "starts from nothing"
    # the destroy before this test removed the instance's record with its machines
    record_instance(ci_lab, os.getpid())
    proc = start_up(ci_lab)
    try:
        waits.wait_until(FIRST_BOOT, lambda: booting_or_gone(ci_lab, proc), bool)
        if proc.poll() is not None:
            pytest.fail(
                f"`python -m lab up {ci_lab.name}` ended before any guest started:\n"
                f"{proc.communicate()[0][-2000:]}"
            )
        os.kill(proc.pid, how)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    lab_runtime.sweep()
    left = lab_runtime.leftovers()
    assert not left, f"after an interrupted up and a sweep, libvirt still holds {left}"
