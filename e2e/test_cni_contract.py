"""The CNI contract, exercised directly: ADD answers a valid result for its cniVersion, CHECK
passes on a live sandbox, DEL releases the lease and removes the interface, a second DEL
succeeds, and a malformed configuration gets a CNI error JSON quickly instead of a hang."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

import pytest

from e2e import checks, scenarios
from e2e.drivers.base import Pod, PodRequest
from e2e.drivers.cni import RESULT_CACHE, CniCallFailed, CniDriver
from lab.common.commands import cmd
from lab.hosts import compat
from lab.model.config import Lab
from lab.net import cni
from lab.podnet import backend_of
from lab.podnet.bridge import CNI_IPAM_DIR


def _node_subnet(lab: Lab, cni_driver: CniDriver, node: str) -> IPv4Network | None:
    """The lab file's allotment where the lab plans it; flannel's lease otherwise."""
    planned = backend_of(lab).planned_subnets(lab)
    if planned is not None:
        return planned[node]
    nets = cni_driver.node_subnets().get(node, ())
    return nets[0] if nets else None


def _lease_and_veth(cni_driver: CniDriver, pod: Pod[Any]) -> tuple[list[str], list[str]]:
    """Which of the pod's IPAM lease files and host veths still exist (one round trip)."""
    _, conf = cni_driver.conflist(pod.node)
    result = cni.parse_result(json.dumps(pod.handle.result))
    data_dirs = [
        p["ipam"].get("dataDir", CNI_IPAM_DIR)
        for p in conf["plugins"]
        if p.get("ipam", {}).get("type") == "host-local"
    ]
    leases = (
        cni.lease_paths(data_dirs[0], conf["name"], result.sandbox_addresses) if data_dirs else []
    )
    veths = [i for i in result.host_interfaces if i.startswith("veth")]
    outputs = cni_driver.runner.probe(
        pod.node,
        *(cmd("test", "-e", p) for p in leases),
        *(cmd("ip", "link", "show", v) for v in veths),
    )
    present = [o.ok for o in outputs]
    return (
        [p for p, ok in zip(leases, present[: len(leases)], strict=True) if ok],
        [v for v, ok in zip(veths, present[len(leases) :], strict=True) if ok],
    )


@dataclass
class Lifecycle:
    """One sandbox per node taken through the CNI lifecycle as a runtime drives it: ADD, CHECK
    on the live sandbox, DEL, a second DEL, removal. The contract tests judge what was seen at
    each step (one sandbox, with no process in it, for all of them instead of one per test)."""

    pod: Pod[Any]
    check: str | None  # CHECK's failure, "" when it passed, None: the cniVersion has no CHECK
    before: tuple[list[str], list[str]]  # leases, veths after ADD
    after_del: tuple[list[str], list[str]] = ([], [])
    second_del: str = ""  # the failure of a second DEL, "" when it succeeded
    netns_listed: bool | None = None  # after the runtime removed the pod
    cache_state: int | None = None  # `test -e` of the cached ADD result after removal


@pytest.fixture(scope="module")
def lifecycle(
    lab: Lab, cni_driver: CniDriver, run_id: str, worker_tag: str
) -> dict[str, Lifecycle]:
    """node -> its Lifecycle: every node's lived through side by side (the nodes work
    together, not in turn) when a test first asks for one."""

    def live(node: str) -> Lifecycle:
        name = f"nl-{run_id}-{worker_tag}-cni-{node}"
        (pod,) = cni_driver.create_pods([PodRequest(name, node, ())])
        try:
            _, conf = cni_driver.conflist(node)
            check = None
            if compat.cni_check_allowed(str(conf["cniVersion"])):
                try:
                    cni_driver.check(pod)
                    check = ""
                except CniCallFailed as exc:
                    check = str(exc)
            life = Lifecycle(pod, check, _lease_and_veth(cni_driver, pod))
            cni_driver.invoke("DEL", node, pod.name, pod.handle.result)
            life.after_del = _lease_and_veth(cni_driver, pod)
            try:
                cni_driver.invoke("DEL", node, pod.name, pod.handle.result)
            except CniCallFailed as exc:
                life.second_del = str(exc)
        finally:
            cni_driver.delete_pods([pod])
        netns, cached = cni_driver.runner.probe(
            node, cmd("ip", "netns", "list"), cmd("test", "-e", f"{RESULT_CACHE}/{name}.json")
        )
        life.netns_listed = name in netns.stdout.split() if netns.ok else None
        life.cache_state = cached.exit_code
        return life

    return scenarios.EveryNodeOnFirstUse(live, sorted(lab.node_names))


GROUP = pytest.mark.xdist_group("cni-contract")  # one worker lives each node's sandbox


@GROUP
def test_cni_add_answers_a_valid_result_for_its_cni_version(
    lab: Lab, node_name: str, lifecycle: dict[str, Lifecycle], cni_driver: CniDriver
) -> None:
    result = lifecycle[node_name].pod.handle.result
    path, conf = cni_driver.conflist(node_name)
    problems = cni.validate_result(
        result, conf["cniVersion"], _node_subnet(lab, cni_driver, node_name)
    )
    checks.expect_no_problems(
        [f"{p}\n    result: {json.dumps(result)}" for p in problems],
        f"ADD result of {path} on {node_name}",
    )


@GROUP
def test_cni_check_passes_on_a_live_sandbox(
    node_name: str, lifecycle: dict[str, Lifecycle], cni_driver: CniDriver
) -> None:
    check = lifecycle[node_name].check
    if check is None:
        path, conf = cni_driver.conflist(node_name)
        pytest.skip(f"{path} is cniVersion {conf['cniVersion']}, which has no CHECK (>= 0.4.0)")
    if check:
        pytest.fail(f"CHECK failed on a live sandbox: {check}", pytrace=False)


@GROUP
def test_cni_del_releases_the_ip_lease_and_removes_the_interface(
    node_name: str, lifecycle: dict[str, Lifecycle]
) -> None:
    d = lifecycle[node_name]
    leases, veths = d.before
    assert leases, f"after ADD, no host-local lease file for {d.pod.ip} on {node_name}"
    assert veths, f"after ADD, no host veth for {d.pod.name} on {node_name}"
    problems = [f"lease {p} still exists after DEL" for p in d.after_del[0]]
    problems += [f"host interface {v} still exists after DEL" for v in d.after_del[1]]
    checks.expect_no_problems(problems, f"DEL of {d.pod.name} on {node_name}")


@GROUP
def test_a_second_cni_del_succeeds(node_name: str, lifecycle: dict[str, Lifecycle]) -> None:
    second = lifecycle[node_name].second_del
    if second:
        pytest.fail(f"a second DEL must succeed (CNI spec): {second}", pytrace=False)


@GROUP
def test_nothing_of_a_deleted_pod_is_left_on_the_node(
    node_name: str, lifecycle: dict[str, Lifecycle]
) -> None:
    d = lifecycle[node_name]
    problems = []
    if d.netns_listed is None:
        problems.append("`ip netns list` failed: cannot tell")
    elif d.netns_listed:
        problems.append(f"sandbox {d.pod.name} still listed by `ip netns list`")
    if d.cache_state != 1:
        state = (
            "still on the node" if d.cache_state == 0 else f"unknown (test exit {d.cache_state})"
        )
        problems.append(f"cached ADD result {RESULT_CACHE}/{d.pod.name}.json: {state}")
    checks.expect_no_problems(problems, f"delete of {d.pod.name}")


MALFORMED = {
    "no IP ranges": {"type": "bridge", "bridge": "nlbad0", "ipam": {"type": "host-local"}},
    "unknown IPAM plugin": {"type": "bridge", "bridge": "nlbad0", "ipam": {"type": "nl-no-such"}},
}


def _malformed_add_problems(cni_driver: CniDriver, node: str, case: str, sandbox: str) -> list[str]:
    """ADD with the malformed config on `node`, in a sandbox of its own: what is wrong with
    the plugin's answer (it must fail fast, with a CNI error JSON naming the problem)."""
    _, good = cni_driver.conflist(node)
    conf = {"cniVersion": good["cniVersion"], "name": "netlab-bad", "plugins": [MALFORMED[case]]}
    cni_driver.create_sandbox(node, sandbox)
    try:
        start = time.monotonic()
        res, _ = cni_driver.call_plugin("ADD", node, conf, 0, sandbox, None, timeout=30)
        elapsed = time.monotonic() - start
    finally:  # the plugin may have left its bridge: both go, in one round trip
        cni_driver.exec_on_node(
            node, ("sh", "-c", f"ip netns delete {sandbox}; ip link delete nlbad0 || true")
        )
    error = cni.parse_error(res.stdout)
    problems = []
    if res.ok:
        problems.append(f"ADD with a malformed config ({case}) succeeded: {res.stdout.strip()}")
    if error is None:
        problems.append(f"no CNI error JSON (code, msg) on stdout: {res.stdout.strip()!r}")
    elif not error.msg:
        problems.append("the CNI error has an empty msg")
    if elapsed > 20:
        problems.append(f"the plugin took {elapsed:.0f}s to fail")
    return [f"{node}: {p}\n    reproduce: {res.reproduce}" for p in problems]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_config_gets_a_cni_error_json_not_a_hang(
    case: str, lab: Lab, cni_driver: CniDriver, run_id: str, worker_tag: str
) -> None:
    """On every node side by side (the nodes work together, not in turn)."""
    sandbox = f"nl-{run_id}-{worker_tag}-bad-{case.split(maxsplit=1)[0]}"
    found = scenarios.each_node(
        sorted(lab.node_names), lambda n: _malformed_add_problems(cni_driver, n, case, sandbox)
    )
    checks.expect_no_problems(
        [p for per_node in found for p in per_node], f"malformed config: {case}"
    )
