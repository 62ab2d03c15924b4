"""CentOS 7 (the guide's OS): the `centos/7` 2004.01 box (CentOS 7.8) updated from the 7.9
vault, the guide's Docker 19.03, kubeadm 1.18.1 and flannel. Its column of the compatibility
table (lab/hosts/compat.py) and what the dry run starts from. None of these facts could be run
from the development machines (no KVM, no internet): they come from the box and the packages'
metadata (docs/guide-host.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from lab.hosts.compat import (
    BY_CNI_DRIVER,
    BY_DIAGNOSTICS,
    BY_ECHO_SERVER,
    BY_PROVISIONING,
    SELINUX_UTILS,
    cni_plugins,
    tools_table,
)
from lab.hosts.os.base import BoxState, OsProfile, register
from lab.model.config import check_key_url, check_url
from lab.model.problems import Problem

if TYPE_CHECKING:
    from lab.model.config import Lab

COMPONENTS = {
    "systemd": "219",
    "iproute2": "4.11.0",
    "util-linux": "2.23.2",
    "coreutils": "8.22",
    "procps": "3.3.10",
    "kmod": "20",
    "bash": "4.2.46",
    "grep": "2.20",
    "findutils": "4.5.11",
    "hostname": "3.13",
    "iputils": "20160308",
    "iptables": "1.4.21",
    "libselinux": "2.5",
    "rpm": "4.11.3",
    "yum": "3.4.3",
    "curl": "7.29.0",
    "sudo": "1.8.23",
    "socat": "1.7.3.2",
    "python": "2.7.5",
    "ethtool": "4.8",
    "docker": "19.03.15",
    "kubernetes": "1.18.1",
    "kubernetes-cni": "0.8.7",
}

TOOLS = tools_table(
    [
        # name, component, package, path, source, used by
        ("systemctl", "systemd", "systemd", "/usr/bin/systemctl", "box", "everyone"),
        ("systemd-run", "systemd", "systemd", "/usr/bin/systemd-run", "box", BY_CNI_DRIVER),
        ("journalctl", "systemd", "systemd", "/usr/bin/journalctl", "box", BY_DIAGNOSTICS),
        ("hostnamectl", "systemd", "systemd", "/usr/bin/hostnamectl", "box", BY_PROVISIONING),
        ("udevadm", "systemd", "systemd", "/usr/sbin/udevadm", "box", BY_PROVISIONING),
        ("ip", "iproute2", "iproute", "/usr/sbin/ip", "box", f"{BY_CNI_DRIVER}, {BY_DIAGNOSTICS}"),
        ("bridge", "iproute2", "iproute", "/usr/sbin/bridge", "box", BY_DIAGNOSTICS),
        ("nsenter", "util-linux", "util-linux", "/usr/bin/nsenter", "box", BY_CNI_DRIVER),
        ("swapoff", "util-linux", "util-linux", "/usr/sbin/swapoff", "box", BY_PROVISIONING),
        ("cat", "coreutils", "coreutils", "/usr/bin/cat", "box", "everyone"),
        ("ls", "coreutils", "coreutils", "/usr/bin/ls", "box", BY_CNI_DRIVER),
        ("rm", "coreutils", "coreutils", "/usr/bin/rm", "box", BY_CNI_DRIVER),
        ("install", "coreutils", "coreutils", "/usr/bin/install", "box", "everyone"),
        ("test", "coreutils", "coreutils", "/usr/bin/test", "box", "everyone"),
        ("true", "coreutils", "coreutils", "/usr/bin/true", "box", "e2e checks"),
        ("touch", "coreutils", "coreutils", "/usr/bin/touch", "box", "the disruption ledger"),
        ("timeout", "coreutils", "coreutils", "/usr/bin/timeout", "box", BY_CNI_DRIVER),
        ("env", "coreutils", "coreutils", "/usr/bin/env", "box", BY_CNI_DRIVER),
        ("readlink", "coreutils", "coreutils", "/usr/bin/readlink", "box", "e2e checks"),
        ("sha256sum", "coreutils", "coreutils", "/usr/bin/sha256sum", "box", BY_PROVISIONING),
        ("stat", "coreutils", "coreutils", "/usr/bin/stat", "box", BY_PROVISIONING),
        ("sh", "bash", "bash", "/usr/bin/sh", "box", "everyone"),
        ("sysctl", "procps", "procps-ng", "/usr/sbin/sysctl", "box", BY_PROVISIONING),
        ("modprobe", "kmod", "kmod", "/usr/sbin/modprobe", "box", BY_PROVISIONING),
        ("grep", "grep", "grep", "/usr/bin/grep", "box", BY_PROVISIONING),
        ("find", "findutils", "findutils", "/usr/bin/find", "box", BY_DIAGNOSTICS),
        ("hostname", "hostname", "hostname", "/usr/bin/hostname", "box", BY_PROVISIONING),
        ("ping", "iputils", "iputils", "/usr/bin/ping", "box", "e2e checks (MTU)"),
        ("iptables-save", "iptables", "iptables", "/usr/sbin/iptables-save", "box", BY_DIAGNOSTICS),
        # the tunnel proof's counting rules (lab/podnet/proof.py: -m string, -m comment, -w)
        ("iptables", "iptables", "iptables", "/usr/sbin/iptables", "box", "e2e checks (tunnel)"),
        ("getenforce", "libselinux", SELINUX_UTILS, "/usr/sbin/getenforce", "box", BY_PROVISIONING),
        ("setenforce", "libselinux", SELINUX_UTILS, "/usr/sbin/setenforce", "box", BY_PROVISIONING),
        ("rpm", "rpm", "rpm", "/usr/bin/rpm", "box", BY_PROVISIONING),
        ("yum", "yum", "yum", "/usr/bin/yum", "box", BY_PROVISIONING),
        ("curl", "curl", "curl", "/usr/bin/curl", "box", "Kubernetes checks (from nodes)"),
        # kubelet's rpm requires socat and ethtool (installed with it if the box lacks them)
        ("socat", "socat", "socat", "/usr/bin/socat", "provisioning", BY_ECHO_SERVER),
        # the node agent's interpreter, and the echo server's UDP half (lab/runtime/echo.py)
        ("python", "python", "python", "/usr/bin/python", "box", BY_ECHO_SERVER),
        ("ethtool", "ethtool", "ethtool", "/usr/sbin/ethtool", "provisioning", BY_PROVISIONING),
        ("docker", "docker", "docker-ce-cli", "/usr/bin/docker", "provisioning", BY_PROVISIONING),
        ("kubeadm", "kubernetes", "kubeadm", "/usr/bin/kubeadm", "provisioning", BY_PROVISIONING),
        ("kubectl", "kubernetes", "kubectl", "/usr/bin/kubectl", "provisioning", "everyone"),
        *cni_plugins("/opt/cni/bin", "kubernetes-cni", "kubernetes-cni", "provisioning"),
    ],
)


# /etc/fstab of the `centos/7` 2004.01 box as it boots: one xfs partition and the 2 GiB
# /swapfile its kickstart adds (CentOS/sig-cloud-instance-build vagrant/centos7.ks, "Use a
# single partition for the Vagrant images"; no LVM), active from boot
CENTOS7_BOX_FSTAB = (
    "\n#\n# /etc/fstab\n# Created by anaconda on Thu Apr 30 22:04:55 2020\n#\n"
    "# Accessible filesystems, by reference, are maintained under '/dev/disk'\n"
    "# See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info\n#\n"
    "UUID=1c419d6c-5064-4a2b-953c-05b2c67edb15 /                       xfs     "
    "defaults        0 0\n"
    "/swapfile none swap defaults 0 0\n"
)


def validate(lab: Lab) -> Iterator[Problem]:
    yield from check_url("os.vault_url", lab.os.vault_url)
    yield from check_key_url("os.gpgkey_url", lab.os.gpgkey_url, required=False)


EL7 = register(
    OsProfile(
        family="el7",
        description="CentOS 7 (the guide's): Docker, kubeadm 1.18.1, flannel",
        python="python",  # CentOS 7's /usr/bin/python is 2.7; the node agent runs on it
        cni_bin_dir="/opt/cni/bin",  # kubernetes-cni's
        components=COMPONENTS,
        tools=TOOLS,
        user_path=("/usr/local/bin", "/usr/bin"),
        sudo_path=("/sbin", "/bin", "/usr/sbin", "/usr/bin"),
        box=BoxState(fstab=CENTOS7_BOX_FSTAB, swaps=("/swapfile",)),
        provisioning="provision.el7",
        kubernetes=True,
        validate=validate,
    )
)
