"""The hypervisor choice (lab/hosts/hypervisor.py): KVM only when all three host facts allow it,
QEMU software emulation (TCG) otherwise, with a warning that names every missing fact; a forced
choice is obeyed. (libvirt's view of /dev/kvm: test_hypervisor_kvm_view.py.)"""

from __future__ import annotations

from lab.hosts.hypervisor import HostFacts, choose_hypervisor, kvm_usable

FACTS_PVM = HostFacts(dev_kvm_accessible=True, kvm_vendor_module=False, virt_cpu_flag=False)
FACTS_KVM = HostFacts(dev_kvm_accessible=True, kvm_vendor_module=True, virt_cpu_flag=True)


def test_paravirtual_kvm_falls_back_to_tcg_with_a_warning() -> None:
    choice = choose_hypervisor("auto", FACTS_PVM)
    assert (choice.driver, choice.cpu_mode, choice.cpu_model) == ("qemu", "custom", "qemu64")
    assert "no kvm_intel/kvm_amd module" in choice.warning
    assert "no vmx/svm CPU flag" in choice.warning


def test_real_kvm_is_used_silently() -> None:
    choice = choose_hypervisor("auto", FACTS_KVM)
    assert (choice.driver, choice.warning) == ("kvm", "")


def test_forcing_kvm_where_it_cannot_run_warns_and_forcing_qemu_is_silent() -> None:
    assert choose_hypervisor("kvm", FACTS_PVM).warning.startswith("vm.hypervisor is forced")
    assert choose_hypervisor("qemu", FACTS_KVM).driver == "qemu"
    assert choose_hypervisor("qemu", FACTS_KVM).warning == ""


def test_kvm_needs_all_three_facts() -> None:
    assert kvm_usable(HostFacts(True, True, True))
    for facts in (
        HostFacts(True, True, False),
        HostFacts(True, False, True),
        HostFacts(False, True, True),
        HostFacts(False, False, True),
    ):
        assert not kvm_usable(facts)


def test_the_tcg_warning_names_every_missing_fact() -> None:
    assert choose_hypervisor("auto", HostFacts(False, False, False)).warning == (
        "KVM is unusable here (/dev/kvm is not accessible, no kvm_intel/kvm_amd module, "
        "no vmx/svm CPU flag): using QEMU software emulation (TCG), roughly 5-10x slower; "
        "set vm.hypervisor to silence this"
    )
    assert choose_hypervisor("kvm", HostFacts(True, False, True)).warning == (
        "vm.hypervisor is forced to kvm but KVM looks unusable here (no kvm_intel/kvm_amd "
        "module): guests may never boot; the boot wait is bounded"
    )
