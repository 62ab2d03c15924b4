"""The CNI contract, exercised directly: ADD answers a valid result for its cniVersion, CHECK
passes on a live sandbox, DEL releases the lease and removes the interface, a second DEL
succeeds, and a malformed configuration gets a CNI error JSON quickly instead of a hang."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

import pytest

from e2e import checks
from e2e.drivers.base import Pod, PodRequest
from e2e.drivers.cni import RESULT_CACHE, CniCallFailed, CniDriver
from lab import cni
from lab.commands import cmd
from lab.config import Lab
from lab.render import CNI_IPAM_DIR, node_pod_subnets


def _node_subnet(lab: Lab, cni_driver: CniDriver, node: str) -> IPv4Network | None:
    """The lab file's allotment where the lab plans it; flannel's lease otherwise."""
    if lab.pod_network.driver != "flannel":
        return node_pod_subnets(lab)[node]
    nets = cni_driver.node_subnets().get(node, ())
    return nets[0] if nets else None


def test_cni_add_answers_a_valid_result_for_its_cni_version(
    lab: Lab, node_name: str, make_cni_pod: Callable[..., Pod[Any]], cni_driver: CniDriver
) -> None:
    pod = make_cni_pod(node_name)
    path, conf = cni_driver.conflist(node_name)
    result = pod.handle.result
    problems = cni.validate_result(
        result, conf["cniVersion"], _node_subnet(lab, cni_driver, node_name)
    )
    checks.expect_no_problems(
        [f"{p}\n    result: {json.dumps(result)}" for p in problems],
        f"ADD result of {path} on {node_name}",
    )


def test_cni_check_passes_on_a_live_sandbox(
    node_name: str, make_cni_pod: Callable[..., Pod[Any]], cni_driver: CniDriver
) -> None:
    path, conf = cni_driver.conflist(node_name)
    if not cni.check_supported(conf["cniVersion"]):
        pytest.skip(f"{path} is cniVersion {conf['cniVersion']}, which has no CHECK (>= 0.4.0)")
    pod = make_cni_pod(node_name)
    try:
        cni_driver.check(pod)
    except CniCallFailed as exc:
        pytest.fail(f"CHECK failed on a sandbox ADD just set up: {exc}", pytrace=False)


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
        *(cmd("ip", "link", "show", v, sudo=False) for v in veths),
    )
    present = [o.ok for o in outputs]
    return (
        [p for p, ok in zip(leases, present[: len(leases)], strict=True) if ok],
        [v for v, ok in zip(veths, present[len(leases) :], strict=True) if ok],
    )


def test_cni_del_releases_the_ip_lease_and_removes_the_interface(
    node_name: str, make_cni_pod: Callable[..., Pod[Any]], cni_driver: CniDriver
) -> None:
    pod = make_cni_pod(node_name)
    leases, veths = _lease_and_veth(cni_driver, pod)
    assert leases, f"after ADD, no host-local lease file for {pod.ip} on {node_name}"
    assert veths, f"after ADD, no host veth for {pod.name} on {node_name}"
    cni_driver.invoke("DEL", node_name, pod.name, pod.handle.result)
    leases_after, veths_after = _lease_and_veth(cni_driver, pod)
    problems = [f"lease {p} still exists after DEL" for p in leases_after]
    problems += [f"host interface {v} still exists after DEL" for v in veths_after]
    checks.expect_no_problems(problems, f"DEL of {pod.name} on {node_name}")


def test_a_second_cni_del_succeeds(
    node_name: str, make_cni_pod: Callable[..., Pod[Any]], cni_driver: CniDriver
) -> None:
    pod = make_cni_pod(node_name)
    cni_driver.invoke("DEL", node_name, pod.name, pod.handle.result)
    try:
        cni_driver.invoke("DEL", node_name, pod.name, pod.handle.result)
    except CniCallFailed as exc:
        pytest.fail(f"a second DEL must succeed (CNI spec): {exc}", pytrace=False)


MALFORMED = {
    "no IP ranges": {"type": "bridge", "bridge": "nlbad0", "ipam": {"type": "host-local"}},
    "unknown IPAM plugin": {"type": "bridge", "bridge": "nlbad0", "ipam": {"type": "nl-no-such"}},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_config_gets_a_cni_error_json_not_a_hang(
    case: str, node_name: str, cni_driver: CniDriver, run_id: str, worker_tag: str
) -> None:
    _, good = cni_driver.conflist(node_name)
    conf = {"cniVersion": good["cniVersion"], "name": "netlab-bad", "plugins": [MALFORMED[case]]}
    sandbox = f"nl-{run_id}-{worker_tag}-bad-{case.split(maxsplit=1)[0]}"
    cni_driver.create_sandbox(node_name, sandbox)
    try:
        start = time.monotonic()
        res, _ = cni_driver.call_plugin("ADD", node_name, conf, 0, sandbox, None, timeout=30)
        elapsed = time.monotonic() - start
    finally:
        cni_driver.exec_on_node(node_name, ("ip", "netns", "delete", sandbox))
        cni_driver.exec_on_node(node_name, ("ip", "link", "delete", "nlbad0"))
    error = cni.parse_error(res.stdout)
    problems = []
    if res.ok:
        problems.append(f"ADD with a malformed config ({case}) succeeded: {res.stdout.strip()}")
    if error is None:
        problems.append(f"no CNI error JSON (code, msg) on stdout: {res.stdout.strip()!r}")
    if elapsed > 20:
        problems.append(f"the plugin took {elapsed:.0f}s to fail")
    checks.expect_no_problems(
        [f"{p}\n    reproduce: {res.reproduce}" for p in problems], f"malformed config: {case}"
    )
    assert error is not None
    assert error.msg, "the CNI error has an empty msg"


def test_nothing_of_a_deleted_pod_is_left_on_the_node(
    node_name: str, cni_driver: CniDriver, run_id: str, worker_tag: str
) -> None:
    name = f"nl-{run_id}-{worker_tag}-gone"
    (pod,) = cni_driver.create_pods([PodRequest(name, node_name, ())])
    cni_driver.delete_pods([pod])
    netns, cached = cni_driver.runner.probe(
        node_name, cmd("ip", "netns", "list"), cmd("test", "-e", f"{RESULT_CACHE}/{name}.json")
    )
    problems = []
    if not netns.ok:
        problems.append(f"`ip netns list` failed (exit {netns.exit_code}): cannot tell")
    elif name in netns.stdout.split():
        problems.append(f"sandbox {name} still listed by `ip netns list`")
    if cached.exit_code != 1:
        state = "still on the node" if cached.ok else f"unknown (test exit {cached.exit_code})"
        problems.append(f"cached ADD result {RESULT_CACHE}/{name}.json: {state}")
    checks.expect_no_problems(problems, f"delete of {name}")
