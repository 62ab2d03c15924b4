"""The host-routes step (provision/podnet/hostroutes.py): its facts read from a node."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.common.commands import Output
from lab.model.labfile import load_lab
from provision.podnet import hostroutes

LAB = load_lab(Path(__file__).resolve().parents[2] / "labs" / "ci-debian12.yaml")
NODE = LAB.node("node1")


def test_the_routes_step_reads_the_networkd_files_and_the_routes() -> None:
    facts = hostroutes.ROUTES.facts(LAB, NODE)
    path = "/etc/systemd/network/50-vagrant-eth1.network"
    outputs = {
        facts["network_files"].command: Output(0, f"{path}:[Match]\n{path}:Name=eth1\n"),
        facts["routes"].command: Output(0, "10.244.1.0/24 via 10.10.40.242 dev eth1\n"),
    }
    assert hostroutes.ROUTES.read(LAB, NODE, outputs) == hostroutes.RouteFacts(
        {path: "[Match]\nName=eth1\n"}, ("10.244.1.0/24 via 10.10.40.242 dev eth1",)
    )


def test_each_other_nodes_subnet_is_one_route_section_of_the_dropin() -> None:
    third = dataclasses.replace(LAB.nodes[-1], name="node3", ip=IPv4Address("10.10.40.243"))
    lab = dataclasses.replace(LAB, nodes=(*LAB.nodes, third))
    assert hostroutes.routes_dropin(lab, lab.node("node1")) == (
        "# netlab: routes to the other nodes' pod subnets (host-gw)\n"
        "\n[Route]\nDestination=10.244.1.0/24\nGateway=10.10.40.242\n"
        "\n[Route]\nDestination=10.244.2.0/24\nGateway=10.10.40.243\n"
    )


def test_without_a_network_file_for_the_private_nic_the_routes_cannot_be_planned() -> None:
    facts = hostroutes.RouteFacts({}, ())
    with pytest.raises(ValueError, match="no systemd-networkd") as err:
        hostroutes.plan_routes(LAB, NODE, facts)
    assert str(err.value) == (
        "node1: no systemd-networkd .network file configures eth1 (looked in "
        "/etc/systemd/network); is the private network up?"
    )
