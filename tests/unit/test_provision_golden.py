"""Provisioning plans: facts in, commands out (golden), and the guide's order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.common.commands import Output, render_shown
from lab.common.redact import redact
from lab.model.config import Lab
from lab.model.labfile import load_lab
from lab.podnet.bridge import render_cni_conflist_text
from provision import containerd, debian12, el7
from provision.common import HOSTNAME
from provision.model import AnyStep
from provision.podnet import hostroutes as hostroutes_steps
from provision.steps import dry_run, phases, render_plan, steps_for
from tests.fakes import TEST_IMAGES
from tests.unit.golden import golden_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "provision"
UPSTREAM = (ROOT / "labs" / "vendor" / "kube-flannel-v0.14.0.yml").read_text()
FACTS = json.loads((GOLDEN / "facts.json").read_text())
LABS = {name: load_lab(ROOT / "labs" / f"{name}.yaml") for name in ("guide-centos7", "ci-debian12")}
CASES = [(lab, case) for lab in LABS for case in FACTS[lab]]
IMAGES = TEST_IMAGES


def steps_by_key(lab: Lab) -> dict[str, AnyStep]:
    return {s.key: s for s in steps_for(lab, UPSTREAM, IMAGES)}


def placeholder(lab: Lab, node: str, value: Any) -> Any:
    """Facts that equal what we render are written as @placeholders in the golden file."""
    rendered = {
        "@rendered-flannel-manifest": lambda: el7.render_flannel_manifest(lab, UPSTREAM),
        "@rendered-routes-dropin": lambda: hostroutes_steps.routes_dropin(lab, lab.node(node)),
        "@rendered-conflist": lambda: render_cni_conflist_text(lab, lab.node(node)),
        "@rendered-bridge-netdev": lambda: debian12.bridge_netdev(lab, lab.node(node)),
        "@rendered-veth-link": lambda: debian12.VETH_LINK_CONTENT,
        "@rendered-runtime-unit": lambda: containerd.render_runtime_unit(
            f"/usr/bin/{lab.oci_runtime}", containerd.runtime_path(lab.oci_runtime)
        ),
        "@rendered-runtime-dropin": lambda: containerd.render_containerd_dropin(
            containerd.runtime_path(lab.oci_runtime)
        ),
    }
    return rendered[value]() if isinstance(value, str) and value in rendered else value


def planned(lab_name: str, case: dict[str, Any]) -> list[str]:
    lab = LABS[lab_name]
    step = steps_by_key(lab)[case["step"]]
    facts = {
        k: {p: placeholder(lab, case["node"], c) for p, c in v.items()}
        if isinstance(v, dict)
        else placeholder(lab, case["node"], v)
        for k, v in case["facts"].items()
    }
    plan = step.plan(lab, lab.node(case["node"]), step.facts_from_json(facts))
    return [redact(render_shown(c), c.secrets) for c in plan]


def case_id(item: tuple[str, dict[str, Any]]) -> str:
    lab, case = item
    return f"{lab}:{case['step']}:{case['case']}"


def expected_commands() -> dict[str, list[str]]:
    actual = json.dumps({case_id(c): planned(*c) for c in CASES}, indent=1, ensure_ascii=False)
    return dict(json.loads(golden_text(GOLDEN / "commands.json", actual + "\n")))


EXPECTED = expected_commands()


@pytest.mark.parametrize("item", CASES, ids=[case_id(c) for c in CASES])
def test_golden_plan(item: tuple[str, dict[str, Any]]) -> None:
    assert planned(*item) == EXPECTED[case_id(item)]


@pytest.mark.parametrize("item", CASES, ids=[case_id(c) for c in CASES])
def test_done_means_empty_plan_and_fresh_means_work(item: tuple[str, dict[str, Any]]) -> None:
    commands = planned(*item)
    if item[1]["case"].startswith("done"):
        assert commands == []
    else:
        assert commands, "a case that is not done must plan something"


@pytest.mark.parametrize("lab_name", list(LABS))
def test_every_step_has_a_done_and_a_work_golden_case(lab_name: str) -> None:
    cases = {(c["step"], c["case"].split("-")[0]) for c in FACTS[lab_name]}
    for key, step in steps_by_key(LABS[lab_name]).items():
        if step.check:
            continue  # checks plan nothing or fail: tests/unit/test_compat.py
        assert (key, "done") in cases, f"{key}: no 'done' case"
        assert any(step == key and kind != "done" for step, kind in cases), f"{key}: no work case"


@pytest.mark.parametrize("lab_name", list(LABS))
def test_a_node_fresh_from_its_box_has_work_in_every_step(lab_name: str) -> None:
    """`plan` (dry run) starts from each step's fresh facts: none may look already done."""
    lab = LABS[lab_name]
    for step in steps_by_key(lab).values():
        for node in lab.nodes:
            if step.applies_to(lab, node):
                planned = step.plan(lab, node, step.fresh(lab, node))
                # a check passes on a box as the compatibility table describes it
                assert bool(planned) is not step.check, f"{step.key} on {node.name}"


def test_guide_plan_lists_the_guides_steps_in_order_for_every_node() -> None:
    lab = LABS["guide-centos7"]
    steps = steps_for(lab, UPSTREAM)
    numbers = {node.name: [p.step.number for p in dry_run(lab, node, steps)] for node in lab.nodes}
    common = ["0", "1", "2", "3", "4", "5", "6a", "6", "7", "8", "8a", "8b"]
    assert numbers["k8s-master"] == [
        *common,
        *("9", "10", "11a", "11b", "11", "12", "13a", "14", "15"),
    ]
    assert numbers["k8s-node1"] == [*common, "11a", "11b", "13", "13a", "14"]
    assert numbers["k8s-node2"] == numbers["k8s-node1"]


def test_guide_phases_put_the_control_plane_before_the_workers_join() -> None:
    lab = LABS["guide-centos7"]
    order = [
        ([n.name for n in nodes], [s.number for s in steps])
        for nodes, steps in phases(lab, steps_for(lab, UPSTREAM))
    ]
    everyone = ["k8s-master", "k8s-node1", "k8s-node2"]
    assert order == [
        (everyone, ["0", "1", "2", "3", "4", "5", "6a", "6", "7", "8", "8a", "8b"]),
        (["k8s-master"], ["9", "10", "11a", "11b"]),
        (["k8s-node1", "k8s-node2"], ["11a", "11b"]),  # Docker Hub images: the master's copies
        (["k8s-master"], ["11", "12"]),
        (["k8s-node1", "k8s-node2"], ["13"]),
        (everyone, ["13a", "14"]),
        (["k8s-master"], ["15"]),
    ]


@pytest.mark.parametrize("lab_name", ["guide-centos7", "guide-centos7-global"])
def test_the_guide_labs_whole_plan_is_pinned(
    lab_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m lab plan LAB` word for word, every node (tests/golden/provision/plan-LAB.txt;
    NETLAB_UPDATE_GOLDEN=1 rewrites it: read its diff)."""
    from app import cli

    assert cli.main(["plan", lab_name]) == 0
    printed = capsys.readouterr().out
    assert printed == golden_text(GOLDEN / f"plan-{lab_name}.txt", printed)


def test_kubeadm_init_in_the_plan_is_the_guides_command() -> None:
    lab = LABS["guide-centos7"]
    plan = render_plan(
        lab.node("k8s-master"), dry_run(lab, lab.node("k8s-master"), steps_for(lab, UPSTREAM))
    )
    assert (
        "sudo -n kubeadm init --kubernetes-version=1.18.1 --apiserver-advertise-address="
        "10.10.10.241 --image-repository registry.aliyuncs.com/google_containers "
        "--service-cidr=10.1.0.0/16 --pod-network-cidr=10.244.0.0/16 --node-name=k8s-master"
    ) in plan


def test_ci_plan_has_no_kubernetes_steps() -> None:
    lab = LABS["ci-debian12"]
    keys = [s.key for s in steps_for(lab, images=IMAGES)]
    assert keys == [
        "tools-on-box",
        "bridge-nf",
        "ip-forward",
        "swap",
        "hostname",
        "cni-config",
        "pod-routes",
        "containerd",
        "tools-needed",
    ]


def test_a_lab_with_containerd_needs_its_images_to_plan() -> None:
    with pytest.raises(ValueError, match="runs containerd: its steps need the images"):
        steps_for(LABS["ci-debian12"])


def test_an_unreadable_hosts_file_is_an_error_not_an_empty_file() -> None:
    lab = LABS["guide-centos7"]
    with pytest.raises(ValueError, match="cannot read /etc/hosts"):
        HOSTNAME.read_positional(
            lab, lab.node("k8s-master"), (Output(0, "k8s-master\n"), Output(1, ""))
        )
