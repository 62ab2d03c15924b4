"""What reading the CentOS 7 path end to end finds would fail on a real KVM host with internet
(issue 12), one test per fix, each failing on the code before it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lab.config import validate_lab
from lab.labfile import load_lab
from provision import el7

ROOT = Path(__file__).resolve().parents[2]
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
WORKER = GUIDE.node("k8s-node1")
K8S = GUIDE.kubernetes
assert K8S is not None


def plan_text(step: el7.AnyStep, facts: object) -> list[str]:
    return [" ".join(c.argv) for c in step.plan(GUIDE, WORKER, facts)]


# --- 1. kubernetes-cni pinned to a release that still ships the flannel plugin -------------


def test_kubernetes_cni_is_pinned_to_a_release_that_ships_flannel() -> None:
    fresh = plan_text(el7.K8S_PACKAGES, el7.PackagesFacts(None, (), False))
    assert (
        "yum install -y kubelet-1.18.1-0 kubeadm-1.18.1-0 kubectl-1.18.1-0 kubernetes-cni-0.8.7-0"
        in fresh
    )
    # yum already gave kubelet's dependency as the newest kubernetes-cni (no flannel binary)
    cni_1x = ("kubelet 1.18.1", "kubeadm 1.18.1", "kubectl 1.18.1", "kubernetes-cni 1.2.0")
    assert plan_text(el7.K8S_PACKAGES, el7.PackagesFacts(None, cni_1x, True))[1:] == [
        "yum remove -y kubelet kubeadm kubectl kubernetes-cni",
        "yum install -y kubelet-1.18.1-0 kubeadm-1.18.1-0 kubectl-1.18.1-0 kubernetes-cni-0.8.7-0",
    ]
    assert "kubernetes-cni" in el7.RPMS, "the installed version is probed"


def test_a_kubernetes_cni_without_flannel_is_rejected_before_any_vm() -> None:
    lab = dataclasses.replace(
        GUIDE, kubernetes=dataclasses.replace(K8S, cni_package_version="1.2.0-0")
    )
    (problem,) = [p for p in validate_lab(lab) if p.field == "kubernetes.cni_package_version"]
    assert "ships no flannel CNI plugin" in str(problem)
    assert "0.8.7-0" in str(problem)
