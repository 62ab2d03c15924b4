"""Debian 12 (bookworm) as `make box` builds it offline: systemd-networkd, Debian's CNI
plugins, containerd 1.6 and crun; no Kubernetes packages (the CI labs' pods are the suite's
own, wired through the CNI or made by containerd's CRI). Its column of the compatibility table
(lab/hosts/compat.py) and what the dry run starts from."""

from __future__ import annotations

from lab.hosts.compat import (
    BY_CNI_DRIVER,
    BY_DIAGNOSTICS,
    BY_ECHO_SERVER,
    BY_NETWORKD_USERS,
    BY_PROVISIONING,
    BY_RUNTIME_STEP,
    CNI_PLUGINS_PACKAGE,
    cni_plugins,
    tools_table,
)
from lab.hosts.os.base import BoxState, OsProfile, register

COMPONENTS = {
    "systemd": "252",
    "iproute2": "6.1.0",
    "util-linux": "2.38.1",
    "coreutils": "9.1",
    "procps": "4.0.2",
    "kmod": "30",
    "bash": "5.2.15",
    "grep": "3.8",
    "findutils": "4.9.0",
    "hostname": "3.23",
    "iputils": "20221126",
    "iptables": "1.8.9",
    "apt": "2.6.1",
    "sudo": "1.9.13",
    "socat": "1.7.4.4",
    "ethtool": "6.1",
    "containernetworking-plugins": "1.1.1",
    "containerd": "1.6.20",
    "bird2": "2.0.12",
}

TOOLS = tools_table(
    [
        ("systemctl", "systemd", "systemd", "/usr/bin/systemctl", "box", "everyone"),
        ("systemd-run", "systemd", "systemd", "/usr/bin/systemd-run", "box", BY_CNI_DRIVER),
        ("journalctl", "systemd", "systemd", "/usr/bin/journalctl", "box", BY_DIAGNOSTICS),
        ("hostnamectl", "systemd", "systemd", "/usr/bin/hostnamectl", "box", BY_PROVISIONING),
        ("networkctl", "systemd", "systemd", "/usr/bin/networkctl", "box", BY_NETWORKD_USERS),
        ("udevadm", "systemd", "udev", "/usr/bin/udevadm", "box", BY_PROVISIONING),
        ("ip", "iproute2", "iproute2", "/usr/bin/ip", "box", f"{BY_CNI_DRIVER}, {BY_DIAGNOSTICS}"),
        ("bridge", "iproute2", "iproute2", "/usr/sbin/bridge", "box", BY_DIAGNOSTICS),
        ("nsenter", "util-linux", "util-linux", "/usr/bin/nsenter", "box", BY_CNI_DRIVER),
        ("swapoff", "util-linux", "mount", "/usr/sbin/swapoff", "box", BY_PROVISIONING),
        ("findmnt", "util-linux", "util-linux", "/usr/bin/findmnt", "box", BY_PROVISIONING),
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
        ("sh", "bash", "dash", "/usr/bin/sh", "box", "everyone"),
        # runtime: containerd (provision/containerd.py, the CRI flow checks)
        ("ctr", "containerd", "containerd", "/usr/bin/ctr", "box", BY_RUNTIME_STEP),
        ("id", "coreutils", "coreutils", "/usr/bin/id", "box", BY_RUNTIME_STEP),
        ("stat", "coreutils", "coreutils", "/usr/bin/stat", "box", BY_RUNTIME_STEP),
        ("sleep", "coreutils", "coreutils", "/usr/bin/sleep", "box", BY_RUNTIME_STEP),
        ("sysctl", "procps", "procps", "/usr/sbin/sysctl", "box", BY_PROVISIONING),
        ("modprobe", "kmod", "kmod", "/usr/sbin/modprobe", "box", BY_PROVISIONING),
        ("grep", "grep", "grep", "/usr/bin/grep", "box", BY_PROVISIONING),
        ("find", "findutils", "findutils", "/usr/bin/find", "box", BY_DIAGNOSTICS),
        ("hostname", "hostname", "hostname", "/usr/bin/hostname", "box", BY_PROVISIONING),
        ("ping", "iputils", "iputils-ping", "/usr/bin/ping", "box", "e2e checks (MTU)"),
        ("iptables-save", "iptables", "iptables", "/usr/sbin/iptables-save", "box", BY_DIAGNOSTICS),
        # the tunnel proof's counting rules (lab/podnet/proof.py: -m string, -m comment, -w)
        ("iptables", "iptables", "iptables", "/usr/sbin/iptables", "box", "e2e checks (tunnel)"),
        ("apt-get", "apt", "apt", "/usr/bin/apt-get", "box", BY_PROVISIONING),
        ("socat", "socat", "socat", "/usr/bin/socat", "box", BY_ECHO_SERVER),
        ("ethtool", "ethtool", "ethtool", "/usr/sbin/ethtool", "box", "e2e checks"),
        ("birdc", "bird2", "bird2", "/usr/sbin/birdc", "box", "the BGP backend, e2e checks"),
        ("tc", "iproute2", "iproute2", "/usr/sbin/tc", "box", "underlay faults (netem)"),
        # on the box; provisioning's CNI step installs the package when they are missing
        *cni_plugins("/usr/lib/cni", CNI_PLUGINS_PACKAGE, CNI_PLUGINS_PACKAGE, "provisioning"),
    ],
)

# the box puts the sbin directories on every user's PATH (/etc/environment, box/build.sh)
PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

DEBIAN12 = register(
    OsProfile(
        family="debian12",
        description="Debian 12 from the offline box: CNI plugins, containerd, no Kubernetes",
        python="python3",
        cni_bin_dir="/usr/lib/cni",  # containernetworking-plugins'
        components=COMPONENTS,
        tools=TOOLS,
        user_path=PATH,
        sudo_path=PATH,
        box=BoxState(
            fstab="LABEL=root / ext4 errors=remount-ro 0 1\n/swapfile none swap sw 0 0\n",
            swaps=("/swapfile",),
        ),
        provisioning="provision.debian12",
        runtimes=("containerd",),
        routed_underlay=True,
    )
)
