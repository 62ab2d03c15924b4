"""What every node holds for the pod network, read from its kernel and files in one round trip
and judged against the lab file (e2e/hostnet.py): ip_forward, br_netfilter and
bridge-nf-call-iptables (the guide's steps 3 and 4); no firewall verdict that drops pod traffic
(Docker >= 1.13's FORWARD policy DROP) or the tunnel's UDP; no NAT between pods (TCP or UDP);
every route into the pod CIDR leads to a node of the lab, to the subnet that node holds, with
no strict reverse-path filter against an asymmetric route; the CNI config is the one the lab
renders, field by field; host-local has room for a new pod.

The matrices show that cells fail; this check names why, with the setting and its value."""

from __future__ import annotations

from e2e import checks, hostnet
from e2e.drivers.cni import CniDriver
from lab.model.config import Lab


def test_every_node_holds_what_its_pod_network_needs(
    lab: Lab, node_name: str, cni_driver: CniDriver
) -> None:
    outputs = cni_driver.runner.probe(node_name, *hostnet.probe_commands(lab))
    state = hostnet.parse_node_state(outputs, hostnet.arrival_device(lab))
    channel = cni_driver.runner.channels[node_name]
    checks.expect_no_problems(
        hostnet.node_problems(lab, lab.node(node_name), state),
        f"{node_name}: what the pod network needs",
        [channel.reproduce("iptables-save; ip -4 route; sysctl net.ipv4.ip_forward")],
    )
