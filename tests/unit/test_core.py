"""Small pure pieces: command rendering, probe framing, redaction, hypervisor choice, waits."""

from __future__ import annotations

from lab.hosts.hypervisor import HostFacts, choose_hypervisor

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
