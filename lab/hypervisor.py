"""Which libvirt domain type can actually run a guest here (pure).

libvirt advertises `kvm` whenever /dev/kvm opens, but a paravirtual KVM without hardware
virtualisation (no kvm_intel/kvm_amd module, no vmx/svm CPU flag) leaves a KVM guest spinning in
its BIOS forever. So KVM is usable only when all three facts hold; otherwise QEMU TCG.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lab.config import Hypervisor


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
