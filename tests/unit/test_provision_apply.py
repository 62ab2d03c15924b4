"""The applier with strict fake nodes: probe -> plan -> apply -> re-probe, one probe round trip
per node and phase (shared facts probed once), non-convergence is an error, failures on several
nodes are all reported, and only mirror commands are retried, within a bound."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.adapters.protocols import RemoteResult
from lab.common import waits
from lab.common.commands import Command, Output, cmd, render_probe, render_remote
from lab.hosts.facts import AnyFact, command_ok, file_text
from lab.model.config import Lab, Node
from lab.model.labfile import load_lab
from provision import el7
from provision.apply import Applier, provision
from provision.model import AnyStep, Step, write_file
from provision.steps import inputs_for, steps_for
from tests.fakes import TEST_IMAGES
from tests.unit.fake_node import FakeNode, World, flag, sets, text

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
NO_WAIT = waits.Policy("test mirror", timeout_s=60, interval_s=0, max_attempts=3)


@dataclass(frozen=True)
class FileFacts:
    content: str | None
    shared: str | None = None


def file_step(key: str, path: str, content: str, shared: str = "") -> Step[FileFacts]:
    """A step that writes `content` to `path`; optionally also reads a shared file."""

    def facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
        found: dict[str, AnyFact] = {"content": file_text(path)}
        if shared:
            found["shared"] = file_text(shared)
        return found

    def plan(lab: Lab, node: Node, f: FileFacts) -> tuple[Command, ...]:
        return () if f.content == content else (write_file(path, content),)

    return Step(
        number=key,
        key=key,
        title=key,
        section="test",
        scope="all",
        facts_type=FileFacts,
        facts=facts,
        plan=plan,
        fresh=lambda lab, node: FileFacts(None),
    )


A = file_step("a", "/etc/a", "A\n", shared="/etc/shared")
B = file_step("b", "/etc/b", "B\n", shared="/etc/shared")
READS = {
    cmd("cat", "/etc/a"): text("a"),
    cmd("cat", "/etc/b"): text("b"),
    cmd("cat", "/etc/shared"): text("shared"),
}
WRITES = {
    write_file("/etc/a", "A\n"): sets(a="A\n"),
    write_file("/etc/b", "B\n"): sets(b="B\n"),
}


def fake(name: str, world: World, reads: dict = READS, writes: dict = WRITES) -> FakeNode:  # type: ignore[type-arg]
    return FakeNode(name, world, reads, writes)


def run(lab: Lab, nodes: dict[str, FakeNode], steps: tuple[AnyStep, ...], **kw: object) -> list:  # type: ignore[type-arg]
    sleeps: list[float] = []
    reports = provision(lab, nodes, steps, sleep=sleeps.append, policy=NO_WAIT, **kw)  # type: ignore[arg-type]
    return reports


def test_a_fresh_node_is_probed_once_planned_applied_and_reprobed() -> None:
    nodes = {n: fake(n, {"shared": "s"}) for n in CI.node_names}
    reports = run(CI, nodes, (A, B))
    node = nodes["node1"]
    # one round trip for the phase (the shared file once), then one after each change
    assert node.round_trips == [
        (cmd("cat", "/etc/a"), cmd("cat", "/etc/shared"), cmd("cat", "/etc/b")),
        (cmd("cat", "/etc/a"), cmd("cat", "/etc/shared"), cmd("cat", "/etc/b")),
        (cmd("cat", "/etc/b"), cmd("cat", "/etc/shared")),
    ]
    assert node.ran == [write_file("/etc/a", "A\n"), write_file("/etc/b", "B\n")]
    assert [(r.node, r.changed, r.commands, r.error) for r in reports] == [
        (n, ["step a 'a'", "step b 'b'"], 2, "") for n in CI.node_names
    ]


def test_a_node_already_done_costs_one_probe_round_trip_and_runs_nothing() -> None:
    done = {"a": "A\n", "b": "B\n", "shared": "s"}
    nodes = {n: fake(n, dict(done)) for n in CI.node_names}
    reports = run(CI, nodes, (A, B))
    assert [len(n.round_trips) for n in nodes.values()] == [1, 1]
    assert [n.ran for n in nodes.values()] == [[], []]
    assert all(r.done == ["step a 'a'", "step b 'b'"] and not r.changed for r in reports)


def test_a_step_that_does_not_converge_is_an_error_naming_what_it_still_plans() -> None:
    stuck = {write_file("/etc/a", "A\n"): sets(), write_file("/etc/b", "B\n"): sets(b="B\n")}
    nodes = {n: fake(n, {}, writes=stuck) for n in CI.node_names}
    reports = run(CI, nodes, (A, B))
    for report in reports:
        assert report.error.startswith(f"step a 'a' failed on {report.node}: did not converge")
        assert "install -D -m 0644 /dev/stdin /etc/a" in report.error
    assert all(write_file("/etc/b", "B\n") not in n.ran for n in nodes.values())


def test_failures_on_several_nodes_are_all_reported_and_later_phases_do_not_run() -> None:
    guide_steps = (
        file_step("a", "/etc/a", "A\n"),
        dataclasses.replace(file_step("p", "/etc/p", "P\n"), scope="control-plane"),
    )
    broken = {write_file("/etc/a", "A\n"): lambda world: 1}
    nodes = {n: fake(n, {}, writes=broken) for n in GUIDE.node_names}
    reports = run(GUIDE, nodes, guide_steps)
    assert [r.node for r in reports if r.error] == list(GUIDE.node_names)
    assert all("exited 1" in r.error for r in reports)
    assert all(cmd("cat", "/etc/p") not in sum(n.round_trips, ()) for n in nodes.values())


PKG = "/usr/bin/tool"
INSTALL = cmd("apt-get", "install", "-y", "tool", mirror=True)
CONFIGURE = cmd("tool", "--configure")


@dataclass(frozen=True)
class ToolFacts:
    installed: bool


def tool_step(command: Command) -> Step[ToolFacts]:
    return Step(
        number="t",
        key="tool",
        title="tool",
        section="test",
        scope="all",
        facts_type=ToolFacts,
        facts=lambda lab, node: {"installed": command_ok("tool", cmd("test", "-x", PKG))},
        plan=lambda lab, node, f: () if f.installed else (command,),
        fresh=lambda lab, node: ToolFacts(False),
    )


def flaky(failures: int) -> object:
    calls = [0]

    def write(world: World) -> int:
        calls[0] += 1
        if calls[0] <= failures:
            return 1
        world["tool"] = True
        return 0

    return write


@pytest.mark.parametrize(
    ("command", "failures", "runs", "ok"),
    [(INSTALL, 2, 3, True), (INSTALL, 5, 3, False), (CONFIGURE, 1, 1, False)],
    ids=["mirror-retried-until-it-works", "mirror-retries-are-bounded", "others-never-retried"],
)
def test_only_mirror_commands_are_retried_within_a_bound(
    command: Command, failures: int, runs: int, ok: bool
) -> None:
    reads = {cmd("test", "-x", PKG): flag("tool")}
    node = FakeNode("node1", {}, reads, {command: flaky(failures)})  # type: ignore[dict-item]
    lab = dataclasses.replace(CI, nodes=CI.nodes[:1])
    (report,) = run(lab, {"node1": node}, (tool_step(command),))
    assert len(node.ran) == runs
    assert (report.error == "") is ok, report.error


def test_the_fake_node_fails_a_test_on_any_command_nobody_expected() -> None:
    node = fake("node1", {})
    with pytest.raises(AssertionError, match="unexpected probe"):
        node.probe((cmd("cat", "/etc/passwd"),))
    with pytest.raises(AssertionError, match="unexpected command"):
        node.run(cmd("rm", "-rf", "/"))


# --- the join command: an input of the worker step, created on the control plane once -----

TOKEN = "abcdef.0123456789abcdef"
JOIN_OUTPUT = (
    f"kubeadm join 10.10.10.241:6443 --token {TOKEN} --discovery-token-ca-cert-hash "
    "sha256:2f0ad1bbd9d4e3b2cd0e8b1d2c4a5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f \n"
)
KUBELET_CONF = cmd("test", "-f", "/etc/kubernetes/kubelet.conf")


class Plane(FakeNode):
    """The control plane answers `kubeadm token create --print-join-command` (and counts)."""

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult:
        if command == el7.JOIN_COMMAND:
            self.ran.append(command)
            return RemoteResult(self.name, render_remote(command), 0, JOIN_OUTPUT, "")
        return super().run(command, timeout, check)


def join_of(node: str) -> Command:
    argv = el7.parse_join_command(JOIN_OUTPUT)
    return Command((*argv, f"--node-name={node}"), secrets=el7.join_secrets(argv))


def test_workers_join_with_one_command_created_on_the_control_plane_when_needed() -> None:
    plane = Plane("k8s-master", {}, {}, {})
    workers = {
        "k8s-node1": fake("k8s-node1", {}, {KUBELET_CONF: flag("joined")}, {}),
        "k8s-node2": fake("k8s-node2", {}, {KUBELET_CONF: flag("joined")}, {}),
    }
    for name, node in workers.items():
        node.writes = {join_of(name): sets(joined=True)}
    nodes = {"k8s-master": plane, **workers}
    reports = run(GUIDE, nodes, (el7.JOIN,), inputs=inputs_for(GUIDE, nodes))
    assert [r.error for r in reports] == ["", "", ""]
    assert plane.ran == [el7.JOIN_COMMAND], "one join command for both workers"
    assert [c.argv[-1] for n in workers.values() for c in n.ran] == [
        "--node-name=k8s-node1",
        "--node-name=k8s-node2",
    ]
    assert all(c.secrets == (TOKEN,) for n in workers.values() for c in n.ran)


def test_no_join_command_is_created_when_every_worker_has_joined() -> None:
    plane = Plane("k8s-master", {}, {}, {})
    workers = {
        n: fake(n, {"joined": True}, {KUBELET_CONF: flag("joined")}, {})
        for n in ("k8s-node1", "k8s-node2")
    }
    nodes = {"k8s-master": plane, **workers}
    reports = run(GUIDE, nodes, (el7.JOIN,), inputs=inputs_for(GUIDE, nodes))
    assert [r.done for r in reports if r.node != "k8s-master"] == [["step 13 'kubeadm join'"]] * 2
    assert plane.ran == []


def test_a_failed_join_reports_the_node_with_the_token_redacted() -> None:
    plane = Plane("k8s-master", {}, {}, {})
    worker = fake(
        "k8s-node1", {}, {KUBELET_CONF: flag("joined")}, {join_of("k8s-node1"): lambda w: 1}
    )
    lab = dataclasses.replace(GUIDE, nodes=GUIDE.nodes[:2])
    nodes = {"k8s-master": plane, "k8s-node1": worker}
    reports = run(lab, nodes, (el7.JOIN,), inputs=inputs_for(lab, nodes))
    (error,) = [r.error for r in reports if r.error]
    assert error.startswith("step 13 'kubeadm join' failed on k8s-node1: command on k8s-node1")
    assert TOKEN not in error
    assert "<redacted>" in error


def test_the_applier_module_knows_no_os_and_no_step() -> None:
    source = (ROOT / "provision" / "apply.py").read_text()
    upstream = (ROOT / "labs" / "vendor" / "kube-flannel-v0.14.0.yml").read_text()
    keys = {s.key for lab in (CI, GUIDE) for s in steps_for(lab, upstream, TEST_IMAGES)}
    words = {"el7", "debian12", "getattr", "joined", "join_command", *keys}
    named = [w for w in sorted(words) if re.search(rf"\b{re.escape(w)}\b", source)]
    assert named == [], f"provision/apply.py names {named}"


def test_reading_a_phase_twice_uses_the_outputs_of_one_round_trip() -> None:
    """Applier.phase is what provision() runs per node: check it directly too."""
    node = fake("node1", {"a": "A\n", "b": "B\n", "shared": "s"})
    seen: list[tuple[str, int]] = []
    Applier(CI, CI.node("node1"), node, {}).phase((A, B), lambda s, n: seen.append((s.key, n)))
    assert seen == [("a", 0), ("b", 0)]
    assert len(node.round_trips) == 1
    assert Output(0, "s") == READS[cmd("cat", "/etc/shared")](node.world)


def test_facts_read_before_a_change_are_read_again_before_a_later_step_plans() -> None:
    """Step a's change also makes c done: c must plan from a fresh read, not the first one
    (a stale read would plan a write the strict fake does not allow)."""
    c = file_step("c", "/etc/c", "C\n")
    reads = {**READS, cmd("cat", "/etc/c"): text("c")}
    writes = {
        write_file("/etc/a", "A\n"): sets(a="A\n", c="C\n"),
        write_file("/etc/b", "B\n"): sets(b="B\n"),
    }
    node = fake("node1", {"b": "B\n", "shared": "s"}, reads, writes)
    seen: list[tuple[str, int]] = []
    Applier(CI, CI.node("node1"), node, {}).phase((A, B, c), lambda s, n: seen.append((s.key, n)))
    assert seen == [("a", 1), ("b", 0), ("c", 0)]
    assert node.round_trips == [
        (
            cmd("cat", "/etc/a"),
            cmd("cat", "/etc/shared"),
            cmd("cat", "/etc/b"),
            cmd("cat", "/etc/c"),
        ),
        (cmd("cat", "/etc/a"), cmd("cat", "/etc/shared"), cmd("cat", "/etc/b")),  # a + next
        (cmd("cat", "/etc/c"),),  # c, stale since a's change
    ]
    assert all(node.one_sudo), "every probe round trip runs under one sudo"


def test_a_probe_under_one_sudo_is_one_sudo_sh_script() -> None:
    commands = (cmd("cat", "/etc/hosts"), cmd("hostname", sudo=False))
    text_ = render_probe(commands, one_sudo=True)
    assert text_.startswith("sudo -n sh -c ")
    assert text_.count("sudo -n") == 1
    assert render_probe(commands).count("sudo -n") == 1  # the default is unchanged
    assert render_probe((cmd("hostname", sudo=False),), one_sudo=True).startswith("hostname ")
