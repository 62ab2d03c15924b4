"""Kubernetes as the network checks see it (pure), split by concern:

- `model`: the objects (nodes, pods, services, endpoints, namespaces, flannel/kubeadm config);
- `decode`: strict access to decoded `kubectl -o json` output;
- `parse`: `kubectl -o json` (and busybox nslookup) -> model objects, `ValueError` on bad input;
- `checks`: cluster state vs the lab -> problems (`lab.model.problems.Problem`; never raises);
- `manifests`: the e2e suite's namespaces, pods and services for `kubectl apply -f -`;
- `kubectl`: the kubectl argv every caller shares.

The names below are the package's API; import them from `lab.k8s`.
"""

from lab.k8s.checks import (
    validate_network_config,
    validate_node_addresses,
    validate_nodes_ready,
    validate_pod_cidrs,
    validate_pod_ips,
    validate_service_endpoints,
    validate_system_pods,
)
from lab.k8s.kubectl import (
    ADMIN_CONF,
    KUBECTL,
    configmap_anywhere,
    delete_labelled_args,
    flannel_configmap,
    label_pods_args,
    system_configmap,
)
from lab.k8s.manifests import (
    ContainerSpec,
    PortSpec,
    namespace_for,
    render_manifest,
    render_namespace,
    render_placed_service,
    render_pod,
    render_service,
    run_labels,
)
from lab.k8s.model import (
    E2E_LABEL,
    FLANNEL_CONFIGMAP,
    FLANNEL_NAMESPACES,
    FLANNEL_PUBLIC_IP,
    FLANNEL_PUBLIC_IPV6,
    KUBEADM_CONFIGMAP,
    RUN_LABEL,
    SYSTEM_NAMESPACE,
    ClusterNode,
    ClusterPod,
    ContainerState,
    ContainerStatus,
    EndpointAddress,
    Endpoints,
    FlannelNetConf,
    KubeadmNetworking,
    NamespaceInfo,
    RestartPolicy,
    Service,
    ServicePort,
    ServiceType,
)
from lab.k8s.parse import (
    parse_busybox_nslookup,
    parse_endpoints,
    parse_flannel_netconf,
    parse_kubeadm_networking,
    parse_namespaces,
    parse_nodes,
    parse_pods,
    parse_services,
)
from lab.model.problems import Problem

__all__ = [
    "ADMIN_CONF",
    "E2E_LABEL",
    "FLANNEL_CONFIGMAP",
    "FLANNEL_NAMESPACES",
    "FLANNEL_PUBLIC_IP",
    "FLANNEL_PUBLIC_IPV6",
    "KUBEADM_CONFIGMAP",
    "KUBECTL",
    "RUN_LABEL",
    "SYSTEM_NAMESPACE",
    "ClusterNode",
    "ClusterPod",
    "ContainerSpec",
    "ContainerState",
    "ContainerStatus",
    "EndpointAddress",
    "Endpoints",
    "FlannelNetConf",
    "KubeadmNetworking",
    "NamespaceInfo",
    "PortSpec",
    "Problem",
    "RestartPolicy",
    "Service",
    "ServicePort",
    "ServiceType",
    "configmap_anywhere",
    "delete_labelled_args",
    "flannel_configmap",
    "label_pods_args",
    "namespace_for",
    "parse_busybox_nslookup",
    "parse_endpoints",
    "parse_flannel_netconf",
    "parse_kubeadm_networking",
    "parse_namespaces",
    "parse_nodes",
    "parse_pods",
    "parse_services",
    "render_manifest",
    "render_namespace",
    "render_placed_service",
    "render_pod",
    "render_service",
    "run_labels",
    "system_configmap",
    "validate_network_config",
    "validate_node_addresses",
    "validate_nodes_ready",
    "validate_pod_cidrs",
    "validate_pod_ips",
    "validate_service_endpoints",
    "validate_system_pods",
]
