"""kubectl as the harness runs it: as root on the control plane with kubeadm's admin.conf.
Provisioning, the Kubernetes driver, faults and diagnostics build their argv from here."""

from __future__ import annotations

from collections.abc import Sequence

from lab.k8s.model import FLANNEL_CONFIGMAP, SYSTEM_NAMESPACE

ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBECTL = ("kubectl", "--kubeconfig", ADMIN_CONF)


def system_configmap(name: str, output: str = "json") -> tuple[str, ...]:
    """kubectl arguments that print the kube-system ConfigMap `name` (`-o output`)."""
    return ("-n", SYSTEM_NAMESPACE, "get", "configmap", name, "-o", output)


def configmap_anywhere(name: str, output: str = "json") -> tuple[str, ...]:
    """kubectl arguments that print every ConfigMap called `name`, in any namespace (a list)."""
    return (
        "get", "configmap", "--all-namespaces", "--field-selector", f"metadata.name={name}",
        "-o", output,
    )  # fmt: skip


def flannel_configmap(output: str = "json") -> tuple[str, ...]:
    """kubectl arguments for flannel's ConfigMap wherever its manifest put it (kube-flannel
    since flannel v0.20, kube-system before); `parse_flannel_netconf` picks it from the list.
    For a jsonpath, the list's items: `jsonpath={.items[*].data.net-conf\\.json}`."""
    return configmap_anywhere(FLANNEL_CONFIGMAP, output)


def label_pods_args(namespace: str, names: Sequence[str], key: str, value: str) -> tuple[str, ...]:
    """kubectl arguments that set `key=value` on the pods `names` (what they had overwritten)."""
    if not names:
        raise ValueError("label_pods_args: no pod named")
    return ("label", "pods", "-n", namespace, "--overwrite", *names, f"{key}={value}")


def delete_labelled_args(kind: str, namespace: str, selector: str) -> tuple[str, ...]:
    """kubectl arguments that delete every `kind` of `namespace` matching `selector`, waiting
    (bounded) until they are gone."""
    return (
        "delete", kind, "-n", namespace, "-l", selector, "--ignore-not-found", "--timeout=60s",
    )  # fmt: skip
