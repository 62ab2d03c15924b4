"""A fault test fails, and so does the nightly, when the lab does not recover: the real
disruptive test and the nightly's real stage runner, with only the link's heal disabled."""

from __future__ import annotations

from pathlib import Path

from app.nightly import Stages, pytest_stage
from app.summary import overall_exit
from lab.adapters import libvirt as lv
from lab.hosts.machines import LabMachines
from lab.model.config import Lab
from provision.run import run_provision


def test_a_link_left_down_fails_the_fault_test_and_the_nightly(
    running: LabMachines, ci_lab: Lab, tmp_path: Path
) -> None:
    run_provision(running)
    victim = sorted(ci_lab.node_names)[-1]
    stages = Stages(ci_lab.name)
    try:
        stages.run(
            "disruptive (serial)",
            900,
            lambda: pytest_stage(
                ci_lab,
                tmp_path,
                "disruptive",
                0,
                900,
                extra=["-k", "private-link-down", "-p", "tests.integration.no_heal"],
            ),
        )
    finally:
        lv.set_link(running.domain(victim), running.private_network(victim), up=True)
    (result,) = stages.results
    assert result.status == "failed"
    assert overall_exit(stages.results) == 1
    log = (tmp_path / "pytest.log").read_text()
    assert "1 failed" in log
    assert "pod network healed after 'private link down'" in log, log[-3000:]
    assert "no recovery within 90s" in log
