"""Which libvirt domain type can actually run a guest here (pure).

libvirt advertises `kvm` whenever /dev/kvm opens, but a paravirtual KVM without hardware
virtualisation (no kvm_intel/kvm_amd module, no vmx/svm CPU flag) leaves a KVM guest spinning in
its BIOS forever. So KVM is usable only when all three facts hold; otherwise QEMU TCG.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lab.model.config import Hypervisor


@dataclass(frozen=True)
class HostFacts:
    dev_kvm_accessible: bool
    kvm_vendor_module: bool  # /sys/module/kvm_intel or /sys/module/kvm_amd
    virt_cpu_flag: bool  # vmx or svm in /proc/cpuinfo


@dataclass(frozen=True)
class HypervisorChoice:
    driver: str  # vagrant-libvirt `driver`: "kvm" or "qemu"
    cpu_mode: str
    cpu_model: str
    warning: str = ""

    def as_libvirt_options(self) -> dict[str, str]:
        options = {"driver": self.driver, "cpu_mode": self.cpu_mode}
        if self.cpu_model:
            options["cpu_model"] = self.cpu_model
        return options


KVM = HypervisorChoice("kvm", "host-passthrough", "")
TCG = HypervisorChoice("qemu", "custom", "qemu64")


def kvm_usable(facts: HostFacts) -> bool:
    return facts.dev_kvm_accessible and facts.kvm_vendor_module and facts.virt_cpu_flag


def _why_not(facts: HostFacts) -> str:
    missing = []
    if not facts.dev_kvm_accessible:
        missing.append("/dev/kvm is not accessible")
    if not facts.kvm_vendor_module:
        missing.append("no kvm_intel/kvm_amd module")
    if not facts.virt_cpu_flag:
        missing.append("no vmx/svm CPU flag")
    return ", ".join(missing)


def choose_hypervisor(requested: Hypervisor, facts: HostFacts) -> HypervisorChoice:
    if requested == "qemu":
        return TCG
    if requested == "kvm":
        if kvm_usable(facts):
            return KVM
        return dataclasses.replace(
            KVM,
            warning=f"vm.hypervisor is forced to kvm but KVM looks unusable here "
            f"({_why_not(facts)}): guests may never boot; the boot wait is bounded",
        )
    if kvm_usable(facts):
        return KVM
    return dataclasses.replace(
        TCG,
        warning=f"KVM is unusable here ({_why_not(facts)}): using QEMU software emulation "
        "(TCG), roughly 5-10x slower; set vm.hypervisor to silence this",
    )


# --- libvirt's view of /dev/kvm ---------------------------------------------------------------
#
# libvirt asks twice whether KVM is there, and throws its cached QEMU capabilities away whenever
# the answers differ: its QEMU probe opens /dev/kvm with CAP_DAC_OVERRIDE (any mode will do), while
# every later capabilities lookup asks whether its QEMU user (libvirt-qemu, in group `kvm`) may
# read and write /dev/kvm. With /dev/kvm at 0600 (a fresh CI machine) the probe says "KVM" and the
# lookup says "not now": libvirt logs "Outdated cached capabilities" and probes QEMU again (~4 s),
# on nearly every API call. Measured with a cold libvirtd on a CI machine (2 QEMU binaries):
#
#   /dev/kvm                        first call   5 x (define, undefine, domcaps, caps)  probes
#   0600 (as found)                   11.9 s       220    s                               122
#   0660 root:kvm (udev's mode)        8.0 s         0.46 s                                 4
#   masked for libvirtd (bind mount)   4.0 s         0.36 s                                 2
#
# Masking /dev/kvm in libvirtd's mount namespace (an empty mode-0000 file bind-mounted over it)
# saves one probe per binary (4 s once per libvirtd start) but no domain starts: libvirt 9.0
# moves every mount under /dev into each domain's private /dev and fails on that one ("Unable to
# move /run/libvirt/qemu/1-....kvm mount to /dev/kvm: Invalid argument"). Making it work means
# switching libvirt's per-domain namespaces off or giving libvirtd another /dev: far more than
# KVM's view, for 4 s. So KVM stays visible, with the mode udev gives it, on every machine kind:
# usable KVM (the guide's lab) needs exactly that, and a paravirtual one (TCG guests) then costs
# one extra probe per libvirtd start instead of one per call.

UDEV_KVM_MODE = 0o660  # Debian's udev: KERNEL=="kvm", GROUP="kvm", MODE="0660"
WORLD_KVM_MODE = 0o666  # systemd's own default rule, for a host without a `kvm` group


@dataclass(frozen=True)
class KvmDevice:
    mode: int  # permission bits of /dev/kvm
    gid: int


@dataclass(frozen=True)
class KvmViewFacts:
    device: KvmDevice | None  # /dev/kvm; None when there is none
    kvm_gid: int | None  # the host's `kvm` group (libvirt's QEMU user is in it); None: no group


@dataclass(frozen=True)
class KvmViewPlan:
    """What to do so that libvirt's QEMU probe and its later lookups agree about KVM; an empty
    plan (no chgrp, no chmod) means they agree already."""

    chgrp: int | None = None  # give /dev/kvm this group
    chmod: int | None = None  # give /dev/kvm this mode
    why: str = ""


def qemu_user_can_use(device: KvmDevice, kvm_gid: int | None) -> bool:
    """Can libvirt's QEMU user (not root, in group `kvm`) read and write /dev/kvm?"""
    if device.mode & 0o006 == 0o006:
        return True
    return kvm_gid is not None and device.gid == kvm_gid and device.mode & 0o060 == 0o060


def plan_kvm_view(facts: KvmViewFacts) -> KvmViewPlan:
    device = facts.device
    if device is None:
        return KvmViewPlan(why="no /dev/kvm: libvirt and its QEMU probe agree there is no KVM")
    if qemu_user_can_use(device, facts.kvm_gid):
        return KvmViewPlan(why="libvirt's QEMU user can use /dev/kvm, as its QEMU probe can")
    why = (
        f"/dev/kvm is {device.mode & 0o777:04o} gid {device.gid}: libvirt's QEMU probe can open "
        "it, its QEMU user cannot, and libvirt re-probes QEMU on nearly every call"
    )
    if facts.kvm_gid is None:
        return KvmViewPlan(chmod=WORLD_KVM_MODE, why=f"{why}; no `kvm` group: 0666")
    return KvmViewPlan(
        chgrp=facts.kvm_gid if device.gid != facts.kvm_gid else None,
        chmod=UDEV_KVM_MODE if device.mode & 0o777 != UDEV_KVM_MODE else None,
        why=f"{why}; root:kvm 0660, as udev sets it",
    )


# --- libvirt's QEMU capabilities cache ----------------------------------------------------------


@dataclass(frozen=True)
class CacheFile:
    """One file of /var/cache/libvirt/qemu/capabilities/ (one per QEMU binary)."""

    name: str
    mtime_ns: int
    inode: int
    size: int


def caps_cache_rewrites(
    before: tuple[CacheFile, ...], after: tuple[CacheFile, ...]
) -> tuple[str, ...]:
    """Files present before that were rewritten or deleted by the time of `after` (a file that
    only appears is a first probe, not an invalidation)."""
    now = {f.name: f for f in after}
    return tuple(sorted(f.name for f in before if now.get(f.name) != f))


def caps_cache_problem(
    rewrites: tuple[tuple[str, ...], ...],
    facts: KvmViewFacts,
    cache_dir: str,
) -> str | None:
    """The error to raise when identical libvirt calls each rewrote the QEMU capabilities cache
    (`rewrites`: what each call after the first rewrote), naming the likely cause and the fix;
    None when the cache held (or there are too few calls to tell)."""
    if len(rewrites) < 2 or not all(rewrites):
        return None
    names = ", ".join(sorted({name for call in rewrites for name in call}))
    head = (
        f"libvirt keeps throwing away its QEMU capabilities cache: {len(rewrites)} identical "
        f"`virsh capabilities` calls in a row each rewrote {cache_dir}/ ({names}). Every libvirt "
        "call then re-probes QEMU (seconds each): a 2-node `up` takes about 5 minutes instead "
        "of 1."
    )
    device = facts.device
    if device is not None and not qemu_user_can_use(device, facts.kvm_gid):
        group = "kvm" if device.gid == facts.kvm_gid else f"gid {device.gid}"
        return (
            f"{head}\nCause: /dev/kvm is {device.mode & 0o777:04o} with group {group}: libvirt's "
            "QEMU probe opens it (it runs with CAP_DAC_OVERRIDE) but its QEMU user "
            "(libvirt-qemu) cannot, so each lookup finds the cache 'outdated'.\n"
            "Fix: `chgrp kvm /dev/kvm && chmod 0660 /dev/kvm` (what udev does; the lab does it "
            "when it starts libvirtd itself); libvirt notices at once, no restart needed."
        )
    return (
        f"{head}\nCause: not the /dev/kvm mode (libvirt's QEMU user "
        f"{'has no /dev/kvm' if device is None else 'can use it'}). "
        "Ask libvirt why: `virt-admin daemon-log-filters '1:qemu.qemu_capabilities "
        "1:util.filecache'`, repeat `virsh capabilities`, then "
        "`grep -B2 Outdated /var/log/libvirt/libvirtd.log` (restore with "
        "`virt-admin daemon-log-filters ''`).\n"
        "Fix: whatever that names (a QEMU binary or module directory changing, a /dev/kvm "
        "mode that keeps changing); restart libvirtd afterwards."
    )
