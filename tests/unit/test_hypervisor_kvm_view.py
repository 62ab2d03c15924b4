"""libvirt's view of /dev/kvm (pure decision) and the QEMU capabilities cache check."""

from __future__ import annotations

import pytest

from lab.hosts.hypervisor import (
    CacheFile,
    KvmDevice,
    KvmViewFacts,
    KvmViewPlan,
    caps_cache_problem,
    caps_cache_rewrites,
    plan_kvm_view,
    qemu_user_can_use,
)

KVM_GID = 107
FRESH_CI = KvmDevice(mode=0o600, gid=0)  # a fresh CI machine: crw------- root:root
CI_AFTER_CHGRP = KvmDevice(mode=0o600, gid=KVM_GID)  # crw------- root:kvm
UDEV = KvmDevice(mode=0o660, gid=KVM_GID)


def facts(device: KvmDevice | None, kvm_gid: int | None = KVM_GID) -> KvmViewFacts:
    return KvmViewFacts(device=device, kvm_gid=kvm_gid)


@pytest.mark.parametrize(
    ("device", "kvm_gid", "usable"),
    [
        (KvmDevice(0o600, KVM_GID), KVM_GID, False),  # owner only: root
        (KvmDevice(0o660, 0), KVM_GID, False),  # group rw, but not the kvm group
        (KvmDevice(0o640, KVM_GID), KVM_GID, False),  # group may read, not write
        (KvmDevice(0o660, KVM_GID), KVM_GID, True),
        (KvmDevice(0o666, 0), None, True),  # everyone (systemd's default rule)
        # execute bits do not matter, only read and write
        (KvmDevice(0o667, 0), None, True),
        (KvmDevice(0o671, KVM_GID), KVM_GID, True),
        (KvmDevice(0o664, 0), None, False),  # everyone may read, not write
    ],
)
def test_the_qemu_user_can_use_dev_kvm_only_with_group_or_world_read_write(
    device: KvmDevice, kvm_gid: int | None, usable: bool
) -> None:
    assert qemu_user_can_use(device, kvm_gid) is usable


def test_a_fresh_machines_dev_kvm_gets_udevs_group_and_mode() -> None:
    plan = plan_kvm_view(facts(FRESH_CI))
    assert (plan.chgrp, plan.chmod) == (KVM_GID, 0o660)
    assert plan.why.startswith("/dev/kvm is 0600 gid 0: libvirt's QEMU probe can open it")


def test_the_right_group_only_needs_the_mode() -> None:
    plan = plan_kvm_view(facts(CI_AFTER_CHGRP))
    assert (plan.chgrp, plan.chmod) == (None, 0o660)


def test_a_kvm_group_that_may_only_read_gets_read_write() -> None:
    plan = plan_kvm_view(facts(KvmDevice(0o640, KVM_GID)))
    assert (plan.chgrp, plan.chmod) == (None, 0o660)


@pytest.mark.parametrize("device", [UDEV, KvmDevice(0o666, 0), None])
def test_a_dev_kvm_libvirt_sees_consistently_is_left_as_it_is(device: KvmDevice | None) -> None:
    plan = plan_kvm_view(facts(device))
    assert (plan.chgrp, plan.chmod) == (None, None)


def test_without_a_kvm_group_dev_kvm_is_opened_to_everyone_as_systemds_own_rule_does() -> None:
    plan = plan_kvm_view(facts(FRESH_CI, kvm_gid=None))
    assert (plan.chgrp, plan.chmod) == (None, 0o666)
    assert "no `kvm` group" in plan.why


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
        cache_dir="/var/cache/libvirt/qemu/capabilities",
    )
    assert problem is not None
    assert "2 identical `virsh capabilities` calls in a row each rewrote" in problem
    assert "926803a9.xml, f1100872.xml" in problem
    assert "Cause: /dev/kvm is 0600 with group kvm" in problem
    assert "CAP_DAC_OVERRIDE" in problem
    assert "Fix: `chgrp kvm /dev/kvm && chmod 0660 /dev/kvm`" in problem


def test_repeated_rewrites_with_a_usable_dev_kvm_point_at_libvirts_own_log() -> None:
    problem = caps_cache_problem(((X86.name,), (X86.name,)), facts(UDEV), cache_dir="/c")
    assert problem is not None
    assert "Cause: not the /dev/kvm mode (libvirt's QEMU user can use it)" in problem
    assert "virt-admin daemon-log-filters '1:qemu.qemu_capabilities 1:util.filecache'" in problem


def test_one_rewrite_or_a_cache_that_held_is_no_problem() -> None:
    for rewrites in ((), ((X86.name,),), ((X86.name,), ()), ((), ())):
        assert caps_cache_problem(rewrites, facts(CI_AFTER_CHGRP), "/c") is None


# --- to the letter: every branch's whole message (a changed word is a changed message) ----------

HEAD = (
    "libvirt keeps throwing away its QEMU capabilities cache: 2 identical `virsh capabilities` "
    "calls in a row each rewrote /c/ (926803a9.xml, f1100872.xml). Every libvirt call then "
    "re-probes QEMU (seconds each): a 2-node `up` takes about 5 minutes instead of 1."
)
TWICE = ((I386.name, X86.name), (X86.name,))


def test_the_cache_problem_with_an_unusable_dev_kvm_of_another_group_word_for_word() -> None:
    assert caps_cache_problem(TWICE, facts(FRESH_CI), "/c") == (
        f"{HEAD}\nCause: /dev/kvm is 0600 with group gid 0: libvirt's QEMU probe opens it (it "
        "runs with CAP_DAC_OVERRIDE) but its QEMU user (libvirt-qemu) cannot, so each lookup "
        "finds the cache 'outdated'.\nFix: `chgrp kvm /dev/kvm && chmod 0660 /dev/kvm` (what "
        "udev does; the lab does it when it starts libvirtd itself); libvirt notices at once, "
        "no restart needed."
    )


@pytest.mark.parametrize(
    ("device", "has"), [(UDEV, "can use it"), (None, "has no /dev/kvm")], ids=["usable", "none"]
)
def test_the_cache_problem_not_caused_by_dev_kvm_word_for_word(
    device: KvmDevice | None, has: str
) -> None:
    assert caps_cache_problem((*TWICE, (X86.name,)), facts(device), "/c") == (
        f"{HEAD.replace('2 identical', '3 identical')}\nCause: not the /dev/kvm mode (libvirt's "
        f"QEMU user {has}). Ask libvirt why: `virt-admin daemon-log-filters "
        "'1:qemu.qemu_capabilities 1:util.filecache'`, repeat `virsh capabilities`, then "
        "`grep -B2 Outdated /var/log/libvirt/libvirtd.log` (restore with `virt-admin "
        "daemon-log-filters ''`).\nFix: whatever that names (a QEMU binary or module directory "
        "changing, a /dev/kvm mode that keeps changing); restart libvirtd afterwards."
    )


def test_two_calls_that_both_rewrote_are_enough_and_one_quiet_call_clears_them() -> None:
    assert caps_cache_problem(((X86.name,), (X86.name,)), facts(UDEV), "/c") is not None
    assert caps_cache_problem(((X86.name,), (), (X86.name,)), facts(UDEV), "/c") is None


@pytest.mark.parametrize(
    ("facts_", "plan"),
    [
        (
            facts(None),
            KvmViewPlan(why="no /dev/kvm: libvirt and its QEMU probe agree there is no KVM"),
        ),
        (
            facts(UDEV),
            KvmViewPlan(why="libvirt's QEMU user can use /dev/kvm, as its QEMU probe can"),
        ),
        (
            facts(FRESH_CI),
            KvmViewPlan(
                chgrp=KVM_GID,
                chmod=0o660,
                why="/dev/kvm is 0600 gid 0: libvirt's QEMU probe can open it, its QEMU user "
                "cannot, and libvirt re-probes QEMU on nearly every call; root:kvm 0660, as "
                "udev sets it",
            ),
        ),
        (
            facts(KvmDevice(0o640, KVM_GID)),
            KvmViewPlan(
                chmod=0o660,
                why=f"/dev/kvm is 0640 gid {KVM_GID}: libvirt's QEMU probe can open it, its "
                "QEMU user cannot, and libvirt re-probes QEMU on nearly every call; root:kvm "
                "0660, as udev sets it",
            ),
        ),
        (
            facts(KvmDevice(0o660, 0)),
            KvmViewPlan(
                chgrp=KVM_GID,
                why="/dev/kvm is 0660 gid 0: libvirt's QEMU probe can open it, its QEMU user "
                "cannot, and libvirt re-probes QEMU on nearly every call; root:kvm 0660, as "
                "udev sets it",
            ),
        ),
        (
            facts(KvmDevice(0o10600, 0), kvm_gid=None),
            KvmViewPlan(
                chmod=0o666,
                why="/dev/kvm is 0600 gid 0: libvirt's QEMU probe can open it, its QEMU user "
                "cannot, and libvirt re-probes QEMU on nearly every call; no `kvm` group: 0666",
            ),
        ),
    ],
    ids=["none", "udev", "fresh", "group-read-only", "other-group-rw", "no-kvm-group"],
)
def test_the_kvm_view_plan_word_for_word(facts_: KvmViewFacts, plan: KvmViewPlan) -> None:
    assert plan_kvm_view(facts_) == plan
