"""The CNI network config of the bridge-based backends (pure): the `bridge` plugin with
`host-local` on the node's pod subnet, then `portmap`, as flannel's conflist has them. The
host-routes backend gives pods a default route; the flannel-shaped VXLAN backend hands the
bridge what flannel's CNI plugin hands its delegate."""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Any

from lab.net import netmath
from lab.podnet.base import backend_of

if TYPE_CHECKING:
    from lab.model.config import Lab, Node

CNI_NETWORK_NAME = "netlab"
CNI_CONFLIST_PATH = "/etc/cni/net.d/10-netlab.conflist"
CNI_IPAM_DIR = "/var/lib/cni/networks"


def bridge_conflist(
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


def render_cni_conflist(lab: Lab, node: Node, nic_mtu: int | None = None) -> dict[str, Any]:
    """The node's CNI network config, as its backend renders it."""
    conflist = backend_of(lab).conflist(lab, node, nic_mtu)
    if conflist is None:
        raise ValueError(
            f"lab {lab.name}: the {lab.pod_network.driver} backend installs its own CNI config"
        )
    return conflist


def render_cni_conflist_text(lab: Lab, node: Node, nic_mtu: int | None = None) -> str:
    """The conflist file as written on the node."""
    return json.dumps(render_cni_conflist(lab, node, nic_mtu), indent=2) + "\n"
