"""kubectl as the harness runs it: as root on the control plane with kubeadm's admin.conf.
Provisioning, the Kubernetes driver, faults and diagnostics build their argv from here."""

from __future__ import annotations

from lab.k8s.model import SYSTEM_NAMESPACE

ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBECTL = ("kubectl", "--kubeconfig", ADMIN_CONF)


def system_configmap(name: str, output: str = "json") -> tuple[str, ...]:
    """kubectl arguments that print the kube-system ConfigMap `name` (`-o output`)."""
    return ("-n", SYSTEM_NAMESPACE, "get", "configmap", name, "-o", output)
