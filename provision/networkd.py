"""systemd-networkd on the Debian nodes (pure): the .network files Vagrant and the backends
write, which one configures a NIC, and the private NIC's MTU. Vagrant configures the private
NIC through systemd-networkd (50-vagrant-eth1.network); the pod-network backends put their
routes and devices beside it, so networkd re-applies them whenever it configures the link."""

from __future__ import annotations

from lab.common.commands import cmd
from lab.hosts import facts as f
from lab.model.config import Lab, Node

NETWORK_DIR = "/etc/systemd/network"
WAIT_ONLINE = "/lib/systemd/systemd-networkd-wait-online"


def parse_network_files(grep_output: str) -> dict[str, str]:
    """`grep -rH '' /etc/systemd/network` -> path -> content."""
    files: dict[str, list[str]] = {}
    for line in grep_output.splitlines():
        path, sep, text = line.partition(":")
        if sep:
            files.setdefault(path, []).append(text)
    return {path: "\n".join(lines) + "\n" for path, lines in files.items()}


def network_file_for(files: dict[str, str], nic: str) -> str | None:
    """The .network file networkd uses for `nic`: the first, in lexical order, that matches."""
    for path in sorted(p for p in files if p.endswith(".network")):
        names = [
            word
            for line in files[path].splitlines()
            if line.strip().startswith("Name=")
            for word in line.split("=", 1)[1].split()
        ]
        if nic in names:
            return path
    return None


def nic_mtu(lab: Lab) -> f.Fact[int | None]:
    """The private NIC's MTU (the VXLAN pod MTU follows it); CNI and VXLAN share the probe."""
    return f.Fact(
        "private NIC MTU",
        cmd("cat", f"/sys/class/net/{lab.vm.private_nic}/mtu", sudo=False),
        lambda out: int(out.stdout.strip()) if out.ok and out.stdout.strip().isdigit() else None,
    )


def network_files_fact() -> f.Fact[dict[str, str]]:
    return f.Fact(
        "systemd-networkd files",
        cmd("grep", "-rH", "", NETWORK_DIR),
        lambda out: parse_network_files(out.stdout),
    )


def fresh_network_files(lab: Lab, node: Node) -> dict[str, str]:
    """A node fresh from the box: Vagrant's .network for the private NIC, nothing else."""
    nic = lab.vm.private_nic
    return {
        f"{NETWORK_DIR}/50-vagrant-{nic}.network": (
            f"[Match]\nName={nic}\n\n[Network]\nAddress={node.ip}/"
            f"{lab.network.private.prefixlen}\n"
        )
    }
