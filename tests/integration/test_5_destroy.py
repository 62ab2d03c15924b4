"""Destroy leaves nothing in libvirt, even when vagrant's own state was deleted by hand."""

from __future__ import annotations

import shutil

from lab.hosts.machines import LabMachines


def test_destroy_without_vagrant_state_leaves_no_domain_volume_or_network(
    running: LabMachines,
) -> None:
    assert running.leftovers().domains, "the lab is up before this test"
    shutil.rmtree(running.state / ".vagrant")
    running.destroy()
    left = running.leftovers()
    assert not left, f"libvirt still holds {left}"
