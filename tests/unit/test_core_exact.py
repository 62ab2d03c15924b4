"""The small pure pieces, pinned to their exact output: how commands are batched and rendered,
what a failed command says, how a named wait retries and logs, why KVM was not used, how a
problem echoes a value and names a character."""

from __future__ import annotations

from lab.hosts.hypervisor import HostFacts, choose_hypervisor, kvm_usable


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
