"""Parsers of `kubectl -o json` output (pure).

Parsers keep only the fields the checks use and raise `ValueError` naming the object and the
field on malformed input; absent optional fields (a node without a podCIDR yet, a Pending pod
without an IP) are kept as `None`/empty so the checks can report them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import Any

import yaml

from lab.k8s.decode import (
    at,
    document,
    get_bool,
    get_int,
    get_labels,
    get_list,
    get_map,
    get_objects,
    get_str,
    ipv4,
    ipv4_network,
    items_of,
    name_of,
)
from lab.k8s.model import (
    FLANNEL_CONFIGMAP,
    FLANNEL_PUBLIC_IP,
    KUBEADM_CONFIGMAP,
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
    Service,
    ServicePort,
)


def parse_nodes(raw: str | Mapping[str, Any]) -> tuple[ClusterNode, ...]:
    """`kubectl get nodes -o json` (or one node)."""
    what = "kubectl get nodes"
    nodes = []
    for i, item in enumerate(items_of(raw, what, "Node")):
        name, _ = name_of(item, what, i, namespaced=False)
        owner = f"node {name}"
        ready, detail = False, "no Ready condition"
        for _field, cond in get_objects(item, "status.conditions", owner):
            if cond.get("type") == "Ready":
                status = get_str(cond, "status", f"{owner} Ready condition", required=True)
                ready = status == "True"
                parts = [status, get_str(cond, "reason", owner), get_str(cond, "message", owner)]
                detail = ": ".join(p for p in parts if p)
        internal = None
        for field, addr in get_objects(item, "status.addresses", owner):
            if addr.get("type") == "InternalIP":
                internal = ipv4(addr.get("address"), owner, f"{field}.address")
                break
        cidrs_raw = get_list(item, "spec.podCIDRs", owner)
        single = get_str(item, "spec.podCIDR", owner)
        if not cidrs_raw and single:
            cidrs_raw = [single]
        cidrs = tuple(
            ipv4_network(c, owner, f"spec.podCIDRs[{j}]") for j, c in enumerate(cidrs_raw)
        )
        if single and cidrs and ipv4_network(single, owner, "spec.podCIDR") != cidrs[0]:
            raise ValueError(
                f"{owner}: spec.podCIDR {single} differs from spec.podCIDRs[0] {cidrs[0]}"
            )
        annotations = get_map(item, "metadata.annotations", owner)
        public = annotations.get(FLANNEL_PUBLIC_IP)
        flannel_ip = (
            None
            if public is None
            else ipv4(public, owner, f"metadata.annotations[{FLANNEL_PUBLIC_IP}]")
        )
        nodes.append(ClusterNode(name, ready, detail, internal, cidrs, flannel_ip))
    return tuple(nodes)


def _container_status(raw: Mapping[str, Any], owner: str, where: str) -> ContainerStatus:
    name = get_str(raw, "name", f"{owner} {where}", required=True)
    who = f"{owner} container {name}"
    state_map = get_map(raw, "state", who)
    state: ContainerState = "unknown"
    reason = message = ""
    exit_code = None
    keys: tuple[ContainerState, ...] = ("running", "waiting", "terminated")
    for key in keys:
        if key in state_map and state_map[key] is not None:
            detail = get_map(state_map, key, who)
            state = key
            reason = get_str(detail, "reason", who)
            message = get_str(detail, "message", who)
            if key == "terminated":
                exit_code = get_int(detail, "exitCode", who)
            break
    return ContainerStatus(
        name=name,
        ready=get_bool(raw, "ready", who),
        restart_count=get_int(raw, "restartCount", who, default=0),
        state=state,
        reason=reason,
        message=message,
        exit_code=exit_code,
        container_id=get_str(raw, "containerID", who),
    )


def parse_pods(raw: str | Mapping[str, Any]) -> tuple[ClusterPod, ...]:
    """`kubectl get pods -A -o json`, `-n NS`, or one pod."""
    what = "kubectl get pods"
    pods = []
    for i, item in enumerate(items_of(raw, what, "Pod")):
        name, namespace = name_of(item, what, i, namespaced=True)
        owner = f"pod {namespace}/{name}"
        containers = [
            get_str(c, "name", owner, required=True)
            for _f, c in get_objects(item, "spec.containers", owner)
        ]
        if not containers:
            raise ValueError(f"{owner}: field spec.containers is missing or empty")
        pod_ip_raw = at(item, "status.podIP")
        pods.append(
            ClusterPod(
                name=name,
                namespace=namespace,
                phase=get_str(item, "status.phase", owner) or "Unknown",
                node_name=get_str(item, "spec.nodeName", owner) or None,
                pod_ip=None if not pod_ip_raw else ipv4(pod_ip_raw, owner, "status.podIP"),
                host_network=get_bool(item, "spec.hostNetwork", owner),
                containers=tuple(containers),
                statuses=tuple(
                    _container_status(s, owner, field)
                    for field, s in get_objects(item, "status.containerStatuses", owner)
                ),
                labels=get_labels(item, "metadata.labels", owner),
                reason=get_str(item, "status.reason", owner),
                message=get_str(item, "status.message", owner),
            )
        )
    return tuple(pods)


def parse_services(raw: str | Mapping[str, Any]) -> tuple[Service, ...]:
    """`kubectl get services -A -o json`, `-n NS`, or one service."""
    what = "kubectl get services"
    services = []
    for i, item in enumerate(items_of(raw, what, "Service")):
        name, namespace = name_of(item, what, i, namespaced=True)
        owner = f"service {namespace}/{name}"
        svc_type = get_str(item, "spec.type", owner) or "ClusterIP"
        cluster_ip_raw = get_str(item, "spec.clusterIP", owner)
        cluster_ip = (
            None
            if cluster_ip_raw in ("", "None")
            else ipv4(cluster_ip_raw, owner, "spec.clusterIP")
        )
        ports = []
        for field, p in get_objects(item, "spec.ports", owner):
            where = f"{owner} {field}"
            port = get_int(p, "port", where)
            target = p.get("targetPort", port)
            if not isinstance(target, int | str) or isinstance(target, bool):
                raise ValueError(f"{where}: field targetPort must be a number or a name")
            node_port = p.get("nodePort")
            if node_port is not None:
                node_port = get_int(p, "nodePort", where)
            ports.append(
                ServicePort(
                    name=get_str(p, "name", where),
                    protocol=get_str(p, "protocol", where) or "TCP",
                    port=port,
                    target_port=target,
                    node_port=node_port,
                )
            )
        if svc_type == "NodePort" and any(p.node_port is None for p in ports):
            raise ValueError(f"{owner}: type NodePort but a port has no nodePort")
        services.append(
            Service(
                name=name,
                namespace=namespace,
                type=svc_type,
                cluster_ip=cluster_ip,
                ports=tuple(ports),
                selector=get_labels(item, "spec.selector", owner),
            )
        )
    return tuple(services)


def parse_endpoints(raw: str | Mapping[str, Any]) -> tuple[Endpoints, ...]:
    """`kubectl get endpoints -A -o json`, `-n NS`, or one Endpoints object."""
    what = "kubectl get endpoints"
    out = []
    for i, item in enumerate(items_of(raw, what, "Endpoints")):
        name, namespace = name_of(item, what, i, namespaced=True)
        owner = f"endpoints {namespace}/{name}"
        addresses: list[EndpointAddress] = []
        for subset_field, subset in get_objects(item, "subsets", owner):
            where = f"{owner} {subset_field}"
            for key, ready in (("addresses", True), ("notReadyAddresses", False)):
                for field, addr in get_objects(subset, key, where):
                    field = f"{subset_field}.{field}"
                    ref = get_map(addr, "targetRef", owner)
                    target = None
                    if ref:
                        ref_ns = get_str(ref, "namespace", owner)
                        ref_name = get_str(ref, "name", owner, required=True)
                        kind = get_str(ref, "kind", owner) or "Pod"
                        target = f"{kind} {ref_ns + '/' if ref_ns else ''}{ref_name}"
                    addresses.append(
                        EndpointAddress(
                            ip=ipv4(addr.get("ip"), owner, f"{field}.ip"),
                            ready=ready,
                            node_name=get_str(addr, "nodeName", owner) or None,
                            target=target,
                        )
                    )
        out.append(Endpoints(name, namespace, tuple(addresses)))
    return tuple(out)


def parse_namespaces(raw: str | Mapping[str, Any]) -> tuple[NamespaceInfo, ...]:
    """`kubectl get namespaces -o json` (e.g. with `-l netlab.io/e2e=true`)."""
    what = "kubectl get namespaces"
    out = []
    for i, item in enumerate(items_of(raw, what, "Namespace")):
        name, _ = name_of(item, what, i, namespaced=False)
        owner = f"namespace {name}"
        out.append(
            NamespaceInfo(
                name=name,
                phase=get_str(item, "status.phase", owner) or "Active",
                labels=get_labels(item, "metadata.labels", owner),
            )
        )
    return tuple(out)


def _configmap_data(raw: str | Mapping[str, Any], name: str, key: str) -> str:
    what = f"kubectl -n {SYSTEM_NAMESPACE} get configmap {name}"
    doc = document(raw, what)
    if doc.get("kind") != "ConfigMap":
        raise ValueError(f"{what}: expected kind ConfigMap, got {doc.get('kind')!r}")
    ns, found = get_str(doc, "metadata.namespace", what), get_str(doc, "metadata.name", what)
    owner = f"configmap {ns}/{found}"
    data = get_map(doc, "data", owner)
    if key not in data:
        raise ValueError(f"{owner}: field data[{key}] is missing (keys: {sorted(data)})")
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{owner}: field data[{key}] must be a string")
    return value


def parse_flannel_netconf(raw: str | Mapping[str, Any]) -> FlannelNetConf:
    """`kubectl -n kube-system get configmap kube-flannel-cfg -o json`: its net-conf.json."""
    owner = f"configmap {SYSTEM_NAMESPACE}/{FLANNEL_CONFIGMAP} net-conf.json"
    text = _configmap_data(raw, FLANNEL_CONFIGMAP, "net-conf.json")
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{owner}: not JSON ({exc})") from None
    if not isinstance(conf, Mapping):
        raise ValueError(f"{owner}: must be a JSON object")
    if "Network" not in conf:
        raise ValueError(f"{owner}: field Network is missing")
    return FlannelNetConf(
        network=ipv4_network(conf["Network"], owner, "Network"),
        backend_type=get_str(conf, "Backend.Type", owner) or "udp",  # flannel's own default
        subnet_len=get_int(conf, "SubnetLen", owner, default=24),
    )


def parse_kubeadm_networking(raw: str | Mapping[str, Any]) -> KubeadmNetworking:
    """`kubectl -n kube-system get configmap kubeadm-config -o json`: ClusterConfiguration
    (YAML inside the JSON) networking.podSubnet / serviceSubnet / dnsDomain."""
    owner = f"configmap {SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP} ClusterConfiguration"
    text = _configmap_data(raw, KUBEADM_CONFIGMAP, "ClusterConfiguration")
    try:
        conf = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{owner}: not YAML ({exc})") from None
    if not isinstance(conf, Mapping):
        raise ValueError(f"{owner}: must be a YAML mapping")
    if conf.get("kind") != "ClusterConfiguration":
        raise ValueError(f"{owner}: kind is {conf.get('kind')!r}, expected ClusterConfiguration")

    def subnet(key: str) -> IPv4Network | None:
        value = get_str(conf, f"networking.{key}", owner)
        if not value:
            return None
        nets = [n.strip() for n in value.split(",") if n.strip()]
        v4 = [n for n in nets if ":" not in n]  # a dual-stack list: this lab is IPv4
        if len(v4) != 1:
            raise ValueError(f"{owner}: networking.{key} = {value!r} needs one IPv4 CIDR")
        return ipv4_network(v4[0], owner, f"networking.{key}")

    return KubeadmNetworking(
        pod_subnet=subnet("podSubnet"),
        service_subnet=subnet("serviceSubnet"),
        dns_domain=get_str(conf, "networking.dnsDomain", owner) or "cluster.local",
        kubernetes_version=get_str(conf, "kubernetesVersion", owner),
    )


NSLOOKUP_ADDRESS = re.compile(r"^Address(?:\s+\d+)?:\s+(\S+)")


def parse_busybox_nslookup(output: str) -> tuple[IPv4Address, ...]:
    """The IPv4 answers of busybox `nslookup NAME` (1.28's `Address 1: IP NAME` lines or the
    newer `Address: IP` lines), after the `Name:` line; the server's own lines are skipped."""
    answers: list[IPv4Address] = []
    in_answer = False
    for line in output.splitlines():
        if line.startswith("Name:"):
            in_answer = True
            continue
        m = NSLOOKUP_ADDRESS.match(line)
        if in_answer and m:
            try:
                address = ip_address(m[1])
            except ValueError:
                continue
            if isinstance(address, IPv4Address) and address not in answers:
                answers.append(address)
    return tuple(answers)
