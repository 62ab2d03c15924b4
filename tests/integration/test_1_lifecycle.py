"""The lab's VMs for real: box, parallel up, Fabric on every node, snapshot save/restore."""

from __future__ import annotations

import time

from lab.common.commands import cmd
from lab.hosts import box
from lab.hosts.machines import LabMachines
from lab.model.config import Lab


def test_the_box_is_cached_by_its_inputs(ci_lab: Lab, lab_runtime: LabMachines) -> None:
    key = box.inputs_key()
    assert box.added_key(ci_lab.vm.box) == key, "prepare() added the box built from box/"
    start = time.monotonic()
    assert box.ensure_box(ci_lab) == box.box_path(key)
    assert time.monotonic() - start < 10, "an unchanged box must be reused, not rebuilt"


def test_up_brings_every_node_to_running(running: LabMachines, ci_lab: Lab) -> None:
    states = running.states()
    assert sorted(states) == sorted(ci_lab.node_names)
    assert {s.state for s in states.values()} == {"running"}
    assert {s.provider for s in states.values()} == {"libvirt"}


def test_fabric_runs_a_command_on_every_node(running: LabMachines, ci_lab: Lab) -> None:
    for name, node in running.channels().items():
        out = node.run(
            cmd("ip", "-4", "-o", "addr", "show", "dev", ci_lab.vm.private_nic, sudo=False)
        ).stdout
        assert f"inet {ci_lab.node(name).ip}/" in out, f"{name}: {out}"
        assert node.run(cmd("id", "-u")).stdout.strip() == "0", "sudo works"


def test_the_box_turns_address_randomisation_off_only_under_tcg(running: LabMachines) -> None:
    """box/build.sh's netlab-tcg-aslr.service: under QEMU software emulation every new process
    would be translated anew at its random addresses; under KVM nothing changes."""
    for name, node in running.channels().items():
        virt = node.run(cmd("systemd-detect-virt", sudo=False), check=False).stdout.strip()
        aslr = node.run(cmd("cat", "/proc/sys/kernel/randomize_va_space", sudo=False)).stdout
        assert aslr.strip() == ("0" if virt == "qemu" else "2"), f"{name} ({virt}): {aslr!r}"


def test_snapshot_restore_discards_what_was_written_after_it(running: LabMachines) -> None:
    marker = "/var/tmp/netlab-after-snapshot"
    running.snapshot_save("netlab-test")
    try:
        for node in running.channels().values():
            node.run(cmd("touch", marker))
            node.run(cmd("sync"))
        running.snapshot_restore("netlab-test")
        for name, node in running.channels().items():
            res = node.run(cmd("test", "-e", marker), check=False)
            assert res.exit_code == 1, f"{name}: {marker} survived the restore"
    finally:
        running.snapshot_delete("netlab-test")
