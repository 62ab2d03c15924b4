"""Everything `python -m lab render` writes under .lab/<lab>/ (pure): the Vagrant JSON, the
kubeadm flags and kubelet settings of a Kubernetes lab, and the pod-network backend's files."""

from __future__ import annotations

import json

from lab.hosts.hypervisor import HypervisorChoice
from lab.hosts.vagrantfile import render_vagrant
from lab.k8s.kubeadm import render_kubeadm_init_args, render_kubelet_sysconfig
from lab.model.config import Lab
from lab.podnet import backend_of


def render_lab_files(
    lab: Lab, hv: HypervisorChoice, flannel_upstream: str | None
) -> dict[str, str]:
    """File name (relative to the lab's state dir) -> content."""
    files = {"vagrant.json": json.dumps(render_vagrant(lab, hv), indent=2) + "\n"}
    if lab.kubernetes is not None:
        files["kubeadm-init.args"] = "\n".join(render_kubeadm_init_args(lab)) + "\n"
        for node in lab.nodes:
            files[f"kubelet-{node.name}.sysconfig"] = render_kubelet_sysconfig(node)
    files.update(backend_of(lab).render_files(lab, flannel_upstream))
    return files
