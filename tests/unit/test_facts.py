"""Node facts (lab/hosts/facts.py): how a fact that cannot be read is said."""

from __future__ import annotations

import pytest

from lab.common.commands import Output, cmd, render_remote
from lab.hosts import facts


def test_an_unreadable_fact_names_the_command_its_exit_and_the_first_200_characters() -> None:
    command = cmd("cat", "/etc/os-release", sudo=False)
    assert str(facts.unreadable(command, Output(1, "  \n"), "the OS")) == (
        "cannot read the OS: `cat /etc/os-release` exited 1"
    )
    assert str(facts.unreadable(command, Output(2, " no such file \n"), "the OS")) == (
        "cannot read the OS: `cat /etc/os-release` exited 2 and printed 'no such file'"
    )
    long = facts.unreadable(command, Output(1, "x" * 300), "the OS")
    assert (
        str(long) == f"cannot read the OS: `cat /etc/os-release` exited 1 and printed '{'x' * 200}'"
    )


def test_the_ipv4_routes_are_each_line_of_ip_route_or_an_error_naming_it() -> None:
    fact = facts.ipv4_routes()
    assert (fact.name, render_remote(fact.command)) == ("ipv4 routes", "ip -4 route show")
    assert fact.command == cmd("ip", "-4", "route", "show", sudo=False), "read without sudo"
    assert fact.parse(
        Output(0, "default via 192.168.124.1 dev eth0\n\n  10.244.1.0/24 via x \n")
    ) == (
        "default via 192.168.124.1 dev eth0",
        "10.244.1.0/24 via x",
    )
    with pytest.raises(
        ValueError, match=r"^cannot read the IPv4 routes: `ip -4 route show` exited 1$"
    ):
        fact.parse(Output(1, ""))


def test_a_text_fact_is_the_stripped_answer_or_none_when_the_command_failed() -> None:
    fact = facts.text_if_ok("bridge MAC", cmd("cat", "/sys/class/net/cni0/address", sudo=False))
    assert fact.name == "bridge MAC"
    assert fact.parse(Output(0, " 0a:58:0a:f4:00:01 \n")) == "0a:58:0a:f4:00:01"
    assert fact.parse(Output(1, "0a:58:0a:f4:00:01\n")) is None


def test_outputs_pair_with_their_commands_only_one_for_one() -> None:
    a, b = cmd("true"), cmd("false")
    assert facts.outputs_by_command([a, b], [Output(0, ""), Output(1, "")]) == {
        a: Output(0, ""),
        b: Output(1, ""),
    }
    with pytest.raises(ValueError, match=r"^2 probe commands but 1 outputs$"):
        facts.outputs_by_command([a, b], [Output(0, "")])


def shown(fact: facts.Fact[object]) -> tuple[str, str]:
    return fact.name, render_remote(fact.command)


def test_files_are_read_with_cat_through_sudo_and_an_absent_one_is_none_or_an_error() -> None:
    text = facts.file_text("/etc/hosts")
    assert shown(text) == ("file /etc/hosts", "sudo -n cat /etc/hosts")
    assert (text.parse(Output(0, "x\n")), text.parse(Output(1, ""))) == ("x\n", None)
    required = facts.file_text_required("/etc/hosts")
    assert shown(required) == ("file /etc/hosts", "sudo -n cat /etc/hosts")
    assert required.parse(Output(0, "127.0.0.1 localhost\n")) == "127.0.0.1 localhost\n"
    with pytest.raises(ValueError, match=r"^cannot read /etc/hosts \(exit 1\)$"):
        required.parse(Output(1, "partial"))
    exists = facts.file_exists("/etc/fstab")
    assert shown(exists) == ("/etc/fstab is a file", "sudo -n test -f /etc/fstab")
    assert (exists.parse(Output(0, "")), exists.parse(Output(1, ""))) == (True, False)


def test_units_are_active_or_enabled_only_when_systemctl_says_so_exactly() -> None:
    active = facts.unit_active("containerd")
    assert shown(active) == ("containerd active", "systemctl is-active containerd")
    assert [active.parse(Output(c, o)) for c, o in ((0, "active\n"), (3, "inactive\n"))] == [
        True,
        False,
    ]
    enabled = facts.unit_enabled("kubelet")
    assert shown(enabled) == ("kubelet enabled", "systemctl is-enabled kubelet")
    assert [
        enabled.parse(Output(c, o))
        for c, o in ((0, " enabled\n"), (1, "disabled\n"), (0, "static"))
    ] == [True, False, False]


def test_packages_are_read_from_one_shared_rpm_query() -> None:
    versions = facts.rpm_versions(["kubelet", "kubeadm"])
    assert shown(versions) == (
        "installed rpms",
        "rpm -q --qf '%{NAME} %{VERSION}\\n' kubelet kubeadm",
    )
    assert versions.parse(Output(1, "kubelet 1.18.1\npackage kubeadm is not installed\n")) == (
        "kubelet 1.18.1",
    )
    kubelet = facts.rpm_installed(["kubelet", "kubeadm"], "kubelet")
    kubeadm = facts.rpm_installed(["kubelet", "kubeadm"], "kubeadm")
    assert kubelet.name == "kubelet installed"
    assert kubelet.command == versions.command
    out = Output(1, "kubelet 1.18.1\npackage kubeadm is not installed\n")
    assert (kubelet.parse(out), kubeadm.parse(out)) == (True, False)
    assert kubeadm.parse(Output(0, "kubeadm-extra 1\n")) is False  # a name, not a prefix
    with pytest.raises(
        ValueError, match=r"^docker is not among the queried packages \['kubelet'\]$"
    ):
        facts.rpm_installed(["kubelet"], "docker")


def test_kernel_state_is_read_from_proc_and_an_unreadable_file_is_an_error() -> None:
    loaded = facts.module_loaded("br_netfilter")
    assert shown(loaded) == ("module br_netfilter loaded", "cat /proc/modules")
    modules = "br_netfilter 32768 0 - Live 0x0\n\nbridge 311296 1 br_netfilter\n"
    assert loaded.parse(Output(0, modules)) is True
    assert facts.module_loaded("bridge").parse(Output(0, modules)) is True
    assert facts.module_loaded("br").parse(Output(0, modules)) is False
    with pytest.raises(
        ValueError, match=r"^cannot read the loaded kernel modules: `cat /proc/modules` exited 1$"
    ):
        loaded.parse(Output(1, ""))
    sysctls = facts.sysctl_lines(["net.ipv4.ip_forward", "vm.swappiness"])
    assert shown(sysctls) == ("sysctls", "sudo -n sysctl net.ipv4.ip_forward vm.swappiness")
    assert sysctls.parse(Output(255, " net.ipv4.ip_forward = 1 \nsysctl: cannot stat vm\n")) == (
        "net.ipv4.ip_forward = 1",
    )
    value = facts.proc_value("/proc/sys/net/ipv4/ip_forward")
    assert shown(value) == ("/proc/sys/net/ipv4/ip_forward", "cat /proc/sys/net/ipv4/ip_forward")
    assert value.parse(Output(0, " 1\n")) == "1"
    with pytest.raises(
        ValueError,
        match=r"^cannot read /proc/sys/net/ipv4/ip_forward: `cat /proc/sys/net/ipv4/ip_forward` "
        r"exited 1$",
    ):
        value.parse(Output(1, ""))


def test_swaps_and_the_hostname_are_read_or_refused() -> None:
    swaps = facts.active_swaps()
    assert shown(swaps) == ("active swaps", "cat /proc/swaps")
    table = (
        "Filename Type Size Used Priority\n/swapfile file 1 0 -2\n\n/dev/vdb2 partition 1 0 -3\n"
    )
    assert swaps.parse(Output(0, table)) == ("/swapfile", "/dev/vdb2")
    with pytest.raises(
        ValueError, match=r"^cannot read the active swap devices: `cat /proc/swaps` exited 1$"
    ):
        swaps.parse(Output(1, ""))
    name = facts.hostname()
    assert shown(name) == ("hostname", "hostname")
    assert name.parse(Output(0, " node1\n")) == "node1"
    for out in (Output(1, "node1"), Output(0, "  \n")):
        with pytest.raises(ValueError, match=r"^cannot read the hostname: `hostname` exited"):
            name.parse(out)


def test_generic_facts_read_success_lines_or_a_match() -> None:
    ok = facts.command_ok("image present", cmd("true"))
    assert (ok.name, ok.parse(Output(0, "")), ok.parse(Output(1, ""))) == (
        "image present",
        True,
        False,
    )
    lines = facts.stdout_lines("rules", cmd("iptables", "-S"))
    assert lines.name == "rules"
    assert lines.parse(Output(0, " -P INPUT ACCEPT \n\n-A X\n")) == ("-P INPUT ACCEPT", "-A X")
    match = facts.matches_if_ok("selinux", cmd("getenforce"), r"^(Permissive|Disabled)$")
    assert match.name == "selinux"
    assert match.parse(Output(0, "x\nDisabled\n")) is True
    assert match.parse(Output(1, "Disabled\n")) is False
    assert match.parse(Output(0, "Enforcing\n")) is False
