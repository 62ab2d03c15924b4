"""The guide's pod network: real flannel v0.14.0 on kubeadm (the DaemonSet of the upstream
manifest, with net-conf `Network` = the pod CIDR, `--iface` = the private NIC and the image
through a mirror). flanneld leases each node's subnet from the cluster (kubeadm's node
podCIDRs, in join order), so the lab file fixes their shape, not their order. Its backend is
vxlan (the guide's) or host-gw."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import yaml

from lab.common.commands import cmd
from lab.model.config import SHA256, check_image, check_url, guard_each, matches
from lab.model.problems import Problem
from lab.net.cni import parse_flannel_subnet_env
from lab.podnet.base import (
    Backend,
    Read,
    ReadyCheck,
    Restart,
    register,
    routed_mtu_problems,
)
from lab.podnet.vxlan import VXLAN_DEVICE, VXLAN_OVERHEAD, VXLAN_PORT, vxlan_mtu_problems

if TYPE_CHECKING:
    from lab.model.config import Flannel, Lab, Node


FLANNEL_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
CNI_VERSION_RELEASE = re.compile(r"^([0-9]+)\.[0-9]+\.[0-9]+-[0-9A-Za-z.]+$")


def render_flannel_net_conf(lab: Lab, flannel: Flannel) -> dict[str, Any]:
    return {"Network": str(lab.pod_network.cidr), "Backend": {"Type": flannel.backend}}


def render_flannel_manifest(lab: Lab, upstream: str) -> str:
    """The upstream manifest with net-conf `Network` = pod CIDR, `--iface` and our image."""
    flannel = lab.pod_network.flannel
    if flannel is None:
        raise ValueError(f"lab {lab.name!r} does not use flannel")
    docs = [d for d in yaml.safe_load_all(upstream) if d is not None]
    patched_cm = patched_ds = 0
    for doc in docs:
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "kube-flannel-cfg":
            net_conf = json.loads(doc["data"]["net-conf.json"])
            net_conf.update(render_flannel_net_conf(lab, flannel))
            doc["data"]["net-conf.json"] = json.dumps(net_conf, indent=2) + "\n"
            patched_cm += 1
        if doc.get("kind") == "DaemonSet" and doc["metadata"]["name"].startswith("kube-flannel"):
            spec = doc["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                container["image"] = flannel.image
                if container["name"] == "kube-flannel":
                    args = [a for a in container["args"] if not a.startswith("--iface")]
                    if not flannel.ip_masq:
                        args = [a for a in args if a != "--ip-masq"]
                    container["args"] = [*args, f"--iface={lab.vm.private_nic}"]
            patched_ds += 1
    if patched_cm != 1 or patched_ds != 1:
        raise ValueError(
            f"upstream flannel manifest: expected one kube-flannel-cfg ConfigMap and one "
            f"kube-flannel DaemonSet, found {patched_cm} and {patched_ds}"
        )
    return yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the embedded JSON files) as readable `|` blocks, as upstream has."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def validate_flannel(fl: Flannel) -> Iterator[Iterator[Problem]]:
    """The flannel section's checks, one per field (each runs on its own)."""

    def version() -> Iterator[Problem]:
        if not matches(FLANNEL_VERSION, fl.version):
            yield Problem("pod_network.flannel.version", fl.version, "must look like v0.14.0")

    def sha() -> Iterator[Problem]:
        if not matches(SHA256, fl.manifest_sha256):
            yield Problem(
                "pod_network.flannel.manifest_sha256",
                fl.manifest_sha256,
                "must be 64 lowercase hex digits",
                "run sha256sum on the manifest",
            )

    def mirror() -> Iterator[Problem]:
        if fl.mirror_image:
            yield from check_image("pod_network.flannel.mirror_image", fl.mirror_image)

    yield version()
    yield check_url("pod_network.flannel.manifest_url", fl.manifest_url)
    yield sha()
    yield check_image("pod_network.flannel.image", fl.image)
    yield mirror()


class RealFlannel(Backend):
    name = "flannel"
    description = "flannel v0.14.0 on kubeadm, its DaemonSet from the upstream manifest"
    family = "tunnel"  # the guide's vxlan; `pod_network.flannel.backend: host-gw` routes
    provisioning = "provision.podnet.flannel"
    needs_kubernetes = True
    overhead = VXLAN_OVERHEAD
    sections = ("flannel",)

    def tunnels(self, lab: Lab) -> bool:
        fl = lab.pod_network.flannel
        return fl is not None and fl.backend == "vxlan"

    def dataplane(self, lab: Lab) -> str:
        fl = lab.pod_network.flannel
        return "vxlan" if fl is None else fl.backend

    def allots_subnets(self, lab: Lab) -> bool:
        return False  # kubeadm allocates flannel's, in join order

    def tunnel_device(self, lab: Lab) -> str | None:
        return VXLAN_DEVICE if self.tunnels(lab) else None

    def tunnel_port(self, lab: Lab) -> int | None:
        return VXLAN_PORT if self.tunnels(lab) else None  # flannel v0.14.0's vxlan default

    def validate(self, lab: Lab) -> Iterator[Problem]:
        pn = lab.pod_network
        if pn.flannel is None:
            yield Problem(
                "pod_network.flannel",
                message="is required when driver is flannel",
                fix="copy the flannel section of labs/guide-centos7.yaml",
            )
        else:
            yield from guard_each(validate_flannel(pn.flannel))
            if self.tunnels(lab):
                yield from vxlan_mtu_problems(lab)
            else:  # host-gw routes pod packets as they are
                yield from routed_mtu_problems(lab)
        k8s = lab.kubernetes
        m = None if k8s is None else CNI_VERSION_RELEASE.match(k8s.cni_package_version)
        if k8s is not None and m is not None and int(m[1]) >= 1:
            yield Problem(
                "kubernetes.cni_package_version",
                k8s.cni_package_version,
                "kubernetes-cni 1.x ships no flannel CNI plugin (flannel-io/flannel#1471) and "
                "the flannel manifest installs none: pods would stay ContainerCreating",
                "pin a 0.8.x release that ships it, e.g. 0.8.7-0",
            )

    def render_files(self, lab: Lab, flannel_upstream: str | None) -> dict[str, str]:
        if flannel_upstream is None:
            return {}
        return {"kube-flannel.yml": render_flannel_manifest(lab, flannel_upstream)}

    def restart(self, lab: Lab, node: Node) -> Restart:
        """The node's kube-flannel pod is deleted and the DaemonSet makes a new one. flannel
        v0.14.0 exits without tearing down: flannel.1, its FDB entries, neighbours, routes
        and iptables rules stay, and the new flanneld reuses them (backend/vxlan
        ensureLink keeps a compatible device). So no cell may fail meanwhile."""
        return Restart(daemonset="app=flannel", isolates=False)

    def reboot_checks(self, lab: Lab, node: Node) -> tuple[ReadyCheck, ...]:
        """After a hard reboot flanneld starts again in a new container, finds no flannel.1,
        makes one with a new MAC, writes it to the node's VtepMAC annotation and its lease
        to /run/flannel/subnet.env; the peers' flanneld see the annotation change and
        rewrite their FDB entry for the node. Until the last is done, cells to the node's
        pods are lost on the way: the heal waits for each, in that order."""
        plane = lab.control_plane.name if lab.control_plane is not None else node.name
        get_node = Read(plane, cmd("get", "node", node.name, "-o", "json", sudo=False), True)
        pods = Read(
            plane,
            cmd(
                "-n", "kube-system", "get", "pods", "-l", "app=flannel",
                "--field-selector", f"spec.nodeName={node.name}", "-o", "json", sudo=False,
            ),
            True,
        )  # fmt: skip
        mac = Read(node.name, cmd("cat", f"/sys/class/net/{VXLAN_DEVICE}/address", sudo=False))
        env = Read(node.name, cmd("cat", SUBNET_ENV, sudo=False))
        peers = tuple(
            Read(p.name, cmd("bridge", "fdb", "show", "dev", VXLAN_DEVICE, sudo=False))
            for p in lab.nodes
            if p.name != node.name
        )
        ip = str(node.ip)
        return (
            ReadyCheck(f"{node.name} Ready again", (get_node,), lambda o: node_ready(o[0])),
            ReadyCheck(
                f"{node.name}'s kube-flannel pod Running and Ready", (pods,),
                lambda o: flannel_pods_ready(o[0]),
            ),
            ReadyCheck(
                f"{SUBNET_ENV} written again on {node.name}", (env,),
                lambda o: o[0] is not None and bool(parse_flannel_subnet_env(o[0])),
            ),
            ReadyCheck(
                f"{node.name}'s {VXLAN_DEVICE} MAC is its VtepMAC annotation", (mac, get_node),
                lambda o: o[0] is not None and o[0].strip() == annotated_vtep_mac(o[1]),
            ),
            ReadyCheck(
                f"every peer's FDB sends {node.name}'s VtepMAC to {ip}", (get_node, *peers),
                lambda o: fdb_points_at(annotated_vtep_mac(o[0]), ip, o[1:]),
            ),
        )  # fmt: skip


SUBNET_ENV = "/run/flannel/subnet.env"
BACKEND_DATA = "flannel.alpha.coreos.com/backend-data"


def _node_json(text: str | None) -> dict[str, Any] | None:
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def node_ready(text: str | None) -> bool:
    """`kubectl get node NAME -o json`: its Ready condition is True."""
    doc = _node_json(text)
    conditions = (doc or {}).get("status", {}).get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


def annotated_vtep_mac(text: str | None) -> str | None:
    """The node's VtepMAC, as flanneld annotates it ({"VtepMAC": "..."} in backend-data)."""
    doc = _node_json(text)
    annotations = (doc or {}).get("metadata", {}).get("annotations") or {}
    try:
        data = json.loads(annotations.get(BACKEND_DATA) or "null")
    except ValueError:
        return None
    mac = data.get("VtepMAC") if isinstance(data, dict) else None
    return mac.lower() if isinstance(mac, str) and mac else None


def flannel_pods_ready(text: str | None) -> bool:
    """`kubectl get pods -l app=flannel --field-selector spec.nodeName=N -o json`: one or
    more, every one Running with every container ready."""
    doc = _node_json(text)
    items = (doc or {}).get("items")
    if not isinstance(items, list) or not items:
        return False
    for pod in items:
        status = pod.get("status", {}) if isinstance(pod, dict) else {}
        containers = status.get("containerStatuses") or []
        if status.get("phase") != "Running" or not containers:
            return False
        if not all(isinstance(c, dict) and c.get("ready") is True for c in containers):
            return False
    return True


def fdb_points_at(mac: str | None, ip: str, fdbs: Sequence[str | None]) -> bool:
    """Every peer's `bridge fdb show dev flannel.1` (text: iproute2 4.11 has no JSON for it)
    holds `MAC dst IP`."""
    if mac is None:
        return False
    for text in fdbs:
        if text is None:
            return False
        entries = {tuple(line.split()[:3]) for line in text.splitlines()}
        if (mac, "dst", ip) not in {(e[0].lower(), *e[1:]) for e in entries if len(e) == 3}:
            return False
    return True


FLANNEL = register(RealFlannel())
