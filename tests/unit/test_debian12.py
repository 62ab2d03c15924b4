"""The Debian 12 provisioning steps (provision/debian12.py): what the CNI step reads, and how."""

from __future__ import annotations

from pathlib import Path

from lab.common.commands import Command, Output, render_remote
from lab.model.labfile import load_lab
from provision import debian12

LAB = load_lab(Path(__file__).resolve().parents[2] / "labs" / "ci-debian12.yaml")
NODE = LAB.node("node1")


def test_the_cni_step_reads_each_fact_with_its_command() -> None:
    facts = debian12.cni_facts(LAB, NODE)
    assert {k: (f.name, render_remote(f.command)) for k, f in facts.items()} == {
        "conflist": (
            "file /etc/cni/net.d/10-netlab.conflist",
            "sudo -n cat /etc/cni/net.d/10-netlab.conflist",
        ),
        "plugins": ("CNI plugins", "ls -1 /usr/lib/cni"),
        "netdev": (
            "file /etc/systemd/network/05-netlab-cni0.netdev",
            "sudo -n cat /etc/systemd/network/05-netlab-cni0.netdev",
        ),
        "bridge_mac": ("bridge MAC", "cat /sys/class/net/cni0/address"),
        "veth_link": (
            "file /etc/systemd/network/10-netlab-veth.link",
            "sudo -n cat /etc/systemd/network/10-netlab-veth.link",
        ),
        "nic_mtu": ("private NIC MTU", "cat /sys/class/net/eth1/mtu"),
    }


def test_the_plugins_are_the_listing_sorted_or_none_when_it_failed() -> None:
    plugins = debian12.cni_facts(LAB, NODE)["plugins"]
    assert plugins.parse(Output(0, "portmap\nbridge\nhost-local\n")) == (
        "bridge",
        "host-local",
        "portmap",
    )
    assert plugins.parse(Output(2, "bridge\n")) == ()


def test_no_step_of_the_debian_path_asks_for_an_input() -> None:
    assert debian12.inputs(LAB, {}) == {}


def test_the_unprivileged_reads_are_exactly_these_commands_without_sudo() -> None:
    facts = debian12.cni_facts(LAB, NODE)
    assert facts["plugins"].command == Command(("ls", "-1", "/usr/lib/cni"), sudo=False)
    assert facts["bridge_mac"].command == Command(
        ("cat", "/sys/class/net/cni0/address"), sudo=False
    )


def test_the_plugins_are_installed_from_the_mirror_unless_each_one_needed_is_there() -> None:
    install = Command(
        ("apt-get", "install", "-y", "--no-install-recommends", "containernetworking-plugins"),
        mirror=True,  # a download: the applier may retry it
    )
    assert debian12.plan_cni(LAB, NODE, debian12.CniFacts(None, ()))[0] == install
    missing_portmap = debian12.CniFacts(None, ("bridge", "host-local"), nic_mtu=1500)
    assert debian12.plan_cni(LAB, NODE, missing_portmap)[0] == install
    # exactly the conflist's plugins and its IPAM: nothing to install
    exactly = debian12.CniFacts(None, ("bridge", "host-local", "portmap"), nic_mtu=1500)
    assert [c.argv[0] for c in debian12.plan_cni(LAB, NODE, exactly)] == [
        "install",
        "install",
        "networkctl",
        "install",
        "udevadm",
    ]


def test_a_lab_without_a_container_runtime_has_no_containerd_step() -> None:
    from provision.steps import steps_for

    three = load_lab(Path(__file__).resolve().parents[2] / "labs" / "ci-debian12-3node.yaml")
    assert three.runtime == "none"
    assert [s.key for s in steps_for(three)] == [
        *("tools-on-box", "bridge-nf", "ip-forward", "swap", "hostname"),
        *("cni-config", "pod-routes", "tools-needed"),
    ]
