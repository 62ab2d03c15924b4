"""Pod-network backends: the registry and the protocol (lab/podnet/base.py); the shipped ones
are host-routes (hostroutes.py), the flannel-shaped VXLAN (vxlan.py), the Calico-shaped BGP
(bgp.py) and the guide's real flannel (flannel.py)."""

from lab.podnet.base import (
    NIC_MTU,
    Backend,
    Restart,
    backend,
    backend_of,
    names,
    node_pod_subnets,
    register,
    unregister,
)

__all__ = [
    "NIC_MTU",
    "Backend",
    "Restart",
    "backend",
    "backend_of",
    "names",
    "node_pod_subnets",
    "register",
    "unregister",
]
