"""The pod creation flow checks (e2e/flow.py, e2e/test_pod_creation_flow.py), each run on the
provisioned CI lab against CRI pods broken on purpose: each fails and names what is wrong. Every
breakage is undone (pods removed, rules deleted) in a finally block."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from e2e import flow
from e2e.drivers.base import PodRequest
from e2e.drivers.cri import CriDriver, CriPod
from lab.common import waits
from lab.hosts.machines import LabMachines
from lab.model.config import Lab
from lab.podnet import node_pod_subnets
from lab.runtime.cri import messages
from provision.run import run_provision

# a container that leaves the pod's network namespace for one of its own, then idles
# (unshare(CLONE_NEWNET) needs CAP_SYS_ADMIN, which the spec adds)
ROGUE = (
    "python3",
    "-c",
    "import ctypes, os\n"
    "assert ctypes.CDLL(None, use_errno=True).unshare(0x40000000) == 0, ctypes.get_errno()\n"
    "os.execvp('catatonit', ['catatonit', '-P'])\n",
)


@pytest.fixture(scope="module")
def cri(running: LabMachines) -> Iterator[CriDriver]:
    run_provision(running)  # idempotent: the lab test_2 provisioned, or a fresh one
    driver = CriDriver(running.lab, running.channels(), "selftest" + secrets.token_hex(2))
    yield driver
    left = [s for n in driver.nodes for s in driver.leftovers()[n]]
    driver.close()
    assert not left, f"the breakage tests left {left}"


def pod(
    cri: CriDriver, node: str, name: str, extra: messages.ContainerSpec | None = None
) -> CriPod:
    request = PodRequest(f"nl-{cri.run_id}-{name}", node, cri.fleet_containers())
    return cri.make_pod(request, extra)


def test_a_container_in_a_network_namespace_of_its_own_fails_the_shared_namespace_check(
    cri: CriDriver,
) -> None:
    rogue = messages.ContainerSpec(
        "rogue", cri.images.ref("client"), command=ROGUE, add_capabilities=("SYS_ADMIN",)
    )
    made = pod(cri, "node1", "rogue", rogue)
    try:
        healthy = flow.shared_namespace_problems(flow.namespace_view(cri, made))
    finally:
        cri.delete_pods([made])
    assert len(healthy) == 2, healthy  # the rogue container, and the reproduce line
    assert "container rogue (pid " in healthy[0]
    assert "not the pod's network namespace net:[" in healthy[0]
    assert healthy[1].startswith(f"reproduce: python -m lab ssh {cri.lab.name} node1 -- ")
    # the pod's two regular containers are not named: they did join
    assert "container echo" not in healthy[0]
    assert "container client" not in healthy[0]


def test_a_pod_translated_on_its_way_fails_the_one_ip_check(cri: CriDriver, ci_lab: Lab) -> None:
    a = pod(cri, "node1", "snat-a")
    b = pod(cri, "node2", "snat-b")
    rule = (
        "-s", str(node_pod_subnets(ci_lab)["node1"]), "-o", ci_lab.vm.private_nic,
        "-j", "MASQUERADE",
    )  # fmt: skip
    insert = cri.exec_on_node("node1", ("iptables", "-t", "nat", "-I", "POSTROUTING", *rule))
    assert insert.ok, insert.stderr
    try:
        problems = flow.ip_agreement_problems(cri, a, b)
        clean = flow.ip_agreement_problems(cri, b, a)
    finally:
        cri.exec_on_node("node1", ("iptables", "-t", "nat", "-D", "POSTROUTING", *rule))
        cri.delete_pods([a, b])
    assert problems[0] == (
        f"the source {b.name}'s echo server saw: ['{ci_lab.node('node1').ip}'], "
        f"PodSandboxStatus: ['{a.ip}']"
    )
    assert clean == [], "traffic from node2's pod is not translated"


def test_a_lease_left_behind_fails_the_release_check(cri: CriDriver) -> None:
    made = pod(cri, "node1", "lease")
    lease_dir = f"{flow.IPAM_DIR}/$(ls {flow.IPAM_DIR} | head -n1)"

    def leak() -> None:  # an IPAM plugin that forgets to release: the lease file comes back
        # under a foreign owner id: put back under the pod's own id, the lease was gone again
        # after RemovePodSandbox (seen on containerd 1.6.20; host-local releases by owner id)
        script = f"echo leaked-by-a-broken-ipam > {lease_dir}/{made.ip}"
        assert cri.exec_on_node("node1", ("sh", "-c", script)).ok

    try:
        made_t, stopped, removed, _ = flow.stop_and_remove(cri, made, after_stop=leak)
        problems = flow.release_problems(made, made_t, stopped, removed)
    finally:
        cri.exec_on_node("node1", ("sh", "-c", f"rm -f {lease_dir}/{made.ip}"))
    assert problems[0] == (
        f"StopPodSandbox left the IPAM lease of {made.ip} (CNI DEL did not release)"
    )
    assert problems[1] == "after RemovePodSandbox the lease or the veth is still there"
    assert problems[-1].startswith(f"reproduce: python -m lab ssh {cri.lab.name} node1 -- ")


def test_killing_an_app_container_instead_of_the_infra_process_fails_the_noticed_check(
    cri: CriDriver,
) -> None:
    made = pod(cri, "node2", "notinfra")
    quick = waits.Policy("the runtime reports the sandbox NOTREADY", timeout_s=20)
    problems = flow.infra_death_problems(cri, made, made.handle.pids["echo"], quick)
    assert problems[0].startswith(
        "the runtime reports the sandbox NOTREADY: not done after 20s; last saw 'SANDBOX_READY'"
    )
    assert len(problems) == 2, problems  # and the reproduce line: the removal still released


def test_a_restart_that_takes_the_pods_down_fails_the_restart_check(cri: CriDriver) -> None:
    pods = [pod(cri, "node1", "killall-a"), pod(cri, "node2", "killall-b")]
    try:
        # the whole unit killed, shims and pods too (KillMode=control-group would do the same);
        # systemd starts containerd again (Restart=always)
        problems = flow.restart_problems(
            cri,
            pods,
            ("systemctl", "kill", "--kill-whom=all", "--signal=SIGKILL", "containerd"),
        )
    finally:
        cri.delete_pods(pods)
    assert not any(p.startswith("before the restart") for p in problems), problems
    # the pods died with the unit: cells fail after it, or the runtime reports them changed
    assert any(
        p.startswith("after the restart: ") or "the runtime's view of the pods changed" in p
        for p in problems
    ), problems
