"""The guide's pod network: real flannel v0.14.0 on kubeadm (the DaemonSet of the upstream
manifest, with net-conf `Network` = the pod CIDR, `--iface` = the private NIC and the image
through a mirror). flanneld leases each node's subnet from the cluster (kubeadm's node
podCIDRs, in join order), so the lab file fixes their shape, not their order. Its backend is
vxlan (the guide's) or host-gw."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import yaml

from lab.model.config import check_image, check_url, guard_each, matches
from lab.model.problems import Problem
from lab.podnet.base import NIC_MTU, Backend, Restart, register
from lab.podnet.vxlan import VXLAN_DEVICE, VXLAN_OVERHEAD, VXLAN_PORT, vxlan_mtu_problems

if TYPE_CHECKING:
    from lab.model.config import Flannel, Lab, Node


FLANNEL_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
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

    def max_pod_mtu(self, lab: Lab) -> int:
        return NIC_MTU - (VXLAN_OVERHEAD if self.tunnels(lab) else 0)

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


FLANNEL = register(RealFlannel())
