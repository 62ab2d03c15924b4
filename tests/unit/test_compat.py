"""Compatibility as data: the CNI driver's commands chosen per systemd version, CHECK only for
a conflist that allows it, and every command the code can send to an el7 node in the el7
column (tools, PATH, feature versions)."""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e import cnirt
from e2e.diagnostics import NODE_STATE
from e2e.drivers.base import Container, PodRequest
from e2e.drivers.cni import CniDriver, client_probe, echo_server
from lab.common.commands import Output
from lab.hosts import compat
from lab.hosts.os import profile as os_profile
from lab.k8s import KUBECTL
from lab.model.labfile import load_lab
from lab.net import cni
from provision import el7
from provision.apply import provision
from provision.steps import dry_run, steps_for
from tests.fakes import TEST_IMAGES
from tests.unit.fake_node import FakeNode

ROOT = Path(__file__).resolve().parents[2]
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
UPSTREAM = (ROOT / "labs" / "vendor" / "kube-flannel-v0.14.0.yml").read_text()
FACTS = json.loads((ROOT / "tests" / "golden" / "provision" / "facts.json").read_text())


# --- the driver's choices ---------------------------------------------------------------------


def test_containers_start_without_collect_on_systemd_219_and_with_it_from_236() -> None:
    argv = ("socat", "TCP-LISTEN:8080,fork", "-")
    el7_start = compat.start_in_netns(os_profile("el7").systemd, "nl-a-echo", "nl-a", argv)
    assert el7_start == (
        "systemd-run",
        "--unit=nl-a-echo",
        "--quiet",
        "--property=KillMode=control-group",
        "ip",
        "netns",
        "exec",
        "nl-a",
        *argv,
    )
    debian = compat.start_in_netns(os_profile("debian12").systemd, "nl-a-echo", "nl-a", argv)
    assert debian[:3] == ("systemd-run", "--unit=nl-a-echo", "--collect")


def test_main_pids_are_read_with_or_without_systemctl_show_value() -> None:
    assert compat.main_pids_argv(219, ("a", "b")) == (
        "systemctl",
        "show",
        "-p",
        "MainPID",
        "a",
        "b",
    )
    assert "--value" in compat.main_pids_argv(252, ("a",))
    assert compat.parse_main_pids("MainPID=4242\n\nMainPID=0\n") == [4242, 0]
    assert compat.parse_main_pids("4242\n\n17\n") == [4242, 17]


@pytest.mark.parametrize(
    ("version", "allowed"),
    [("0.3.0", False), ("0.3.1", False), ("0.4.0", True), ("1.0.0", True)],
)
def test_cni_check_is_allowed_from_spec_0_4_0_on(version: str, allowed: bool) -> None:
    assert compat.cni_check_allowed(version) is allowed


FLANNEL_CONFLIST = {"cniVersion": "0.3.1", "name": "cbr0", "plugins": [{"type": "flannel"}]}


def test_the_cni_driver_starts_containers_the_el7_way_on_the_guide_lab() -> None:
    driver = CniDriver(GUIDE, {})
    driver._conflists["k8s-node1"] = ("/etc/cni/net.d/10-flannel.conflist", FLANNEL_CONFLIST)
    containers = (echo_server(), Container("client", ("sleep", "600")))
    setup = driver._setup(PodRequest("nl-x", "k8s-node1", containers))
    script = cnirt.setup_script([setup])
    assert "--collect" not in script
    assert "--value" not in script
    assert "systemctl show -p MainPID nl-x-echo nl-x-client" in script
    assert "systemd-run --unit=nl-x-echo --quiet" in script
    outcome = cnirt.parse_pods(
        "@@NETLAB-POD nl-x\n@@NETLAB-PIDS MainPID=4242 MainPID=4243\n@@NETLAB-EXIT nl-x 0\n"
    )["nl-x"]
    assert compat.parse_main_pids(" ".join(outcome.pids)) == [4242, 4243]


def test_the_contract_test_asks_compat_before_it_calls_check() -> None:
    source = (ROOT / "e2e" / "test_cni_contract.py").read_text()
    assert "compat.cni_check_allowed(" in source
    assert not compat.cni_check_allowed(str(FLANNEL_CONFLIST["cniVersion"]))


# --- every command that can reach an el7 node, collected ----------------------------------


@dataclass(frozen=True)
class Sent:
    source: str
    argv: tuple[str, ...]
    sudo: bool


def _words(nodes: list[ast.expr]) -> tuple[str, ...]:
    words: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.append(node.value)
        elif isinstance(node, ast.Starred) and getattr(node.value, "id", "") == "KUBECTL":
            words.extend(KUBECTL)
        elif isinstance(node, ast.Starred):
            words.append("<args>")
        else:
            words.append("<expr>")
    return tuple(words)


def _sudo(call: ast.Call, default: bool = True) -> bool:
    for kw in call.keywords:
        if kw.arg == "sudo" and isinstance(kw.value, ast.Constant):
            return bool(kw.value.value)
    return default


# files whose driver.exec(pod, ...) is the Kubernetes driver's `kubectl exec`: the argv runs
# in the pod's image (busybox, agnhost), not with the node's tools
EXEC_IN_IMAGE = {"e2e/test_kubernetes.py"}


def literal_commands(path: Path) -> Iterator[Sent]:
    """cmd(...), Command((...)) and the argv of driver.exec / exec_on_node, as written."""
    source = str(path.relative_to(ROOT))
    in_image = source in EXEC_IN_IMAGE
    for call in ast.walk(ast.parse(path.read_text())):
        if not isinstance(call, ast.Call):
            continue
        name = getattr(call.func, "id", getattr(call.func, "attr", ""))
        argv: tuple[str, ...] = ()
        if name == "cmd":
            argv = _words(call.args)
        elif name == "Command" and call.args and isinstance(call.args[0], ast.Tuple):
            argv = _words(call.args[0].elts)
        elif name == "exec_on_node" and len(call.args) > 1 and isinstance(call.args[1], ast.Tuple):
            argv = _words(call.args[1].elts)
        elif (
            name == "exec"
            and not in_image
            and len(call.args) > 2
            and isinstance(call.args[2], ast.Tuple)
        ):
            argv = _words(call.args[2].elts)
        if argv and not argv[0].startswith("<"):
            yield Sent(source, argv, _sudo(call))


def provisioning_commands() -> Iterator[Sent]:
    steps = steps_for(GUIDE, UPSTREAM)
    for node in GUIDE.nodes:
        for step in steps:
            if not step.applies_to(GUIDE, node):
                continue
            for c in step.commands(GUIDE, node):
                yield Sent(f"provision {step.key} (probe)", c.argv, c.sudo)
        for planned in dry_run(GUIDE, node, steps):
            for c in planned.commands:
                yield Sent(f"provision {planned.step.key} (fresh plan)", c.argv, c.sudo)
    by_key = {s.key: s for s in steps}
    for case in FACTS["guide-centos7"]:
        step = by_key[case["step"]]
        facts = {
            k: UPSTREAM if v == "@rendered-flannel-manifest" else v
            for k, v in case["facts"].items()
        }
        for c in step.plan(GUIDE, GUIDE.node(case["node"]), step.facts_from_json(facts)):
            yield Sent(f"provision {case['step']} ({case['case']})", c.argv, c.sudo)
    yield Sent("provision join command (input)", el7.JOIN_COMMAND.argv, el7.JOIN_COMMAND.sudo)
    save = el7.save_command(el7.e2e_hub_images(GUIDE))
    yield Sent("provision image archive (input)", save.argv, save.sudo)


def driver_commands() -> Iterator[Sent]:
    systemd = os_profile("el7").systemd
    el7_echo = echo_server(python=os_profile("el7").python)
    for container in (el7_echo, Container("client", client_probe("10.244.1.5"))):
        argv = compat.start_in_netns(systemd, "nl-x-echo", "nl-x", container.argv)
        yield Sent("CNI driver start_in_netns", argv, True)
    yield Sent("CNI driver main_pids", compat.main_pids_argv(systemd, ("nl-x-echo",)), True)
    conflist = {
        "cniVersion": "0.3.1",
        "name": "cbr0",
        "plugins": [{"type": "flannel"}, {"type": "portmap"}],
    }
    for index in (0, 1):
        inv = cni.invocation(
            "ADD", conflist, index, "nl-x", "/var/run/netns/nl-x", "eth0", "/opt/cni/bin", None
        )
        yield Sent(f"CNI driver plugin {inv.plugin}", inv.argv("/opt/cni/bin"), True)
    for delegate in ("bridge", "host-local", "loopback"):
        yield Sent(f"flannel delegates to {delegate}", (f"/opt/cni/bin/{delegate}",), True)
    yield from literal_commands(ROOT / "e2e" / "drivers" / "cni.py")


def e2e_commands() -> Iterator[Sent]:
    for title, argv in NODE_STATE:
        yield Sent(f"e2e/diagnostics.py NODE_STATE {title}", argv, True)
    for path in sorted((ROOT / "e2e").glob("*.py")):
        yield from literal_commands(path)


@functools.cache
def everything_sent_to_el7() -> tuple[Sent, ...]:
    return (*provisioning_commands(), *driver_commands(), *e2e_commands())


# Commands in our sources that never reach an el7 node, and why.
NOT_SENT_TO_EL7 = {
    ("e2e/faults.py", "networkctl"): "PodNetworkRestart on a lab without Kubernetes only",
    ("e2e/checks.py", "ip -4 route show"): "guide_state_problems: host-routes labs only",
    ("e2e/faults.py", "ctr"): "ContainerdRestart: labs with runtime: containerd (debian12) only",
    ("e2e/flow.py", "ctr"): "the CRI flow checks: labs with runtime: containerd only",
    ("e2e/flow.py", "kill"): "the CRI flow checks: labs with runtime: containerd only",
    ("e2e/faults.py", "iptables"): "the underlay faults: on the router VM of a routed "
    "underlay (network.segments: the debian12 path only)",
    ("e2e/faults.py", "tc"): "the underlay faults: on the router VM of a routed underlay",
}


def sent_to_el7() -> list[Sent]:
    def excluded(s: Sent) -> bool:
        return any(
            s.source == src and " ".join(s.argv).startswith(words) for src, words in NOT_SENT_TO_EL7
        )

    return [s for s in everything_sent_to_el7() if not excluded(s)]


def gap_key(sent: Sent, gap: compat.Gap) -> str:
    return f"{sent.source}: {' '.join(gap.argv)}"


@functools.cache
def el7_gaps() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for sent in sent_to_el7():
        for gap in compat.gaps(os_profile("el7"), sent.argv, sent.sudo):
            if gap.argv[0].startswith("<"):
                continue  # an argument the caller passes (checked where it is written)
            found.setdefault(gap_key(sent, gap), []).append(gap.reason)
    return found


def test_the_collection_sees_every_kind_of_command() -> None:
    sources = {s.source.split(" ")[0] for s in everything_sent_to_el7()}
    assert {"provision", "CNI", "e2e/faults.py", "e2e/diagnostics.py", "e2e/checks.py"} <= sources
    tools = {s.argv[0] for s in everything_sent_to_el7()}
    assert {"yum", "systemd-run", "nsenter", "ethtool", "iptables-save", "journalctl"} <= tools


def test_every_command_sent_to_an_el7_node_is_in_the_el7_column() -> None:
    gaps = el7_gaps()
    assert gaps == {}, "\n".join(f"{k}: {v}" for k, v in gaps.items())


def test_every_ci_lab_provisioning_command_is_in_the_debian12_column() -> None:
    steps = steps_for(CI, images=TEST_IMAGES)
    problems = []
    for node in CI.nodes:
        commands = [c for s in steps for c in s.commands(CI, node)]
        commands += [c for p in dry_run(CI, node, steps) for c in p.commands]
        for c in commands:
            problems += [str(g) for g in compat.gaps(os_profile("debian12"), c.argv, c.sudo)]
    assert problems == []


# --- the table itself ----------------------------------------------------------------------


@pytest.mark.parametrize("family", ["el7", "debian12"])
def test_every_tool_names_a_component_with_a_version(family: str) -> None:
    for tool in os_profile(family).tools.values():
        assert tool.component in os_profile(family).components, tool
        assert tool.path.startswith("/"), tool
        assert tool.name == tool.path.rsplit("/", 1)[1] or tool.name == tool.path, tool


def test_features_name_known_tools_and_components() -> None:
    for feature in compat.FEATURES:
        assert any(feature.tool in os_profile(f).tools for f in ("el7", "debian12")), feature
        assert feature.component in os_profile("el7").components, feature


def test_a_sbin_tool_without_sudo_is_a_gap_on_el7_only() -> None:
    (gap,) = compat.gaps(os_profile("el7"), ("getenforce",), sudo=False)
    assert "not on a non-login SSH PATH" in gap.reason
    assert compat.gaps(os_profile("el7"), ("getenforce",), sudo=True) == []
    assert compat.gaps(os_profile("debian12"), ("ip", "link", "show"), sudo=False) == []


def test_commands_are_read_through_wrappers_and_scripts() -> None:
    script = (
        "install -D -m 0600 /dev/stdin /x <<'NETLAB_STDIN'\n{not: a command}\nNETLAB_STDIN\n"
        'for f in /etc/cni/net.d/*; do echo "== $f"; cat "$f"; done\n'
        "systemd-run --unit=u --quiet ip netns exec ns timeout 5 socat - -"
    )
    found = [c[0] for c in compat.commands_in(("sudo", "-n", "sh", "-ec", script))]
    assert found == ["sh", "install", "cat", "systemd-run", "ip", "timeout", "socat"]


# --- the probe steps: fail early and clearly when a node lacks a tool ---------------------


def tools_facts(family: str, step_key: str, drop: str = "", systemd: int = 0) -> Any:
    steps = {s.key: s for s in steps_for(GUIDE if family == "el7" else CI, UPSTREAM, TEST_IMAGES)}
    step = steps[step_key]
    lab = GUIDE if family == "el7" else CI
    facts = step.fresh(lab, lab.nodes[0])
    found = tuple(line if line.split()[0] != drop else f"{drop} -" for line in facts.found)
    return step, lab, type(facts)(found, systemd or facts.systemd)


def test_a_node_with_every_tool_passes_both_checks() -> None:
    for family in ("el7", "debian12"):
        for key in ("tools-on-box", "tools-needed"):
            step, lab, facts = tools_facts(family, key)  # type: ignore[arg-type]
            assert step.check
            assert step.plan(lab, lab.nodes[0], facts) == ()


def test_a_missing_tool_fails_naming_it_its_package_and_who_needs_it() -> None:
    step, lab, facts = tools_facts("el7", "tools-needed", drop="socat")
    with pytest.raises(ValueError, match="socat is missing") as info:
        step.plan(lab, lab.node("k8s-node1"), facts)
    message = str(info.value)
    assert message.startswith("k8s-node1 lacks what the harness relies on")
    assert "(package socat; used by the CNI driver (echo server))" in message


def test_tools_provisioning_installs_are_checked_only_at_the_end() -> None:
    _step, _lab, facts = tools_facts("el7", "tools-on-box")
    names = {line.split()[0] for line in facts.found}
    assert "socat" not in names
    assert "kubectl" not in names
    assert {"systemd-run", "nsenter", "getenforce"} <= names


def test_a_systemd_older_than_the_table_fails_early() -> None:
    step, lab, facts = tools_facts("el7", "tools-on-box", systemd=208)
    with pytest.raises(ValueError, match="systemd 208 is older than 219"):
        step.plan(lab, lab.nodes[0], facts)


def test_the_tools_are_looked_up_through_sudo_in_one_probe_command() -> None:
    step, lab, _ = tools_facts("el7", "tools-on-box")
    lookup, version = step.commands(lab, lab.nodes[0])
    assert lookup.sudo
    assert lookup.argv[:2] == ("sh", "-c")
    assert version.argv == ("systemctl", "--version")
    out = step.read_positional(
        lab,
        lab.nodes[0],
        [
            Output(0, "systemctl /usr/bin/systemctl\nsocat -\n"),
            Output(0, "systemd 219\n+PAM +AUDIT +SELINUX\n"),
        ],
    )
    assert out.found == ("systemctl /usr/bin/systemctl", "socat -")
    assert out.systemd == 219
    with pytest.raises(ValueError, match="cannot read the systemd version"):
        step.read_positional(lab, lab.nodes[0], [Output(0, "x /x\n"), Output(127, "")])


def test_provisioning_stops_at_step_0_on_a_node_that_lacks_a_box_tool() -> None:
    step, lab, facts = tools_facts("debian12", "tools-on-box", drop="nsenter")
    (lookup, version) = step.commands(lab, lab.nodes[0])
    others = [c for s in steps_for(CI, images=TEST_IMAGES)[1:] for c in s.commands(CI, CI.nodes[0])]
    reads = {
        **{c: (lambda w: Output(0, "")) for c in others},
        lookup: lambda w: Output(0, "\n".join(facts.found) + "\n"),
        version: lambda w: Output(0, "systemd 252 (252.19-1~deb12u1)\n"),
    }
    node = FakeNode("node1", {}, reads, {})
    lab1 = dataclasses.replace(CI, nodes=CI.nodes[:1])
    (report,) = provision(lab1, {"node1": node}, steps_for(CI, images=TEST_IMAGES))
    assert report.error.startswith("step 0 'tools on the box' failed on node1: node1 lacks")
    assert "nsenter is missing (package util-linux" in report.error
    assert node.ran == [], "nothing was changed on the node"
