"""Kubernetes objects as the network checks need them (pure): parsers of `kubectl -o json`
output, checks that return problems, and renderers of the e2e suite's manifests.

Parsers keep only the fields the checks use and raise `ValueError` naming the object and the
field on malformed input; absent optional fields (a node without a podCIDR yet, a Pending pod
without an IP) are kept as `None`/empty so the checks can report them. Checks (`validate_*`)
return a list of problem strings, one per broken object, each naming the object and the values;
an empty list means "as the lab expects". Renderers return plain dicts for `kubectl apply -f -`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any, Literal

import yaml

from lab import netmath
from lab.config import DNS1123_LABEL, Lab

FLANNEL_PUBLIC_IP = "flannel.alpha.coreos.com/public-ip"
RUN_LABEL = "netlab.io/run"
E2E_LABEL = "netlab.io/e2e"
SYSTEM_NAMESPACE = "kube-system"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBECTL = ("kubectl", "--kubeconfig", ADMIN_CONF)  # as root on the control plane
FLANNEL_CONFIGMAP = "kube-flannel-cfg"
KUBEADM_CONFIGMAP = "kubeadm-config"

ContainerState = Literal["running", "waiting", "terminated", "unknown"]
RestartPolicy = Literal["Always", "OnFailure", "Never"]
ServiceType = Literal["ClusterIP", "NodePort"]

# ---------------------------------------------------------------------------------------------
# Model (only what the checks and the driver use)


@dataclass(frozen=True)
class ClusterNode:
    name: str
    ready: bool
    ready_detail: str  # "status: reason: message" of the Ready condition, for problem messages
    internal_ip: IPv4Address | None
    pod_cidrs: tuple[IPv4Network, ...]  # spec.podCIDRs (or spec.podCIDR); empty until assigned
    flannel_public_ip: IPv4Address | None  # annotation written by flanneld


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    ready: bool
    restart_count: int
    state: ContainerState
    reason: str = ""
    message: str = ""
    exit_code: int | None = None

    def describe(self) -> str:
        """`waiting: CrashLoopBackOff, 7 restarts` — what `kubectl get pods` would summarise."""
        text: str = self.state
        if self.reason:
            text += f": {self.reason}"
        if self.exit_code is not None:
            text += f" (exit code {self.exit_code})"
        return f"{text}, {self.restart_count} restart{'s' if self.restart_count != 1 else ''}"


@dataclass(frozen=True)
class ClusterPod:
    name: str
    namespace: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    node_name: str | None  # None until scheduled
    pod_ip: IPv4Address | None  # None until the sandbox has an address
    host_network: bool
    containers: tuple[str, ...]  # spec.containers[*].name, in order
    statuses: tuple[ContainerStatus, ...]
    labels: tuple[tuple[str, str], ...] = ()
    reason: str = ""  # status.reason (Evicted, NodeLost, ...)
    message: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def status_of(self, container: str) -> ContainerStatus | None:
        for status in self.statuses:
            if status.name == container:
                return status
        return None

    @property
    def unready(self) -> tuple[str, ...]:
        """Containers of the spec that are not ready, each with what it is doing."""
        out = []
        for name in self.containers:
            status = self.status_of(name)
            if status is None:
                out.append(f"{name} (no status yet)")
            elif not status.ready:
                out.append(f"{name} ({status.describe()})")
        return tuple(out)

    @property
    def running_and_ready(self) -> bool:
        return self.phase == "Running" and not self.unready


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target_port: int | str
    node_port: int | None = None


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    type: str
    cluster_ip: IPv4Address | None  # None for headless ("None") and ExternalName services
    ports: tuple[ServicePort, ...]
    selector: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EndpointAddress:
    ip: IPv4Address
    ready: bool
    node_name: str | None = None
    target: str | None = None  # "Pod kube-system/coredns-..." when backed by a pod


@dataclass(frozen=True)
class Endpoints:
    name: str
    namespace: str
    addresses: tuple[EndpointAddress, ...]  # ready and not-ready, flattened over subsets

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ready_ips(self) -> tuple[IPv4Address, ...]:
        return tuple(a.ip for a in self.addresses if a.ready)


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    phase: str
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class FlannelNetConf:
    network: IPv4Network
    backend_type: str
    subnet_len: int = 24


@dataclass(frozen=True)
class KubeadmNetworking:
    pod_subnet: IPv4Network | None  # None when `kubeadm init` ran without --pod-network-cidr
    service_subnet: IPv4Network | None
    dns_domain: str
    kubernetes_version: str


# ---------------------------------------------------------------------------------------------
# Strict access to decoded JSON


def _decode(raw: str | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what}: output is not JSON ({exc}): {raw[:120]!r}") from None
    else:
        doc = raw
    if not isinstance(doc, Mapping):
        raise ValueError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _items(raw: str | Mapping[str, Any], what: str, kind: str) -> list[Mapping[str, Any]]:
    """The objects of a `kubectl get KIND -o json` answer: a List/KINDList, or one KIND."""
    doc = _decode(raw, what)
    doc_kind = doc.get("kind")
    if doc_kind == kind:
        items: Any = [doc]
    elif doc_kind in ("List", f"{kind}List"):
        items = doc.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ValueError(f"{what}: field items must be a list, got {type(items).__name__}")
    else:
        raise ValueError(f"{what}: expected kind {kind}, {kind}List or List, got {doc_kind!r}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"{what}: items[{i}] must be an object")
        item_kind = item.get("kind")
        if item_kind not in (None, kind):
            raise ValueError(f"{what}: items[{i}] is a {item_kind}, expected {kind}")
        out.append(item)
    return out


def _at(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when any part is absent or null."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _str(obj: Mapping[str, Any], path: str, owner: str, required: bool = False) -> str:
    value = _at(obj, path)
    if value is None:
        if required:
            raise ValueError(f"{owner}: field {path} is missing")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{owner}: field {path} must be a string, got {value!r}")
    return value


def _list(obj: Mapping[str, Any], path: str, owner: str) -> list[Any]:
    value = _at(obj, path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{owner}: field {path} must be a list, got {value!r}")
    return value


def _objects(obj: Mapping[str, Any], path: str, owner: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The list at `path` whose entries must be objects, each with its indexed field path."""
    out = []
    for j, entry in enumerate(_list(obj, path, owner)):
        field = f"{path}[{j}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{owner}: field {field} must be an object, got {entry!r}")
        out.append((field, entry))
    return out


def _map(obj: Mapping[str, Any], path: str, owner: str) -> Mapping[str, Any]:
    value = _at(obj, path)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{owner}: field {path} must be an object, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], path: str, owner: str, default: int | None = None) -> int:
    value = _at(obj, path)
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{owner}: field {path} must be an integer, got {value!r}")
    return value


def _bool(obj: Mapping[str, Any], path: str, owner: str) -> bool:
    value = _at(obj, path)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: field {path} must be true or false, got {value!r}")
    return value


def _labels(obj: Mapping[str, Any], path: str, owner: str) -> tuple[tuple[str, str], ...]:
    labels = _map(obj, path, owner)
    for key, value in labels.items():
        if not isinstance(value, str):
            raise ValueError(f"{owner}: field {path}.{key} must be a string, got {value!r}")
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _ipv4(value: object, owner: str, field: str) -> IPv4Address:
    try:
        address = ip_address(str(value)) if isinstance(value, str) else None
    except ValueError:
        address = None
    if not isinstance(address, IPv4Address):
        raise ValueError(f"{owner}: field {field} = {value!r} is not an IPv4 address")
    return address


def _ipv4_network(value: object, owner: str, field: str) -> IPv4Network:
    try:
        network = ip_network(value) if isinstance(value, str) else None
    except ValueError as exc:
        raise ValueError(
            f"{owner}: field {field} = {value!r} is not an IPv4 CIDR ({exc})"
        ) from None
    if not isinstance(network, IPv4Network):
        raise ValueError(f"{owner}: field {field} = {value!r} is not an IPv4 CIDR")
    return network


def _name(item: Mapping[str, Any], what: str, index: int, namespaced: bool) -> tuple[str, str]:
    where = f"{what}: items[{index}]"
    name = _str(item, "metadata.name", where, required=True)
    namespace = _str(item, "metadata.namespace", f"{where} ({name})", required=namespaced)
    return name, namespace


# ---------------------------------------------------------------------------------------------
# Parsers


def parse_nodes(raw: str | Mapping[str, Any]) -> tuple[ClusterNode, ...]:
    """`kubectl get nodes -o json` (or one node)."""
    what = "kubectl get nodes"
    nodes = []
    for i, item in enumerate(_items(raw, what, "Node")):
        name, _ = _name(item, what, i, namespaced=False)
        owner = f"node {name}"
        ready, detail = False, "no Ready condition"
        for _field, cond in _objects(item, "status.conditions", owner):
            if cond.get("type") == "Ready":
                status = _str(cond, "status", f"{owner} Ready condition", required=True)
                ready = status == "True"
                parts = [status, _str(cond, "reason", owner), _str(cond, "message", owner)]
                detail = ": ".join(p for p in parts if p)
        internal = None
        for field, addr in _objects(item, "status.addresses", owner):
            if addr.get("type") == "InternalIP":
                internal = _ipv4(addr.get("address"), owner, f"{field}.address")
                break
        cidrs_raw = _list(item, "spec.podCIDRs", owner)
        single = _str(item, "spec.podCIDR", owner)
        if not cidrs_raw and single:
            cidrs_raw = [single]
        cidrs = tuple(
            _ipv4_network(c, owner, f"spec.podCIDRs[{j}]") for j, c in enumerate(cidrs_raw)
        )
        if single and cidrs and _ipv4_network(single, owner, "spec.podCIDR") != cidrs[0]:
            raise ValueError(
                f"{owner}: spec.podCIDR {single} differs from spec.podCIDRs[0] {cidrs[0]}"
            )
        annotations = _map(item, "metadata.annotations", owner)
        public = annotations.get(FLANNEL_PUBLIC_IP)
        flannel_ip = (
            None
            if public is None
            else _ipv4(public, owner, f"metadata.annotations[{FLANNEL_PUBLIC_IP}]")
        )
        nodes.append(ClusterNode(name, ready, detail, internal, cidrs, flannel_ip))
    return tuple(nodes)


def _container_status(raw: Mapping[str, Any], owner: str, where: str) -> ContainerStatus:
    name = _str(raw, "name", f"{owner} {where}", required=True)
    who = f"{owner} container {name}"
    state_map = _map(raw, "state", who)
    state: ContainerState = "unknown"
    reason = message = ""
    exit_code = None
    keys: tuple[ContainerState, ...] = ("running", "waiting", "terminated")
    for key in keys:
        if key in state_map and state_map[key] is not None:
            detail = _map(state_map, key, who)
            state = key
            reason = _str(detail, "reason", who)
            message = _str(detail, "message", who)
            if key == "terminated":
                exit_code = _int(detail, "exitCode", who)
            break
    return ContainerStatus(
        name=name,
        ready=_bool(raw, "ready", who),
        restart_count=_int(raw, "restartCount", who, default=0),
        state=state,
        reason=reason,
        message=message,
        exit_code=exit_code,
    )


def parse_pods(raw: str | Mapping[str, Any]) -> tuple[ClusterPod, ...]:
    """`kubectl get pods -A -o json`, `-n NS`, or one pod."""
    what = "kubectl get pods"
    pods = []
    for i, item in enumerate(_items(raw, what, "Pod")):
        name, namespace = _name(item, what, i, namespaced=True)
        owner = f"pod {namespace}/{name}"
        containers = [
            _str(c, "name", owner, required=True)
            for _f, c in _objects(item, "spec.containers", owner)
        ]
        if not containers:
            raise ValueError(f"{owner}: field spec.containers is missing or empty")
        pod_ip_raw = _at(item, "status.podIP")
        pods.append(
            ClusterPod(
                name=name,
                namespace=namespace,
                phase=_str(item, "status.phase", owner) or "Unknown",
                node_name=_str(item, "spec.nodeName", owner) or None,
                pod_ip=None if not pod_ip_raw else _ipv4(pod_ip_raw, owner, "status.podIP"),
                host_network=_bool(item, "spec.hostNetwork", owner),
                containers=tuple(containers),
                statuses=tuple(
                    _container_status(s, owner, field)
                    for field, s in _objects(item, "status.containerStatuses", owner)
                ),
                labels=_labels(item, "metadata.labels", owner),
                reason=_str(item, "status.reason", owner),
                message=_str(item, "status.message", owner),
            )
        )
    return tuple(pods)


def parse_services(raw: str | Mapping[str, Any]) -> tuple[Service, ...]:
    """`kubectl get services -A -o json`, `-n NS`, or one service."""
    what = "kubectl get services"
    services = []
    for i, item in enumerate(_items(raw, what, "Service")):
        name, namespace = _name(item, what, i, namespaced=True)
        owner = f"service {namespace}/{name}"
        svc_type = _str(item, "spec.type", owner) or "ClusterIP"
        cluster_ip_raw = _str(item, "spec.clusterIP", owner)
        cluster_ip = (
            None
            if cluster_ip_raw in ("", "None")
            else _ipv4(cluster_ip_raw, owner, "spec.clusterIP")
        )
        ports = []
        for field, p in _objects(item, "spec.ports", owner):
            where = f"{owner} {field}"
            port = _int(p, "port", where)
            target = p.get("targetPort", port)
            if not isinstance(target, int | str) or isinstance(target, bool):
                raise ValueError(f"{where}: field targetPort must be a number or a name")
            node_port = p.get("nodePort")
            if node_port is not None:
                node_port = _int(p, "nodePort", where)
            ports.append(
                ServicePort(
                    name=_str(p, "name", where),
                    protocol=_str(p, "protocol", where) or "TCP",
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
                selector=_labels(item, "spec.selector", owner),
            )
        )
    return tuple(services)


def parse_endpoints(raw: str | Mapping[str, Any]) -> tuple[Endpoints, ...]:
    """`kubectl get endpoints -A -o json`, `-n NS`, or one Endpoints object."""
    what = "kubectl get endpoints"
    out = []
    for i, item in enumerate(_items(raw, what, "Endpoints")):
        name, namespace = _name(item, what, i, namespaced=True)
        owner = f"endpoints {namespace}/{name}"
        addresses: list[EndpointAddress] = []
        for subset_field, subset in _objects(item, "subsets", owner):
            where = f"{owner} {subset_field}"
            for key, ready in (("addresses", True), ("notReadyAddresses", False)):
                for field, addr in _objects(subset, key, where):
                    field = f"{subset_field}.{field}"
                    ref = _map(addr, "targetRef", owner)
                    target = None
                    if ref:
                        ref_ns = _str(ref, "namespace", owner)
                        ref_name = _str(ref, "name", owner, required=True)
                        kind = _str(ref, "kind", owner) or "Pod"
                        target = f"{kind} {ref_ns + '/' if ref_ns else ''}{ref_name}"
                    addresses.append(
                        EndpointAddress(
                            ip=_ipv4(addr.get("ip"), owner, f"{field}.ip"),
                            ready=ready,
                            node_name=_str(addr, "nodeName", owner) or None,
                            target=target,
                        )
                    )
        out.append(Endpoints(name, namespace, tuple(addresses)))
    return tuple(out)


def parse_namespaces(raw: str | Mapping[str, Any]) -> tuple[NamespaceInfo, ...]:
    """`kubectl get namespaces -o json` (e.g. with `-l netlab.io/e2e=true`)."""
    what = "kubectl get namespaces"
    out = []
    for i, item in enumerate(_items(raw, what, "Namespace")):
        name, _ = _name(item, what, i, namespaced=False)
        owner = f"namespace {name}"
        out.append(
            NamespaceInfo(
                name=name,
                phase=_str(item, "status.phase", owner) or "Active",
                labels=_labels(item, "metadata.labels", owner),
            )
        )
    return tuple(out)


def _configmap_data(raw: str | Mapping[str, Any], name: str, key: str) -> str:
    what = f"kubectl -n {SYSTEM_NAMESPACE} get configmap {name}"
    doc = _decode(raw, what)
    if doc.get("kind") != "ConfigMap":
        raise ValueError(f"{what}: expected kind ConfigMap, got {doc.get('kind')!r}")
    owner = f"configmap {_str(doc, 'metadata.namespace', what)}/{_str(doc, 'metadata.name', what)}"
    data = _map(doc, "data", owner)
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
        network=_ipv4_network(conf["Network"], owner, "Network"),
        backend_type=_str(conf, "Backend.Type", owner) or "udp",  # flannel's own default
        subnet_len=_int(conf, "SubnetLen", owner, default=24),
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
        value = _str(conf, f"networking.{key}", owner)
        if not value:
            return None
        nets = [n.strip() for n in value.split(",") if n.strip()]
        v4 = [n for n in nets if ":" not in n]  # a dual-stack list: this lab is IPv4
        if len(v4) != 1:
            raise ValueError(f"{owner}: networking.{key} = {value!r} needs one IPv4 CIDR")
        return _ipv4_network(v4[0], owner, f"networking.{key}")

    return KubeadmNetworking(
        pod_subnet=subnet("podSubnet"),
        service_subnet=subnet("serviceSubnet"),
        dns_domain=_str(conf, "networking.dnsDomain", owner) or "cluster.local",
        kubernetes_version=_str(conf, "kubernetesVersion", owner),
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


# ---------------------------------------------------------------------------------------------
# Checks: each returns problems (empty = as the lab expects), never raises


def validate_nodes_ready(nodes: Sequence[ClusterNode], lab: Lab) -> list[str]:
    """Every lab node is registered and Ready; no stranger is registered."""
    problems = []
    by_name = {n.name: n for n in nodes}
    for name in lab.node_names:
        if name not in by_name:
            listed = ", ".join(sorted(by_name)) or "none"
            problems.append(
                f"node {name}: not registered with the API server (registered: {listed}); "
                "check kubelet on it and `kubeadm join`"
            )
    for node in nodes:
        if node.name not in lab.node_names:
            problems.append(
                f"node {node.name}: registered but not a node of lab {lab.name} "
                f"({', '.join(lab.node_names)}); `kubectl delete node {node.name}` if stale"
            )
        elif not node.ready:
            problems.append(f"node {node.name}: not Ready ({node.ready_detail})")
    return problems


def validate_system_pods(
    pods: Sequence[ClusterPod], namespace: str = SYSTEM_NAMESPACE
) -> list[str]:
    """Every pod of `namespace` is Running with every container ready."""
    mine = [p for p in pods if p.namespace == namespace]
    if not mine:
        return [f"namespace {namespace}: no pods at all (is the control plane up?)"]
    problems = []
    for pod in mine:
        if pod.running_and_ready:
            continue
        where = f"pod {pod.ref} on {pod.node_name or '<unscheduled>'}"
        detail = f"phase {pod.phase}"
        if pod.reason:
            detail += f" ({pod.reason})"
        if pod.unready:
            detail += f", containers not ready: {'; '.join(pod.unready)}"
        problems.append(f"{where}: {detail}, expected Running with every container ready")
    return problems


def validate_node_addresses(nodes: Sequence[ClusterNode], lab: Lab) -> list[str]:
    """Each node's InternalIP and flannel public-ip are its private IP: kubelet and flannel
    use the private network, not the management one that holds the default route."""
    problems = []
    by_name = {n.name: n for n in nodes}
    mgmt = lab.network.management
    for lab_node in lab.nodes:
        node = by_name.get(lab_node.name)
        if node is None:
            continue  # validate_nodes_ready reports it
        want = lab_node.ip
        if node.internal_ip is None:
            problems.append(f"node {node.name}: no InternalIP address (expected {want})")
        elif node.internal_ip != want:
            hint = ""
            if node.internal_ip in mgmt:
                hint = (
                    f"; {node.internal_ip} is on the management network {mgmt}: kubelet took "
                    f"the default-route NIC, pass kubelet --node-ip={want}"
                )
            problems.append(
                f"node {node.name}: InternalIP {node.internal_ip} is not its private IP "
                f"{want}{hint}"
            )
        if node.flannel_public_ip is None:
            problems.append(
                f"node {node.name}: no {FLANNEL_PUBLIC_IP} annotation (is kube-flannel "
                f"running on it?); expected {want}"
            )
        elif node.flannel_public_ip != want:
            hint = ""
            if node.flannel_public_ip in mgmt:
                hint = (
                    f"; {node.flannel_public_ip} is on the management network {mgmt}: flannel "
                    f"took the default-route NIC, pass flanneld --iface={lab.vm.private_nic}"
                )
            problems.append(
                f"node {node.name}: {FLANNEL_PUBLIC_IP} {node.flannel_public_ip} is not its "
                f"private IP {want}{hint}"
            )
    return problems


def validate_pod_cidrs(nodes: Sequence[ClusterNode], cluster_cidr: IPv4Network) -> list[str]:
    """Every node has a podCIDR inside the cluster pod CIDR; no two nodes' podCIDRs overlap."""
    return netmath.allocation_problems(
        cluster_cidr,
        {n.name: n.pod_cidrs for n in nodes},
        missing=lambda node: (
            f"node {node}: no podCIDR assigned (kubeadm init needs "
            f"--pod-network-cidr={cluster_cidr}; flannel fails with 'pod cidr not assigned')"
        ),
        outside=lambda node, cidr: (
            f"node {node}: podCIDR {cidr} is outside the cluster pod CIDR {cluster_cidr}"
        ),
        overlap=lambda a, x, b, y: f"nodes {a} and {b}: podCIDRs {x} and {y} overlap",
    )


def validate_pod_ips(pods: Sequence[ClusterPod], nodes: Sequence[ClusterNode]) -> list[str]:
    """Every pod IP (hostNetwork pods excluded) lies in its node's podCIDR. Pods without an IP
    yet are skipped; nodes without a podCIDR are reported by validate_pod_cidrs."""
    problems = []
    by_name = {n.name: n for n in nodes}
    for pod in pods:
        if pod.host_network or pod.pod_ip is None or pod.node_name is None:
            continue
        node = by_name.get(pod.node_name)
        if node is None:
            problems.append(
                f"pod {pod.ref}: IP {pod.pod_ip} on node {pod.node_name}, which is not in the "
                "node list"
            )
            continue
        if node.pod_cidrs and not any(pod.pod_ip in c for c in node.pod_cidrs):
            cidrs = ", ".join(map(str, node.pod_cidrs))
            problems.append(
                f"pod {pod.ref} on {node.name}: IP {pod.pod_ip} is outside the node's podCIDR "
                f"{cidrs}"
            )
    return problems


def validate_network_config(
    flannel: FlannelNetConf, kubeadm: KubeadmNetworking, lab: Lab
) -> list[str]:
    """flannel's net-conf Network == kubeadm's podSubnet == the lab's pod CIDR (else flannel
    masquerades cross-node pod traffic); the service CIDR and the flannel backend as the lab
    says."""
    problems = []
    want = lab.pod_network.cidr
    if kubeadm.pod_subnet is None:
        problems.append(
            f"configmap {SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP}: ClusterConfiguration has no "
            f"networking.podSubnet (kubeadm init ran without --pod-network-cidr={want})"
        )
    if flannel.network != want or kubeadm.pod_subnet not in (None, want):
        problems.append(
            "pod network CIDRs disagree: "
            f"{SYSTEM_NAMESPACE}/{FLANNEL_CONFIGMAP} net-conf.json Network {flannel.network}, "
            f"{SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP} podSubnet {kubeadm.pod_subnet}, "
            f"lab pod_network.cidr {want}; they must be equal, else flannel masquerades "
            "cross-node pod traffic"
        )
    k8s = lab.kubernetes
    if k8s is not None and kubeadm.service_subnet != k8s.service_cidr:
        problems.append(
            f"configmap {SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP}: serviceSubnet "
            f"{kubeadm.service_subnet} is not the lab's kubernetes.service_cidr {k8s.service_cidr}"
        )
    fl = lab.pod_network.flannel
    if fl is not None and flannel.backend_type != fl.backend:
        problems.append(
            f"configmap {SYSTEM_NAMESPACE}/{FLANNEL_CONFIGMAP}: net-conf.json Backend.Type "
            f"{flannel.backend_type!r} is not the lab's flannel backend {fl.backend!r}"
        )
    return problems


def validate_service_endpoints(
    services: Sequence[Service], endpoints: Sequence[Endpoints]
) -> list[str]:
    """Every service (ExternalName aside) has at least one ready endpoint address."""
    problems = []
    by_ref = {e.ref: e for e in endpoints}
    for svc in services:
        if svc.type == "ExternalName":
            continue
        ep = by_ref.get(svc.ref)
        if ep is None:
            problems.append(f"service {svc.ref}: no Endpoints object")
        elif not ep.ready_ips:
            not_ready = [f"{a.ip} ({a.target or a.node_name})" for a in ep.addresses]
            detail = f"; not ready: {', '.join(not_ready)}" if not_ready else ""
            problems.append(f"service {svc.ref}: no ready endpoints{detail}")
    return problems


# ---------------------------------------------------------------------------------------------
# Renderers of the e2e suite's objects

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _check_label_name(what: str, name: str) -> None:
    if not DNS1123_LABEL.match(name) or len(name) > 63:
        raise ValueError(
            f"{what} {name!r} must be a DNS-1123 label (lowercase letters, digits, '-'; at most "
            "63 characters)"
        )


def _check_label_value(key: str, value: str) -> None:
    if not LABEL_VALUE.match(value) or len(value) > 63:
        raise ValueError(
            f"label {key}={value!r}: a label value has at most 63 characters of letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit"
        )


def run_labels(run_id: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels every e2e object carries: this run's id and the e2e marker (for sweeps)."""
    labels = {RUN_LABEL: run_id, E2E_LABEL: "true", **(extra or {})}
    for key, value in labels.items():
        _check_label_value(key, value)
    return labels


def namespace_for(run_id: str, test: str) -> str:
    """A unique, valid namespace name for one test of one run: `nl-<run>-<test>-<hash>`."""
    slug = re.sub(r"[^a-z0-9]+", "-", test.lower()).strip("-")
    digest = hashlib.sha256(f"{run_id}/{test}".encode()).hexdigest()[:6]
    run = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")
    head = f"nl-{run}-{slug}"[: 63 - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


@dataclass(frozen=True)
class ContainerSpec:
    """A container to render: `command` replaces the image's entrypoint (empty = the image's)."""

    name: str
    image: str
    command: tuple[str, ...] = ()


def render_namespace(name: str, run_id: str) -> dict[str, Any]:
    _check_label_name("namespace name", name)
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": run_labels(run_id)},
    }


def render_pod(
    name: str,
    namespace: str,
    node: str,
    containers: Sequence[ContainerSpec],
    run_id: str,
    labels: Mapping[str, str] | None = None,
    restart_policy: RestartPolicy = "Never",
) -> dict[str, Any]:
    """A pod pinned to `node` (nodeName: the scheduler is bypassed, as a test needs to choose
    where each pod runs). restartPolicy Never by default, so a crashed test container shows
    as terminated instead of being hidden by restarts; grace period 0 for quick teardown."""
    if not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        raise ValueError(f"pod name {name!r} must be a DNS-1123 subdomain (lowercase, digits, -.)")
    _check_label_name("namespace name", namespace)
    if not containers:
        raise ValueError(f"pod {name}: needs at least one container")
    names = [c.name for c in containers]
    for c in containers:
        _check_label_name(f"pod {name}: container name", c.name)
        if not c.image:
            raise ValueError(f"pod {name}: container {c.name} has no image")
    if len(set(names)) != len(names):
        raise ValueError(f"pod {name}: container names repeat: {names}")
    rendered = []
    for c in containers:
        spec: dict[str, Any] = {"name": c.name, "image": c.image, "imagePullPolicy": "IfNotPresent"}
        if c.command:
            spec["command"] = list(c.command)
        rendered.append(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": run_labels(run_id, labels)},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            # the control-plane node carries node-role.kubernetes.io/master:NoSchedule
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
            "containers": rendered,
        },
    }


def render_service(
    name: str,
    namespace: str,
    run_id: str,
    selector: Mapping[str, str],
    port: int,
    target_port: int,
    service_type: ServiceType = "ClusterIP",
    node_port: int | None = None,
    protocol: Literal["TCP", "UDP"] = "TCP",
) -> dict[str, Any]:
    """A ClusterIP or NodePort service selecting pods by label (nodePort None: allocated)."""
    _check_label_name("service name", name)
    _check_label_name("namespace name", namespace)
    if not selector:
        raise ValueError(f"service {name}: needs a selector")
    for key, value in selector.items():
        _check_label_value(key, value)
    if node_port is not None and service_type != "NodePort":
        raise ValueError(f"service {name}: nodePort needs type NodePort")
    port_spec: dict[str, Any] = {
        "name": protocol.lower(),
        "protocol": protocol,
        "port": port,
        "targetPort": target_port,
    }
    if node_port is not None:
        port_spec["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": run_labels(run_id)},
        "spec": {"type": service_type, "selector": dict(selector), "ports": [port_spec]},
    }


def render_manifest(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects as one `kind: List` JSON document for `kubectl apply -f -`."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=1)
