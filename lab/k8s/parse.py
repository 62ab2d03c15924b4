"""Parsers of `kubectl -o json` output (pure).

Parsers keep only the fields the checks use and raise `ValueError` (`lab.model.strict.DecodeError`,
carrying a Problem) naming the object and the field on malformed input; absent optional fields
(a node without a podCIDR yet, a Pending pod without an IP) are kept as `None`/empty so the
checks can report them. On a dual-stack cluster the IPv4 side goes where the checks look and
the IPv6 side is kept beside it (`*_v6`), whichever family is listed first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from lab.k8s.decode import (
    any_ip,
    any_network,
    at,
    by_family,
    document,
    fail,
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
    too_long,
)
from lab.k8s.model import (
    FLANNEL_CONFIGMAP,
    FLANNEL_NAMESPACES,
    FLANNEL_PUBLIC_IP,
    FLANNEL_PUBLIC_IPV6,
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
from lab.model import yamldoc


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
        internal_v4, internal_v6 = by_family(
            [
                (f"{field}.address", addr.get("address"))
                for field, addr in get_objects(item, "status.addresses", owner)
                if addr.get("type") == "InternalIP"
            ],
            owner,
        )
        listed = [
            (f"spec.podCIDRs[{j}]", c) for j, c in enumerate(get_list(item, "spec.podCIDRs", owner))
        ]
        single = get_str(item, "spec.podCIDR", owner)
        if not listed and single:
            listed = [("spec.podCIDR", single)]
        nets = [any_network(c, owner, field) for field, c in listed]
        if single and nets and any_network(single, owner, "spec.podCIDR") != nets[0]:
            raise fail(owner, f"spec.podCIDR {single} differs from spec.podCIDRs[0] {nets[0]}")
        annotations = get_map(item, "metadata.annotations", owner)
        public = annotations.get(FLANNEL_PUBLIC_IP)
        flannel_ip = (
            None
            if public is None
            else ipv4(public, owner, f"metadata.annotations[{FLANNEL_PUBLIC_IP}]")
        )
        public6 = annotations.get(FLANNEL_PUBLIC_IPV6)
        flannel_ip6 = (
            None
            if public6 is None
            else any_ip(public6, owner, f"metadata.annotations[{FLANNEL_PUBLIC_IPV6}]")
        )
        nodes.append(
            ClusterNode(
                name,
                ready,
                detail,
                internal_v4[0] if internal_v4 else None,
                tuple(n for n in nets if isinstance(n, IPv4Network)),
                flannel_ip,
                internal_ips_v6=tuple(internal_v6),
                pod_cidrs_v6=tuple(n for n in nets if isinstance(n, IPv6Network)),
                flannel_public_ipv6=None if isinstance(flannel_ip6, IPv4Address) else flannel_ip6,
            )
        )
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
            get_str(c, "name", f"{owner} {field}", required=True)
            for field, c in get_objects(item, "spec.containers", owner)
        ]
        if not containers:
            raise fail(f"{owner}: field spec.containers", "is missing or empty")
        pod_v4, pod_v6 = _pod_ips(item, owner)
        pods.append(
            ClusterPod(
                name=name,
                namespace=namespace,
                phase=get_str(item, "status.phase", owner) or "Unknown",
                node_name=get_str(item, "spec.nodeName", owner) or None,
                pod_ip=pod_v4[0] if pod_v4 else None,
                host_network=get_bool(item, "spec.hostNetwork", owner),
                containers=tuple(containers),
                statuses=tuple(
                    _container_status(s, owner, field)
                    for field, s in get_objects(item, "status.containerStatuses", owner)
                ),
                labels=get_labels(item, "metadata.labels", owner),
                reason=get_str(item, "status.reason", owner),
                message=get_str(item, "status.message", owner),
                pod_ips_v6=tuple(pod_v6),
            )
        )
    return tuple(pods)


def _pod_ips(item: Mapping[str, Any], owner: str) -> tuple[list[IPv4Address], list[Any]]:
    """status.podIPs (status.podIP, the primary, when the list is absent), by family; the
    primary must be the list's first entry, as the API server writes them."""
    primary = at(item, "status.podIP")
    listed = [
        (f"{field}.ip", entry.get("ip"))
        for field, entry in get_objects(item, "status.podIPs", owner)
    ]
    if not listed and primary:
        listed = [("status.podIP", primary)]
    v4, v6 = by_family(listed, owner)
    _one_per_family(owner, "status.podIPs", v4, v6)
    if (
        primary
        and listed
        and any_ip(primary, owner, "status.podIP") != any_ip(listed[0][1], owner, listed[0][0])
    ):
        raise fail(owner, f"status.podIP {primary} differs from status.podIPs[0] {listed[0][1]}")
    return v4, v6


def _one_per_family(owner: str, field: str, v4: list[IPv4Address], v6: list[IPv6Address]) -> None:
    """The API server allows one address per family in a pod's podIPs and a service's
    clusterIPs: a list with two of one family is no dual-stack answer, and reading its first
    address would hide the second."""
    for family, addresses in (("IPv4", v4), ("IPv6", v6)):
        if len(addresses) > 1:
            shown = ", ".join(str(a) for a in addresses)
            raise fail(
                f"{owner}: field {field}",
                f"holds {len(addresses)} {family} addresses ({shown}); the API allows one per "
                "family (a dual-stack object has one IPv4 and one IPv6 address)",
                fix="what wrote it is not the API server: check the network plugin's results",
            )


def parse_services(raw: str | Mapping[str, Any]) -> tuple[Service, ...]:
    """`kubectl get services -A -o json`, `-n NS`, or one service."""
    what = "kubectl get services"
    services = []
    for i, item in enumerate(items_of(raw, what, "Service")):
        name, namespace = name_of(item, what, i, namespaced=True)
        owner = f"service {namespace}/{name}"
        svc_type = get_str(item, "spec.type", owner) or "ClusterIP"
        cluster_ip_raw = get_str(item, "spec.clusterIP", owner)
        listed = [
            (f"spec.clusterIPs[{j}]", v)
            for j, v in enumerate(get_list(item, "spec.clusterIPs", owner))
        ]
        if not listed and cluster_ip_raw not in ("", "None"):
            listed = [("spec.clusterIP", cluster_ip_raw)]
        listed = [(f, v) for f, v in listed if v != "None"]
        cluster_v4, cluster_v6 = by_family(listed, owner)
        _one_per_family(owner, "spec.clusterIPs", cluster_v4, cluster_v6)
        ports = []
        for field, p in get_objects(item, "spec.ports", owner):
            where = f"{owner} {field}"
            port = get_int(p, "port", where)
            target = p.get("targetPort", port)
            if not isinstance(target, int | str) or isinstance(target, bool):
                raise fail(f"{where}: field targetPort", "must be a number or a name", target)
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
            raise fail(owner, "type NodePort but a port has no nodePort")
        services.append(
            Service(
                name=name,
                namespace=namespace,
                type=svc_type,
                cluster_ip=cluster_v4[0] if cluster_v4 else None,
                ports=tuple(ports),
                selector=get_labels(item, "spec.selector", owner),
                cluster_ips_v6=tuple(cluster_v6),
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
                    at_addr = f"{owner} {field}"  # the address's own fields, named in it
                    ref = get_map(addr, "targetRef", at_addr)
                    target = None
                    if ref:
                        ref_ns = get_str(addr, "targetRef.namespace", at_addr)
                        ref_name = get_str(addr, "targetRef.name", at_addr, required=True)
                        kind = get_str(addr, "targetRef.kind", at_addr) or "Pod"
                        target = f"{kind} {ref_ns + '/' if ref_ns else ''}{ref_name}"
                    addresses.append(
                        EndpointAddress(
                            ip=any_ip(addr.get("ip"), owner, f"{field}.ip"),
                            ready=ready,
                            node_name=get_str(addr, "nodeName", at_addr) or None,
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


def _configmap_data(doc: Mapping[str, Any], what: str, key: str) -> str:
    if doc.get("kind") != "ConfigMap":
        raise fail(what, f"expected kind ConfigMap, got {doc.get('kind')!r}")
    ns, found = get_str(doc, "metadata.namespace", what), get_str(doc, "metadata.name", what)
    owner = f"configmap {ns}/{found}"
    data = get_map(doc, "data", owner)
    if key not in data:
        raise fail(f"{owner}: field data[{key}]", f"is missing (keys: {sorted(data)})")
    value = data[key]
    if not isinstance(value, str):
        raise fail(f"{owner}: field data[{key}]", "must be a string", value)
    return value


def _flannel_configmap(raw: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """flannel's ConfigMap from `kubectl get configmap kube-flannel-cfg -n NS` (one object)
    or from `lab.k8s.flannel_configmap()` (a list over every namespace): the one in
    kube-flannel (flannel v0.20 and later) or kube-system (before)."""
    what = f"kubectl get configmap {FLANNEL_CONFIGMAP}"
    doc = document(raw, what)
    if doc.get("kind") == "ConfigMap":
        return doc
    found = {
        get_str(item, "metadata.namespace", what): item
        for item in items_of(doc, what, "ConfigMap")
        if item.get("metadata", {}).get("name") == FLANNEL_CONFIGMAP
    }
    mine = [ns for ns in FLANNEL_NAMESPACES if ns in found]
    if not mine:
        elsewhere = f"; found only in {', '.join(sorted(found))}" if found else ""
        raise fail(
            what,
            f"no ConfigMap {FLANNEL_CONFIGMAP} in {' or '.join(FLANNEL_NAMESPACES)}{elsewhere}",
            fix="is flannel installed? `kubectl get pods -A -l app=flannel`",
        )
    if len(mine) > 1:
        raise fail(
            what,
            f"{FLANNEL_CONFIGMAP} is in both {' and '.join(mine)}: an upgrade from a manifest "
            "before flannel v0.20 left the old one",
            fix="delete the objects of the namespace the running kube-flannel DaemonSet does "
            "not use",
        )
    return found[mine[0]]


def parse_flannel_netconf(raw: str | Mapping[str, Any]) -> FlannelNetConf:
    """flannel's net-conf.json, from its ConfigMap in kube-flannel or kube-system (see
    `lab.k8s.flannel_configmap`). A dual-stack net-conf's IPv6Network is kept, not checked."""
    doc = _flannel_configmap(raw)
    namespace = get_str(doc, "metadata.namespace", "configmap") or SYSTEM_NAMESPACE
    owner = f"configmap {namespace}/{FLANNEL_CONFIGMAP} net-conf.json"
    text = _configmap_data(doc, f"kubectl -n {namespace} get configmap", "net-conf.json")
    try:
        conf = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise fail(owner, f"not JSON ({exc})") from None
    except ValueError as exc:
        raise fail(owner, f"holds {too_long(exc)}") from None
    if not isinstance(conf, Mapping):
        raise fail(owner, "must be a JSON object", conf)
    if "Network" not in conf:
        raise fail(f"{owner}: field Network", "is missing")
    v6 = conf.get("IPv6Network")
    ipv6 = None if v6 is None else any_network(v6, owner, "IPv6Network")
    return FlannelNetConf(
        network=ipv4_network(conf["Network"], owner, "Network"),
        backend_type=get_str(conf, "Backend.Type", owner) or "udp",  # flannel's own default
        subnet_len=get_int(conf, "SubnetLen", owner, default=24),
        namespace=namespace,
        ipv6_network=ipv6 if isinstance(ipv6, IPv6Network) else None,
    )


def parse_kubeadm_networking(raw: str | Mapping[str, Any]) -> KubeadmNetworking:
    """`kubectl -n kube-system get configmap kubeadm-config -o json`: ClusterConfiguration
    (YAML inside the JSON) networking.podSubnet / serviceSubnet / dnsDomain."""
    owner = f"configmap {SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP} ClusterConfiguration"
    what = f"kubectl -n {SYSTEM_NAMESPACE} get configmap {KUBEADM_CONFIGMAP}"
    text = _configmap_data(document(raw, what), what, "ClusterConfiguration")
    conf, problems = yamldoc.read_yaml(text)
    if problems:
        raise fail(owner, f"not YAML ({problems[0]})")
    if not isinstance(conf, Mapping):
        raise fail(owner, "must be a YAML mapping", conf)
    if conf.get("kind") != "ClusterConfiguration":
        raise fail(owner, f"kind is {conf.get('kind')!r}, expected ClusterConfiguration")

    def subnet(key: str) -> IPv4Network | None:
        value = get_str(conf, f"networking.{key}", owner)
        if not value:
            return None
        nets = [n.strip() for n in value.split(",") if n.strip()]
        v4 = [n for n in nets if ":" not in n]  # a dual-stack list: this lab is IPv4
        if len(v4) != 1:
            raise fail(f"{owner}: networking.{key}", "needs one IPv4 CIDR", value)
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
