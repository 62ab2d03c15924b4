"""systemd-networkd as provisioning reads it (provision.networkd): which .network file names
the private NIC, the NIC's MTU probe, the files probe, and a fresh node's Vagrant file."""

from __future__ import annotations

from pathlib import Path

from lab.common.commands import Command, Output
from lab.model.labfile import load_lab
from provision import networkd

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
ROUTED = load_lab(ROOT / "labs" / "ci-debian12-routed-vxlan.yaml")


def test_name_lists_every_word_after_the_first_equals_sign() -> None:
    # Name= is a whitespace-separated list; the kernel allows "=" inside an interface name
    first = {"/etc/systemd/network/10-a.network": "[Match]\nName=veth=1 eth1\n"}
    assert networkd.network_file_for(first, "eth1") == "/etc/systemd/network/10-a.network"
    last = {"/etc/systemd/network/10-a.network": "[Match]\nName=eth1 veth=1\n"}
    assert networkd.network_file_for(last, "eth1") == "/etc/systemd/network/10-a.network"
    assert networkd.network_file_for(last, "veth=1") == "/etc/systemd/network/10-a.network"
    assert networkd.network_file_for(last, "veth") is None


def test_the_nic_mtu_is_read_without_sudo_and_only_from_a_number_printed_by_a_success() -> None:
    fact = networkd.nic_mtu(CI)
    assert fact.command == Command(("cat", "/sys/class/net/eth1/mtu"), sudo=False)
    assert fact.parse(Output(0, "1500\n")) == 1500
    assert fact.parse(Output(1, "1500\n")) is None
    assert fact.parse(Output(0, "\n")) is None
    assert fact.parse(Output(1, "cat: /sys/class/net/eth1/mtu: No such file or directory\n")) is (
        None
    )


def test_the_network_files_are_read_in_one_grep_of_every_line() -> None:
    fact = networkd.network_files_fact()
    assert fact.command == Command(("grep", "-rH", "", "/etc/systemd/network"))
    recorded = (
        "/etc/systemd/network/50-vagrant-eth1.network:[Match]\n"
        "/etc/systemd/network/50-vagrant-eth1.network:Name=eth1\n"
    )
    assert fact.parse(Output(0, recorded)) == {
        "/etc/systemd/network/50-vagrant-eth1.network": "[Match]\nName=eth1\n"
    }


def test_a_fresh_node_has_vagrants_file_with_its_segments_prefix_on_a_routed_underlay() -> None:
    node = ROUTED.node("node2")
    assert networkd.fresh_network_files(ROUTED, node) == {
        "/etc/systemd/network/50-vagrant-eth1.network": (
            "[Match]\nName=eth1\n\n[Network]\nAddress=10.10.51.242/24\n"
        )
    }
