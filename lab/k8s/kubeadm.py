"""What kubeadm and kubelet are given (pure): `kubeadm init` as the guide runs it, and the
kubelet's node IP."""

from __future__ import annotations

from lab.model.config import Lab, Node


def render_kubeadm_init_args(lab: Lab) -> tuple[str, ...]:
    """`kubeadm init` exactly as the guide runs it, plus `--node-name` (the DNS-1123 hostname)."""
    k8s, plane = lab.kubernetes, lab.control_plane
    if k8s is None or plane is None:
        raise ValueError(f"lab {lab.name!r} has no Kubernetes control plane")
    args: tuple[str, ...] = (
        "kubeadm",
        "init",
        f"--kubernetes-version={k8s.version}",
        f"--apiserver-advertise-address={plane.ip}",
        "--image-repository",
        k8s.image_repository,
        f"--service-cidr={k8s.service_cidr}",
        f"--pod-network-cidr={k8s.pod_network_cidr}",
        f"--node-name={plane.name}",
    )
    if k8s.ignore_preflight_resources:
        args += ("--ignore-preflight-errors=NumCPU,Mem",)
    return args


def render_kubelet_sysconfig(node: Node) -> str:
    """/etc/sysconfig/kubelet: make kubelet report the private IP, not the management one."""
    return f"KUBELET_EXTRA_ARGS=--node-ip={node.ip}\n"
