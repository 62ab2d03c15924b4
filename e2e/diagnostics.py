"""A node's network state, written for a person debugging a failure (redacted)."""

from __future__ import annotations

import shlex
from pathlib import Path

from lab.common.commands import cmd
from lab.common.redact import redact
from lab.hosts.machines import LabMachines
from lab.k8s import KUBECTL
from lab.model.config import Lab

NODE_STATE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("addresses", ("ip", "addr", "show")),
    ("routes", ("ip", "route", "show", "table", "all")),
    ("iptables-save", ("iptables-save",)),
    ("bridge-fdb", ("bridge", "fdb", "show")),
    ("netns", ("ip", "netns", "list")),
    ("cni-config", ("sh", "-c", 'for f in /etc/cni/net.d/*; do echo "== $f"; cat "$f"; done')),
    (
        "ipam-state",
        ("sh", "-c", "find /var/lib/cni -type f -print -exec cat {} \\; -exec echo \\;"),
    ),
    ("pod units", ("systemctl", "list-units", "--all", "--no-pager", "nl-*")),
    ("flannel subnet", ("cat", "/run/flannel/subnet.env")),
    ("kubelet journal", ("journalctl", "-u", "kubelet", "--no-pager", "-n", "300")),
    ("docker journal", ("journalctl", "-u", "docker", "--no-pager", "-n", "300")),
)


# the runtime's view on a lab with `runtime: containerd`: what the CRI made (sandboxes are
# containers too, labelled io.cri-containerd.kind=sandbox), their tasks and states, its log
RUNTIME_STATE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cri containers", ("ctr", "-n", "k8s.io", "containers", "list")),
    ("cri tasks", ("ctr", "-n", "k8s.io", "tasks", "list")),
    ("cri images", ("ctr", "-n", "k8s.io", "images", "list", "--quiet")),
    ("cri sandbox netns", ("sh", "-c", "ls -l /var/run/netns/")),
    ("containerd journal", ("journalctl", "-u", "containerd", "--no-pager", "-n", "200")),
)


def node_state_commands(lab: Lab) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return NODE_STATE + (RUNTIME_STATE if lab.runtime == "containerd" else ())


def write_node_state(machines: LabMachines, out: Path, prefix: str = "node-state-") -> list[Path]:
    """One file per node (a dead node still gets one), plus a cluster dump on Kubernetes."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, node in machines.channels().items():
        parts = []
        for title, argv in node_state_commands(machines.lab):
            try:
                res = node.run(cmd(*argv), timeout=60, check=False)
                parts.append(f"===== {title}: {shlex.join(argv)}\n{res.stdout}{res.stderr}")
            except Exception as exc:  # noqa: BLE001 (the node may be the problem)
                parts.append(f"===== {title}: {exc}")
        path = out / f"{prefix}{name}.txt"
        path.write_text(redact("\n".join(parts)))
        written.append(path)
    plane = machines.lab.control_plane
    if machines.lab.kubernetes is not None and plane is not None:
        argv = (*KUBECTL, "cluster-info", "dump", "--all-namespaces")
        try:
            dump = machines.channels()[plane.name].run(cmd(*argv), timeout=300, check=False)
            text = dump.stdout + dump.stderr
        except Exception as exc:  # noqa: BLE001 (the control plane may be the broken node)
            text = f"{shlex.join(argv)}: {exc}"
        path = out / "cluster-info-dump.txt"
        path.write_text(redact(text))
        written.append(path)
    return written
