"""The routed underlay's steps (provision/underlay.py): a node's route to the other segments
via the router on its own, kept by systemd-networkd (written, reloaded, configured; nothing
when it is there); the router's own steps (forwarding, no containerd) and the backend's
(bird on a BGP lab), applied to the router alone; none of it on a flat lab."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.common.commands import Output, cmd
from lab.model.labfile import load_lab
from lab.model.underlay import router_node
from provision import networkd, underlay
from provision.apply import provision
from provision.common import FORWARD
from provision.model import write_file
from provision.steps import dry_run, router_steps_for, steps_for
from tests.fakes import TEST_IMAGES
from tests.unit.fake_node import FakeNode, sets

ROOT = Path(__file__).resolve().parents[2]
VX = load_lab(ROOT / "labs" / "ci-debian12-routed-vxlan.yaml")
BGP = load_lab(ROOT / "labs" / "ci-debian12-routed-bgp.yaml")
FLAT = load_lab(ROOT / "labs" / "ci-debian12.yaml")
VAGRANT = "/etc/systemd/network/50-vagrant-eth1.network"
DROPIN = f"{VAGRANT}.d/netlab-underlay.conf"
WANTED = (
    "# netlab: the other segments of the routed underlay, via the router on this one\n"
    "\n[Route]\nDestination=10.10.50.0/23\nGateway=10.10.51.254\n"
)


def facts(files: dict[str, str], routes: tuple[str, ...] = ()) -> networkd.RouteFacts:
    return networkd.RouteFacts({VAGRANT: "[Match]\nName=eth1\n", **files}, routes)


def test_a_fresh_node_gets_the_route_to_the_other_segments_via_its_router() -> None:
    node2 = VX.node("node2")
    assert underlay.underlay_dropin(VX, node2) == WANTED
    assert underlay.plan_underlay(VX, node2, facts({})) == (
        write_file(DROPIN, WANTED),
        cmd("networkctl", "reload"),
        cmd("networkctl", "reconfigure", "eth1"),
    )


def test_a_node_with_its_route_plans_nothing_and_a_lost_route_is_configured_again() -> None:
    node2 = VX.node("node2")
    route = "10.10.50.0/23 via 10.10.51.254 dev eth1 proto static"
    assert underlay.plan_underlay(VX, node2, facts({DROPIN: WANTED}, (route,))) == ()
    assert underlay.plan_underlay(VX, node2, facts({DROPIN: WANTED})) == (
        cmd("networkctl", "reconfigure", "eth1"),
    )


def test_a_flat_lab_has_no_underlay_step_and_no_router_steps() -> None:
    assert underlay.node_steps(FLAT) == ()
    assert router_steps_for(FLAT) == ()
    assert underlay.UNDERLAY not in steps_for(FLAT, images=TEST_IMAGES)
    assert underlay.plan_underlay(FLAT, FLAT.node("node1"), facts({})) == ()


def test_a_routed_lab_places_the_underlay_route_before_the_pod_network() -> None:
    keys = [s.key for s in steps_for(VX, images=TEST_IMAGES)]
    assert keys.index("underlay-route") < keys.index("cni-config") < keys.index("vxlan")


def test_the_router_forwards_runs_no_containerd_and_on_a_bgp_lab_speaks_bgp() -> None:
    assert router_steps_for(VX) == (FORWARD, underlay.QUIET)
    assert router_steps_for(BGP)[:2] == (FORWARD, underlay.QUIET)
    assert [s.key for s in router_steps_for(BGP)] == ["ip-forward", "router-quiet", "router-bird"]
    router = router_node(BGP)
    planned = {p.step.key: p.commands for p in dry_run(BGP, router, router_steps_for(BGP))}
    assert planned["router-quiet"] == (cmd("systemctl", "disable", "--now", "containerd"),)
    assert planned["ip-forward"][-1] == cmd("sysctl", "-p", "/etc/sysctl.d/k8s-ip-forward.conf")
    assert planned["router-bird"][-1] == cmd("systemctl", "restart", "bird")
    done = underlay.QuietFacts(enabled=False, active=False)
    assert underlay.plan_quiet(BGP, router, done) == ()


def test_the_router_alone_is_provisioned_with_its_steps() -> None:
    router = router_node(VX)
    reads = {
        cmd("systemctl", "is-enabled", "containerd", sudo=False): lambda w: Output(
            0 if w["enabled"] else 1, "enabled\n" if w["enabled"] else "disabled\n"
        ),
        cmd("systemctl", "is-active", "containerd", sudo=False): lambda w: Output(
            0 if w["active"] else 3, "active\n" if w["active"] else "inactive\n"
        ),
    }
    writes = {cmd("systemctl", "disable", "--now", "containerd"): sets(enabled=False, active=False)}
    tor = FakeNode("tor", {"enabled": True, "active": True}, reads, writes)
    reports = provision(VX, {"tor": tor}, (underlay.QUIET,), machines=(router,))  # type: ignore[dict-item]
    assert [(r.node, r.changed, r.error) for r in reports] == [
        ("tor", ["step r1 'no container runtime on the router'"], "")
    ]
    assert tor.ran == [cmd("systemctl", "disable", "--now", "containerd")]


def test_the_router_disables_containerd_while_it_is_enabled_or_running() -> None:
    router = router_node(VX)
    quiet = (cmd("systemctl", "disable", "--now", "containerd"),)
    assert underlay.plan_quiet(VX, router, underlay.QuietFacts(enabled=True, active=False)) == quiet
    assert underlay.plan_quiet(VX, router, underlay.QuietFacts(enabled=False, active=True)) == quiet
    assert underlay.plan_quiet(VX, router, underlay.QuietFacts(enabled=True, active=True)) == quiet


def test_a_node_whose_private_nic_networkd_does_not_configure_is_named() -> None:
    no_file = networkd.RouteFacts({}, ())
    message = (
        "node2: no systemd-networkd .network file configures eth1 (looked in "
        "/etc/systemd/network); is the private network up?"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        underlay.plan_underlay(VX, VX.node("node2"), no_file)
