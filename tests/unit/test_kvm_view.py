"""libvirt's view of /dev/kvm (pure decision) and the QEMU capabilities cache check."""

from __future__ import annotations

import pytest

from lab.adapters import sandbox
from lab.hypervisor import (
    CacheFile,
    HostFacts,
    KvmDevice,
    KvmViewFacts,
    KvmViewPlan,
    caps_cache_problem,
    caps_cache_rewrites,
    parse_mounted_over_kvm,
    plan_kvm_view,
    qemu_user_can_use,
)

KVM_GID = 107
PVM = HostFacts(dev_kvm_accessible=True, kvm_vendor_module=False, virt_cpu_flag=False)
HARDWARE = HostFacts(dev_kvm_accessible=True, kvm_vendor_module=True, virt_cpu_flag=True)
FRESH_CI = KvmDevice(mode=0o600, gid=0)  # a fresh CI machine: crw------- root:root
CI_AFTER_CHGRP = KvmDevice(mode=0o600, gid=KVM_GID)  # crw------- root:kvm
UDEV = KvmDevice(mode=0o660, gid=KVM_GID)


def facts(device: KvmDevice | None, host: HostFacts = PVM, kvm_gid: int | None = KVM_GID):
    return KvmViewFacts(device=device, kvm_gid=kvm_gid, host=host)


@pytest.mark.parametrize(
    ("device", "kvm_gid", "usable"),
    [
        (KvmDevice(0o600, KVM_GID), KVM_GID, False),  # owner only: root
        (KvmDevice(0o660, 0), KVM_GID, False),  # group rw, but not the kvm group
        (KvmDevice(0o640, KVM_GID), KVM_GID, False),  # group may read, not write
        (KvmDevice(0o660, KVM_GID), KVM_GID, True),
        (KvmDevice(0o666, 0), None, True),  # everyone (systemd's default rule)
    ],
)
def test_the_qemu_user_can_use_dev_kvm_only_with_group_or_world_read_write(
    device: KvmDevice, kvm_gid: int | None, usable: bool
) -> None:
    assert qemu_user_can_use(device, kvm_gid) is usable


def test_paravirtual_kvm_on_a_fresh_machine_gets_udevs_mode_and_is_hidden_from_libvirtd() -> None:
    plan = plan_kvm_view(facts(FRESH_CI))
    assert (plan.chgrp, plan.chmod, plan.hide) == (KVM_GID, 0o660, True)
    assert "KVM cannot run a guest here (no kvm_intel/kvm_amd module, no vmx/svm" in plan.why


def test_paravirtual_kvm_with_the_right_group_only_needs_the_mode() -> None:
    plan = plan_kvm_view(facts(CI_AFTER_CHGRP))
    assert (plan.chgrp, plan.chmod, plan.hide) == (None, 0o660, True)


def test_paravirtual_kvm_already_as_udev_sets_it_is_only_hidden() -> None:
    assert plan_kvm_view(facts(UDEV)) == KvmViewPlan(hide=True, why=plan_kvm_view(facts(UDEV)).why)


def test_usable_kvm_gets_udevs_mode_and_stays_visible() -> None:
    plan = plan_kvm_view(facts(CI_AFTER_CHGRP, HARDWARE))
    assert (plan.chgrp, plan.chmod, plan.hide) == (None, 0o660, False)
    assert plan_kvm_view(facts(UDEV, HARDWARE)).hide is False


def test_a_world_writable_dev_kvm_is_left_as_it_is() -> None:
    plan = plan_kvm_view(facts(KvmDevice(0o666, 0), HARDWARE))
    assert (plan.chgrp, plan.chmod, plan.hide) == (None, None, False)


def test_without_a_kvm_group_the_qemu_user_cannot_use_kvm_so_libvirtd_does_not_see_it() -> None:
    plan = plan_kvm_view(facts(CI_AFTER_CHGRP, HARDWARE, kvm_gid=None))
    assert (plan.chgrp, plan.chmod, plan.hide) == (None, None, True)
    assert "no `kvm` group" in plan.why


def test_no_dev_kvm_needs_nothing() -> None:
    for host in (PVM, HARDWARE):
        plan = plan_kvm_view(facts(None, host))
        assert (plan.chgrp, plan.chmod, plan.hide) == (None, None, False)
        assert plan.why.startswith("no /dev/kvm")


def test_libvirtd_is_started_in_the_namespace_with_dev_kvm_masked_only_when_asked() -> None:
    assert sandbox.render_libvirtd_argv("netlab", hide_kvm=False) == (
        "ip", "netns", "exec", "netlab", "/usr/sbin/libvirtd", "-d",
    )  # fmt: skip
    assert sandbox.render_libvirtd_argv("netlab", hide_kvm=True) == (
        "ip", "netns", "exec", "netlab", "sh", "-c",
        'mount --bind "$1" /dev/kvm && exec "$2" -d',
        "netlab-libvirtd", "/run/netlab/no-kvm", "/usr/sbin/libvirtd",
    )  # fmt: skip


# /proc/PID/mountinfo of a libvirtd started with KVM hidden (captured on a CI machine)
MOUNTINFO_HIDDEN = """\
1012 1011 253:0 / / rw,relatime master:1 - ext4 /dev/vda rw
1013 1012 0:6 / /dev rw,relatime master:2 - devtmpfs devtmpfs rw,size=12334460k,mode=755
1030 1013 0:25 /netlab/no-kvm /dev/kvm rw,nosuid,nodev - tmpfs tmpfs rw,mode=755
"""


def test_a_mount_over_dev_kvm_is_seen_in_mountinfo() -> None:
    assert parse_mounted_over_kvm(MOUNTINFO_HIDDEN) is True
    without = "\n".join(MOUNTINFO_HIDDEN.splitlines()[:2])
    assert parse_mounted_over_kvm(without) is False
    assert parse_mounted_over_kvm("") is False


X86 = CacheFile("926803a9.xml", mtime_ns=1_000, inode=11, size=209_199)
I386 = CacheFile("f1100872.xml", mtime_ns=1_000, inode=12, size=230_819)


def test_an_untouched_cache_has_no_rewrites_and_a_new_file_is_a_first_probe() -> None:
    assert caps_cache_rewrites((X86, I386), (X86, I386)) == ()
    assert caps_cache_rewrites((X86,), (X86, I386)) == ()


def test_a_rewritten_or_deleted_cache_file_is_named() -> None:
    rewritten = CacheFile(X86.name, mtime_ns=2_000, inode=13, size=X86.size)
    assert caps_cache_rewrites((X86, I386), (rewritten, I386)) == (X86.name,)
    assert caps_cache_rewrites((X86, I386), (X86,)) == (I386.name,)


def test_repeated_rewrites_with_an_unusable_dev_kvm_name_the_mode_and_the_fix() -> None:
    problem = caps_cache_problem(
        ((X86.name,), (X86.name, I386.name)),
        facts(CI_AFTER_CHGRP),
        libvirtd_hides_kvm=False,
        cache_dir="/var/cache/libvirt/qemu/capabilities",
    )
    assert problem is not None
    assert "2 identical `virsh capabilities` calls in a row each rewrote" in problem
    assert "926803a9.xml, f1100872.xml" in problem
    assert "Cause: /dev/kvm is 0600 with group kvm" in problem
    assert "CAP_DAC_OVERRIDE" in problem
    assert "Fix: `chgrp kvm /dev/kvm && chmod 0660 /dev/kvm`" in problem


def test_repeated_rewrites_with_kvm_hidden_point_at_libvirts_own_log() -> None:
    problem = caps_cache_problem(
        ((X86.name,), (X86.name,)), facts(FRESH_CI), libvirtd_hides_kvm=True, cache_dir="/c"
    )
    assert problem is not None
    assert "not the /dev/kvm mode (libvirt's QEMU user cannot see it)" in problem
    assert "virt-admin daemon-log-filters '1:qemu.qemu_capabilities 1:util.filecache'" in problem


def test_one_rewrite_or_a_cache_that_held_is_no_problem() -> None:
    for rewrites in ((), ((X86.name,),), ((X86.name,), ()), ((), ())):
        assert caps_cache_problem(rewrites, facts(CI_AFTER_CHGRP), False, "/c") is None
