"""The tunnel family (flannel's vxlan backend, or the CI lab's flannel-shaped stand-in): every
node's flannel.1 is what flannel programs, read from the kernel and judged against the lab
file: bound to the private NIC with the private IP (not the management one: the classic
Vagrant mistake), VNI 1, port 8472, nolearning, its lease's .0/32, and per remote node a
permanent neighbour, an FDB entry and an onlink route. A missing piece is named with the peer
whose cells it breaks and the command that puts it back."""

from __future__ import annotations

import pytest

from e2e import checks
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
