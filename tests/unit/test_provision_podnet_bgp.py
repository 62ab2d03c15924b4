"""The BGP backend's step (provision/podnet/bgp.py): bird's configuration written (readable by
bird only), bird enabled and restarted when it changed or is not running; a node already done
plans nothing; a node without bird2 installs Debian's package through a mirror (retried)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lab.common.commands import cmd, render_remote
from lab.model.labfile import load_lab
from lab.podnet.bgp import render_bird_conf, render_router_bird_conf
from provision.model import write_file
from provision.podnet import bgp as steps
from provision.steps import steps_for
from tests.fakes import TEST_IMAGES

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "ci-debian12-routed-bgp.yaml")
NODE = LAB.node("node1")


def conf() -> str:
    """node1's bird.conf, rendered in the test (mutmut's workers fork after import)."""
    return render_bird_conf(LAB, NODE)


def test_a_fresh_node_gets_birds_configuration_and_a_restart() -> None:
    fresh = steps.bird_node().fresh(LAB, NODE)
    assert steps.bird_node().plan(LAB, NODE, fresh) == (
        write_file("/etc/bird/bird.conf", conf(), mode="0640", owner="bird"),
        cmd("systemctl", "restart", "bird"),
    )


def test_a_node_already_done_plans_nothing() -> None:
    done = steps.BirdFacts(installed=True, conf=conf(), enabled=True, active=True)
    assert steps.bird_node().plan(LAB, NODE, done) == ()


def test_bird_disabled_or_stopped_is_enabled_and_started_again() -> None:
    off = steps.BirdFacts(installed=True, conf=conf(), enabled=False, active=False)
    assert steps.plan_bird(conf(), off) == (
        cmd("systemctl", "enable", "bird"),
        cmd("systemctl", "restart", "bird"),
    )


def test_a_node_without_bird2_installs_it_through_a_mirror() -> None:
    bare = steps.BirdFacts(installed=False, conf=None, enabled=False, active=False)
    install, *_ = steps.plan_bird(conf(), bare)
    assert install.argv == ("apt-get", "install", "-y", "--no-install-recommends", "bird2")
    assert install.mirror


def test_the_router_step_renders_the_routers_configuration() -> None:
    router = steps.bird_router()
    planned = router.plan(LAB, NODE, router.fresh(LAB, NODE))
    assert planned[0] == write_file(
        "/etc/bird/bird.conf", render_router_bird_conf(LAB), mode="0640", owner="bird"
    )
    assert [s.key for s in steps.router_steps(LAB)] == [router.key]


def test_the_bgp_step_follows_the_cni_config_on_a_bgp_lab() -> None:
    keys = [s.key for s in steps_for(LAB, images=TEST_IMAGES)]
    assert keys.index("cni-config") < keys.index("bird") < keys.index("containerd")


def test_the_bird_step_reads_each_fact_with_its_command() -> None:
    facts = steps.bird_facts(LAB, NODE)
    assert {k: (f.name, render_remote(f.command)) for k, f in facts.items()} == {
        "installed": ("/usr/sbin/bird is a file", "sudo -n test -f /usr/sbin/bird"),
        "conf": ("file /etc/bird/bird.conf", "sudo -n cat /etc/bird/bird.conf"),
        "enabled": ("bird enabled", "systemctl is-enabled bird"),
        "active": ("bird active", "systemctl is-active bird"),
    }


def test_a_flat_bgp_lab_has_no_router_and_no_router_step() -> None:
    flat = replace(LAB, network=replace(LAB.network, segments=()))
    assert not flat.network.routed
    assert steps.router_steps(flat) == ()


def test_the_bgp_steps_are_numbered_titled_and_placed_as_the_plan_shows_them() -> None:
    node, router = steps.bird_node(), steps.bird_router()
    assert (node.number, node.key, node.title, node.scope) == (
        "11b",
        "bird",
        "Calico-shaped BGP (bird2)",
        "all",
    )
    assert (router.number, router.key, router.title, router.scope) == (
        "r2",
        "router-bird",
        "top-of-rack BGP (bird2)",
        "all",
    )
    section = "K8S网络实现方案 / 路由方案, as Calico does it: BGP (bird) announces pod subnets"
    assert node.section == router.section == section
    assert node.facts_type is router.facts_type is steps.BirdFacts
    assert node.facts is router.facts is steps.bird_facts
    assert node.fresh(LAB, NODE) == steps.BirdFacts(True, None, True, True)
