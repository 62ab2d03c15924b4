"""The tunnel family (flannel's vxlan backend, or the CI lab's flannel-shaped stand-in): every
node's flannel.1 is what flannel programs, read from the kernel and judged against the lab
file: bound to the private NIC with the private IP (not the management one: the classic
Vagrant mistake), VNI 1, port 8472, nolearning, its lease's .0/32, and per remote node a
permanent neighbour, an FDB entry and an onlink route. A missing piece is named with the peer
whose cells it breaks and the command that puts it back.

And the tunnel proven by its packets: every ordered pair of nodes sends tagged datagrams from
each of its pods and from the node to each pod of the other node, and the kernel must have
counted them as encapsulated packets leaving the one node's private NIC and arriving at the
other's, and through the tunnel device (lab/podnet/proof.py). A pair whose packets crossed
some other way fails with the route its source node took."""

from __future__ import annotations

from typing import Any

import pytest

from e2e import checks, tunnelproof
from e2e.drivers.base import Driver, Pod
from e2e.drivers.cni import CniDriver
from lab.model.config import Lab
from lab.podnet import backend_of, tunnel


def test_every_node_programs_the_tunnel_as_flannel_does(
    lab: Lab, node_name: str, cni_driver: CniDriver
) -> None:
    if not backend_of(lab).programs_tunnel:
        pytest.skip(
            "needs a pod network whose tunnel the lab file defines (the flannel-shaped VXLAN "
            "lab, e.g. --lab ci-debian12-vxlan); real flannel picks its own VTEP MACs"
        )
    outputs = cni_driver.runner.probe(node_name, *tunnel.probe_tunnel_state())
    state = tunnel.parse_tunnel_state(*(o.stdout if o.ok else "" for o in outputs))
    checks.expect_no_problems(
        tunnel.tunnel_problems(lab, lab.node(node_name), state),
        f"flannel.1 on {node_name}",
        [cni_driver.runner.channels[node_name].reproduce("ip -d link show flannel.1")],
    )


def test_every_node_pair_proves_by_its_packets_that_pod_traffic_takes_the_tunnel(
    lab: Lab, fleet: dict[tuple[str, int], Pod[Any]], driver: Driver[Any], run_id: str
) -> None:
    if not backend_of(lab).tunnels(lab):
        pytest.skip(
            "needs a tunnel (a VXLAN pod network, e.g. --lab ci-debian12-vxlan): on a routing "
            "backend pod packets cross as they are"
        )
    pods = [fleet[s] for s in sorted(fleet)]
    checks.expect_no_problems(
        tunnelproof.prove_crossings(driver, lab, pods, f"{run_id}-{driver.name}"),
        f"pod packets between nodes, counted on the tunnel [{driver.name}]",
    )
