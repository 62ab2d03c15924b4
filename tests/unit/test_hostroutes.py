"""The host-routes step (provision/podnet/hostroutes.py): its facts read from a node."""

from __future__ import annotations

from pathlib import Path

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
    assert hostroutes.ROUTES.read(LAB, NODE, outputs) == hostroutes.RoutesFacts(
        {path: "[Match]\nName=eth1\n"}, ("10.244.1.0/24 via 10.10.40.242 dev eth1",)
    )
