"""After every other integration test (up, destroy, sweeps and an interrupted up of the
session's instance of ci-debian12): every lab that ran when the session began runs still, the
same domains (libvirt UUIDs). Then `sweep` and `destroy` of ci-debian12 itself, whose name
ci-debian12-vxlan extends, leave ci-debian12-vxlan running (where no person's ci-debian12 is
here to lose)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.hosts.machines import LabMachines
from lab.model import paths
from lab.model.labfile import load_lab
from tests.integration.conftest import LAB, OthersLabs, running_lab_domains


def still_running(others: OthersLabs, machines: LabMachines) -> dict[str, str]:
    """Of the domains that ran when the session began, those running now, with their UUIDs
    (a lab another process brings up meanwhile is none of this test's business)."""
    now = running_lab_domains(machines)
    return {name: now[name] for name in others.domains if name in now}


def test_every_lab_running_before_the_session_runs_untouched(
    others_labs: OthersLabs, lab_runtime: LabMachines
) -> None:
    assert others_labs.domains, "a lab ran beside the session (test_0)"
    assert still_running(others_labs, lab_runtime) == others_labs.domains


def test_sweep_and_destroy_of_a_lab_leave_the_lab_whose_name_extends_it(
    others_labs: OthersLabs, lab_runtime: LabMachines
) -> None:
    ci = LabMachines(load_lab(paths.resolve_lab_path(LAB)), log_tag="integration")
    if ci.leftovers().domains or (ci.state / ".vagrant").exists():
        pytest.skip(f"a person's {LAB} is here: sweeping it to show this would remove it")
    for verb in ("sweep", "destroy"):
        done = subprocess.run(
            [sys.executable, "-m", "lab", verb, LAB],
            cwd=paths.REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"`python -m lab {verb} {LAB}`: {done.stderr[-2000:]}"
        assert still_running(others_labs, lab_runtime) == others_labs.domains, f"after {verb}"
