"""Rendering (pure): what Vagrant, kubeadm, kubelet, flannel and the CNI plugins need."""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import yaml

from lab.hosts.hypervisor import HypervisorChoice
from lab.model.config import VXLAN_OVERHEAD, Flannel, Lab, Node
from lab.net import netmath

CNI_NETWORK_NAME = "netlab"
CNI_CONFLIST_PATH = "/etc/cni/net.d/10-netlab.conflist"
CNI_BIN_DIR = "/usr/lib/cni"
CNI_IPAM_DIR = "/var/lib/cni/networks"


# --- Vagrant ---------------------------------------------------------------------------------


def management_network_name(lab: Lab) -> str:
    """The libvirt network vagrant-libvirt creates for the lab's management NICs."""
    return f"{lab.prefix}mgmt"


def private_network_name(lab: Lab) -> str:
    return f"{lab.prefix}priv"


def render_vagrant(lab: Lab, hv: HypervisorChoice) -> dict[str, Any]:
    """The JSON the thin Vagrantfile loops over. All IP math happens here, none in Ruby."""
    private = lab.network.private
    return {
        "lab": lab.name,
        "box": {"name": lab.vm.box, "version": lab.vm.box_version, "url": lab.vm.box_url},
        "boot_timeout": lab.vm.boot_timeout_s,
        "libvirt": {
            **hv.as_libvirt_options(),
            "default_prefix": lab.prefix,
            "management_network_name": management_network_name(lab),
            "management_network_address": str(lab.network.management),
            "graphics_type": "none",
            "video_type": "none",
            # a lab's disks are disposable: QEMU need not pass the guest's flushes (containerd's
            # and journald's fsyncs) to the host's disk; lost only if the host itself crashes
            "disk_driver_opts": {"cache": "unsafe"},
        },
        "nodes": [
            {
                "name": node.name,
                "cpus": lab.cpus(node),
                "memory": lab.memory_mib(node),
                "private_network": {
                    "ip": str(node.ip),
                    "netmask": str(private.netmask),
                    "libvirt__network_name": private_network_name(lab),
                    "libvirt__dhcp_enabled": False,
                    "libvirt__forward_mode": "none",
                },
            }
            for node in lab.nodes
        ],
    }


# --- kubeadm / kubelet -----------------------------------------------------------------------


def render_kubeadm_init_args(lab: Lab) -> tuple[str, ...]:
    """`kubeadm init` exactly as the guide runs it, plus `--node-name` (the DNS-1123 hostname)."""
    k8s, plane = lab.kubernetes, lab.control_plane
    if k8s is None or plane is None:
        raise ValueError(f"lab {lab.name!r} has no Kubernetes control plane")
    args: tuple[str, ...] = (
        "kubeadm",
        "init",
        f"--kubernetes-version={k8s.version}",
        f"--apiserver-advertise-address={plane.ip}",
        "--image-repository",
        k8s.image_repository,
        f"--service-cidr={k8s.service_cidr}",
        f"--pod-network-cidr={k8s.pod_network_cidr}",
        f"--node-name={plane.name}",
    )
    if k8s.ignore_preflight_resources:
        args += ("--ignore-preflight-errors=NumCPU,Mem",)
    return args


def render_kubelet_sysconfig(node: Node) -> str:
    """/etc/sysconfig/kubelet: make kubelet report the private IP, not the management one."""
    return f"KUBELET_EXTRA_ARGS=--node-ip={node.ip}\n"


# --- flannel ---------------------------------------------------------------------------------


def render_flannel_net_conf(cidr: IPv4Network, flannel: Flannel) -> dict[str, Any]:
    return {"Network": str(cidr), "Backend": {"Type": flannel.backend}}


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
            net_conf.update(render_flannel_net_conf(lab.pod_network.cidr, flannel))
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


# --- host-routes pod network (the CI lab) ----------------------------------------------------


@dataclass(frozen=True)
class Route:
    destination: IPv4Network
    via: IPv4Address
    device: str


def node_pod_subnets(lab: Lab) -> dict[str, IPv4Network]:
    """Planned per-node pod subnets (host-routes): node i gets the i-th subnet of the CIDR."""
    pn = lab.pod_network
    subnets = netmath.node_subnets(pn.cidr, pn.subnet_len, len(lab.nodes))
    return {node.name: subnet for node, subnet in zip(lab.nodes, subnets, strict=True)}


def render_cni_conflist(lab: Lab, node: Node, nic_mtu: int | None = None) -> dict[str, Any]:
    """bridge + host-local with this node's pod subnet, then portmap (as flannel's conflist).
    On the flannel-shaped VXLAN network: what flannel's CNI plugin hands its bridge delegate
    (`isDefaultGateway`, mtu FLANNEL_MTU = the private NIC's MTU - 50, a route to the cluster
    network); `nic_mtu` is that NIC's MTU as the node reports it."""
    pn = lab.pod_network
    subnet = node_pod_subnets(lab)[node.name]
    if pn.driver == "vxlan":
        return render_vxlan_conflist(lab, subnet, flannel_mtu(nic_mtu))
    return _bridge_conflist(lab, subnet, lab.pod_mtu, "0.0.0.0/0", {})


def _bridge_conflist(
    lab: Lab, subnet: IPv4Network, mtu: int, route: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """The bridge plugin with host-local on the node's subnet and one route, then portmap."""
    pn = lab.pod_network
    bridge: dict[str, Any] = {
        "type": "bridge",
        "bridge": pn.bridge,
        "isGateway": True,
        **extra,
        "ipMasq": False,  # pod traffic must leave with the pod's own IP: no NAT by the bridge
        "hairpinMode": True,
        "mtu": mtu,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": str(subnet), "gateway": str(netmath.gateway(subnet))}]],
            "routes": [{"dst": route}],
            "dataDir": CNI_IPAM_DIR,
        },
    }
    return {
        "cniVersion": pn.cni_version,
        "name": CNI_NETWORK_NAME,
        "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": True}}],
    }


def render_cni_conflist_text(lab: Lab, node: Node, nic_mtu: int | None = None) -> str:
    """The conflist file as written on the node."""
    return json.dumps(render_cni_conflist(lab, node, nic_mtu), indent=2) + "\n"


def render_pod_routes(lab: Lab, node: Node) -> tuple[Route, ...]:
    """Host-gw: a route to every other node's pod subnet via that node's private IP."""
    subnets = node_pod_subnets(lab)
    return tuple(
        Route(subnets[peer.name], peer.ip, lab.vm.private_nic)
        for peer in lab.nodes
        if peer.name != node.name
    )


# --- the flannel-shaped VXLAN pod network (the CI tunnel lab) -------------------------------
#
# What flannel v0.14.0's vxlan backend programs on a node (backend/vxlan: flannel.1, VNI 1,
# port 8472, nolearning, bound to the public interface with its IP; the lease's .0/32 on the
# device; per remote node a permanent neighbour, an FDB entry and an onlink route), its
# /run/flannel/subnet.env, its --ip-masq rules, and the bridge config its CNI plugin delegates
# to. No flanneld runs: the leases are the lab file's allocation, the VTEP MACs are derived
# from the node addresses, and systemd-networkd keeps it all across reboots.

VXLAN_DEVICE = "flannel.1"
VXLAN_VNI = 1
VXLAN_PORT = 8472


def flannel_mtu(nic_mtu: int | None) -> int:
    """flannel's FLANNEL_MTU: the kernel gives a VXLAN device its lower device's MTU - 50."""
    if nic_mtu is None:
        raise ValueError(
            "the private NIC's MTU is needed for the VXLAN pod MTU (could not read it)"
        )
    return nic_mtu - VXLAN_OVERHEAD


def vtep_mac(node: Node) -> str:
    """A stable, locally administered unicast MAC for the node's VTEP: 0e:00 + its IPv4."""
    return "0e:00:" + ":".join(f"{b:02x}" for b in node.ip.packed)


@dataclass(frozen=True)
class Vtep:
    """One node's end of the tunnel: its VTEP MAC, its lease's .0 (on flannel.1) and the
    public address the other VTEPs send to (its private IP)."""

    node: str
    mac: str
    address: IPv4Address
    subnet: IPv4Network
    public_ip: IPv4Address


def vteps(lab: Lab) -> dict[str, Vtep]:
    subnets = node_pod_subnets(lab)
    return {
        n.name: Vtep(n.name, vtep_mac(n), subnets[n.name].network_address, subnets[n.name], n.ip)
        for n in lab.nodes
    }


def remote_vteps(lab: Lab, node: Node) -> tuple[Vtep, ...]:
    return tuple(v for name, v in vteps(lab).items() if name != node.name)


def render_vxlan_netdev(lab: Lab, node: Node) -> str:
    return (
        "# netlab: flannel v0.14.0's vxlan backend device, as flanneld creates it\n"
        f"[NetDev]\nName={VXLAN_DEVICE}\nKind=vxlan\nMACAddress={vtep_mac(node)}\n\n"
        f"[VXLAN]\nVNI={VXLAN_VNI}\nLocal={node.ip}\nDestinationPort={VXLAN_PORT}\n"
        "MacLearning=no\n"
    )


def render_vxlan_network(lab: Lab, node: Node) -> str:
    """flannel.1's address (the lease's .0/32) and, per remote node, what flanneld adds:
    neighbour (.0 -> VTEP MAC), FDB (VTEP MAC -> public IP), route (subnet via .0 onlink)."""
    own = vteps(lab)[node.name]
    parts = [
        "# netlab: flannel.1's address, and per remote node its neighbour, FDB entry and route\n"
        f"[Match]\nName={VXLAN_DEVICE}\n\n"
        f"[Network]\nAddress={own.address}/32\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    ]
    for v in remote_vteps(lab, node):
        parts.append(f"\n[Neighbor]\nAddress={v.address}\nLinkLayerAddress={v.mac}\n")
        parts.append(f"\n[BridgeFDB]\nMACAddress={v.mac}\nDestination={v.public_ip}\n")
        parts.append(f"\n[Route]\nDestination={v.subnet}\nGateway={v.address}\nGatewayOnLink=yes\n")
    return "".join(parts)


def render_vxlan_underlay_dropin() -> str:
    """The private NIC's .network drop-in that stacks flannel.1 on it (its `link`)."""
    return f"# netlab: flannel.1 rides on this NIC\n[Network]\nVXLAN={VXLAN_DEVICE}\n"


def render_subnet_env(lab: Lab, node: Node, mtu: int) -> str:
    """/run/flannel/subnet.env as flanneld writes it (FLANNEL_SUBNET: the lease's .1)."""
    subnet = node_pod_subnets(lab)[node.name]
    return (
        f"FLANNEL_NETWORK={lab.pod_network.cidr}\n"
        f"FLANNEL_SUBNET={netmath.gateway(subnet)}/{subnet.prefixlen}\n"
        f"FLANNEL_MTU={mtu}\n"
        "FLANNEL_IPMASQ=true\n"
    )


def render_flannel_masq_rules(lab: Lab, node: Node) -> tuple[tuple[str, ...], ...]:
    """flanneld --ip-masq's POSTROUTING rules (network/iptables.go): no NAT inside the
    cluster network; pod traffic leaving it is masqueraded; traffic from outside to this
    node's subnet is left alone; to other nodes' subnets it is masqueraded."""
    net, own = str(lab.pod_network.cidr), str(node_pod_subnets(lab)[node.name])
    return (
        ("-s", net, "-d", net, "-j", "RETURN"),
        ("-s", net, "!", "-d", "224.0.0.0/4", "-j", "MASQUERADE", "--random-fully"),
        ("!", "-s", net, "-d", own, "-j", "RETURN"),
        ("!", "-s", net, "-d", net, "-j", "MASQUERADE", "--random-fully"),
    )


def render_vxlan_conflist(lab: Lab, subnet: IPv4Network, mtu: int) -> dict[str, Any]:
    """flannel's bridge delegate: the default gateway in the pod, a route to the cluster
    network (flanneld masquerades traffic leaving it: FLANNEL_IPMASQ=true)."""
    return _bridge_conflist(lab, subnet, mtu, str(lab.pod_network.cidr), {"isDefaultGateway": True})


# --- everything `python -m lab render` writes ------------------------------------------------


def render_lab_files(
    lab: Lab, hv: HypervisorChoice, flannel_upstream: str | None
) -> dict[str, str]:
    """File name (relative to the lab's state dir) -> content."""
    files = {"vagrant.json": json.dumps(render_vagrant(lab, hv), indent=2) + "\n"}
    if lab.kubernetes is not None:
        files["kubeadm-init.args"] = "\n".join(render_kubeadm_init_args(lab)) + "\n"
        for node in lab.nodes:
            files[f"kubelet-{node.name}.sysconfig"] = render_kubelet_sysconfig(node)
    if lab.pod_network.driver == "flannel" and flannel_upstream is not None:
        files["kube-flannel.yml"] = render_flannel_manifest(lab, flannel_upstream)
    if lab.pod_network.driver == "host-routes":
        for node in lab.nodes:
            files[f"cni-{node.name}.conflist"] = render_cni_conflist_text(lab, node)
            routes = render_pod_routes(lab, node)
            files[f"routes-{node.name}.txt"] = "".join(
                f"{r.destination} via {r.via} dev {r.device}\n" for r in routes
            )
    if lab.pod_network.driver == "vxlan":  # as on a node whose private NIC has MTU 1500
        for node in lab.nodes:
            files[f"cni-{node.name}.conflist"] = render_cni_conflist_text(lab, node, 1500)
            files[f"vxlan-{node.name}.netdev"] = render_vxlan_netdev(lab, node)
            files[f"vxlan-{node.name}.network"] = render_vxlan_network(lab, node)
    return files
