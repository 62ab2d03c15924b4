"""lab/podnet/flannel.py: what a hard-rebooted node of the guide lab must show again before the
fault counts as healed (node Ready, its kube-flannel pod, subnet.env, flannel.1's MAC as
annotated, every peer's FDB), judged on outputs recorded from a kubeadm 1.18 + flannel v0.14
cluster (tests/data/k8s/SOURCES.md)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab.common.commands import cmd
from lab.model.labfile import load_lab
from lab.podnet import backend_of
from lab.podnet.base import Read
from lab.podnet.flannel import (
    annotated_vtep_mac,
    fdb_points_at,
    flannel_pods_ready,
    node_ready,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "k8s"
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
NODES = json.loads((DATA / "nodes.json").read_text())["items"]
NODE2 = json.dumps(NODES[2])  # k8s-node2, VtepMAC 02:b7:e9:64:3c:18, 10.10.10.243
NOT_READY = json.loads((DATA / "nodes-not-ready.json").read_text())["items"]
PODS = json.loads((DATA / "pods-kube-system.json").read_text())["items"]
SUBNET_ENV_TEXT = (ROOT / "tests" / "data" / "vxlan" / "node2-subnet.env.txt").read_text()


def flannel_on(node: str, pods: list[dict[str, Any]] = PODS) -> str:
    mine = [p for p in pods if "flannel" in p["metadata"]["name"] and p["spec"]["nodeName"] == node]
    return json.dumps({"kind": "List", "items": mine})


def fdb(*entries: tuple[str, str]) -> str:
    """`bridge fdb show dev flannel.1` as iproute2 prints it."""
    return "".join(f"{mac} dst {ip} self permanent\n" for mac, ip in entries)


def test_the_checks_are_in_the_order_flannel_restores_things() -> None:
    node = GUIDE.node("k8s-node2")
    checks = backend_of(GUIDE).reboot_checks(GUIDE, node)
    assert [c.name for c in checks] == [
        "k8s-node2 Ready again",
        "k8s-node2's kube-flannel pod Running and Ready",
        "/run/flannel/subnet.env written again on k8s-node2",
        "k8s-node2's flannel.1 MAC is its VtepMAC annotation",
        f"every peer's FDB sends k8s-node2's VtepMAC to {node.ip}",
    ]
    reads = [(r.node, r.kubectl, r.command.argv[:3]) for c in checks for r in c.reads]
    assert reads[0] == ("k8s-master", True, ("get", "node", "k8s-node2"))
    assert ("k8s-node2", False, ("cat", "/sys/class/net/flannel.1/address")) in reads
    peers = [r for r in checks[-1].reads if not r.kubectl]
    assert [(r.node, r.command.argv) for r in peers] == [
        (n, ("bridge", "fdb", "show", "dev", "flannel.1")) for n in ("k8s-master", "k8s-node1")
    ]
    assert all(not r.command.sudo for c in checks for r in c.reads)


def test_the_host_routes_lab_needs_no_check_beyond_the_node_answering() -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    assert backend_of(ci).reboot_checks(ci, ci.node("node2")) == ()


def test_ready_is_read_from_the_ready_condition() -> None:
    assert node_ready(NODE2)
    assert not node_ready(json.dumps(next(n for n in NOT_READY if not _ready(n))))
    assert not node_ready(None)
    assert not node_ready("not json")


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def test_the_vtep_mac_is_flannels_annotation() -> None:
    assert annotated_vtep_mac(NODE2) == "02:b7:e9:64:3c:18"
    bare = copy.deepcopy(NODES[2])
    del bare["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"]
    assert annotated_vtep_mac(json.dumps(bare)) is None  # flanneld has not annotated it yet
    bare["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"] = "{"
    assert annotated_vtep_mac(json.dumps(bare)) is None


def test_the_mac_check_compares_the_device_with_the_annotation() -> None:
    check = backend_of(GUIDE).reboot_checks(GUIDE, GUIDE.node("k8s-node2"))[3]
    assert check.ok(["02:b7:e9:64:3c:18\n", NODE2])
    assert not check.ok(["aa:bb:cc:dd:ee:ff\n", NODE2])  # the old annotation, a new device
    assert not check.ok([None, NODE2])  # no flannel.1 yet


def test_the_flannel_pod_must_run_with_its_container_ready() -> None:
    assert flannel_pods_ready(flannel_on("k8s-node2"))
    waiting = copy.deepcopy(PODS)
    for pod in waiting:
        for c in pod["status"].get("containerStatuses", []):
            c["ready"] = False
    assert not flannel_pods_ready(flannel_on("k8s-node2", waiting))
    assert not flannel_pods_ready(json.dumps({"kind": "List", "items": []}))
    assert not flannel_pods_ready(None)


def test_every_peer_must_send_the_new_mac_to_the_nodes_address() -> None:
    new, old, ip = "02:b7:e9:64:3c:18", "aa:aa:aa:aa:aa:aa", "10.10.10.243"
    other = ("5a:8e:2c:41:97:0b", "10.10.10.241")
    assert fdb_points_at(new, ip, [fdb(other, (new, ip)), fdb((new.upper(), ip))])
    assert not fdb_points_at(new, ip, [fdb(other, (new, ip)), fdb((old, ip))])  # not yet
    assert not fdb_points_at(new, ip, [fdb((new, "10.10.10.242"))])
    assert not fdb_points_at(new, ip, [None])
    assert not fdb_points_at(None, ip, [fdb((new, ip))])


def test_each_check_reads_exactly_these_commands_where_it_must() -> None:
    checks = backend_of(GUIDE).reboot_checks(GUIDE, GUIDE.node("k8s-node2"))
    get_node = Read("k8s-master", cmd("get", "node", "k8s-node2", "-o", "json", sudo=False), True)
    pods = Read(
        "k8s-master",
        cmd(
            "-n", "kube-system", "get", "pods", "-l", "app=flannel",
            "--field-selector", "spec.nodeName=k8s-node2", "-o", "json", sudo=False,
        ),
        True,
    )  # fmt: skip
    mac = Read("k8s-node2", cmd("cat", "/sys/class/net/flannel.1/address", sudo=False))
    env = Read("k8s-node2", cmd("cat", "/run/flannel/subnet.env", sudo=False))
    fdbs = tuple(
        Read(peer, cmd("bridge", "fdb", "show", "dev", "flannel.1", sudo=False))
        for peer in ("k8s-master", "k8s-node1")
    )
    assert [c.reads for c in checks] == [
        (get_node,),
        (pods,),
        (env,),
        (mac, get_node),
        (get_node, *fdbs),
    ]


def test_without_a_control_plane_the_node_itself_answers_the_kubectl_reads() -> None:
    workers = tuple(replace(n, role="worker") for n in GUIDE.nodes)
    lab = replace(GUIDE, nodes=workers)
    checks = backend_of(lab).reboot_checks(lab, lab.node("k8s-node2"))
    assert [(r.node, r.kubectl) for r in checks[0].reads + checks[1].reads] == [
        ("k8s-node2", True),
        ("k8s-node2", True),
    ]


def test_the_ready_check_judges_the_nodes_ready_condition() -> None:
    ready = backend_of(GUIDE).reboot_checks(GUIDE, GUIDE.node("k8s-node2"))[0]
    assert ready.ok([NODE2]) is True
    assert ready.ok([json.dumps(next(n for n in NOT_READY if not _ready(n)))]) is False
    assert ready.ok([None]) is False


def test_the_pod_check_judges_the_nodes_flannel_pods() -> None:
    check = backend_of(GUIDE).reboot_checks(GUIDE, GUIDE.node("k8s-node2"))[1]
    assert check.ok([flannel_on("k8s-node2")]) is True
    assert check.ok([json.dumps({"kind": "List", "items": []})]) is False
    assert check.ok([None]) is False


def test_the_subnet_env_check_wants_flannels_lease_written() -> None:
    check = backend_of(GUIDE).reboot_checks(GUIDE, GUIDE.node("k8s-node2"))[2]
    assert check.ok([SUBNET_ENV_TEXT]) is True
    assert check.ok([""]) is False  # the file is there, flanneld has not written it yet
    assert check.ok(["FLANNEL_NETWORK=10.244.0.0/16\n"]) is False
    assert check.ok([None]) is False  # no file yet


def test_the_fdb_check_wants_every_peer_to_send_the_annotated_mac_to_the_node() -> None:
    check = backend_of(GUIDE).reboot_checks(GUIDE, GUIDE.node("k8s-node2"))[4]
    new, old, ip = "02:b7:e9:64:3c:18", "aa:aa:aa:aa:aa:aa", "10.10.10.243"
    other = ("5a:8e:2c:41:97:0b", "10.10.10.241")
    assert check.ok([NODE2, fdb((new, ip)), fdb(other, (new, ip))]) is True
    assert check.ok([NODE2, fdb((old, ip)), fdb(other, (new, ip))]) is False  # the first peer
    assert check.ok([NODE2, fdb((new, ip)), fdb(other, (old, ip))]) is False  # the last peer
    assert check.ok([NODE2, fdb((new, "10.10.10.242")), fdb((new, ip))]) is False


def _node2_flannel_pod(**status: Any) -> str:
    """k8s-node2's kube-flannel pod with its status fields replaced (None: removed)."""
    pod = copy.deepcopy(json.loads(flannel_on("k8s-node2"))["items"][0])
    for key, value in status.items():
        if value is None:
            pod["status"].pop(key)
        else:
            pod["status"][key] = value
    return json.dumps({"kind": "List", "items": [pod]})


def test_a_flannel_pod_not_running_yet_is_not_ready() -> None:
    assert not flannel_pods_ready(_node2_flannel_pod(phase="Pending"))  # ContainerCreating
    # the kubelet reports the phase before it reports the containers
    assert not flannel_pods_ready(_node2_flannel_pod(containerStatuses=None))
    assert not flannel_pods_ready(_node2_flannel_pod(containerStatuses=[]))


def test_a_pod_list_of_other_shapes_is_not_ready() -> None:
    assert not flannel_pods_ready(json.dumps({"kind": "List", "items": ["kube-flannel-ds"]}))
    assert not flannel_pods_ready(json.dumps({"kind": "List", "items": [{"kind": "Pod"}]}))
    assert not flannel_pods_ready('["not", "a list object"]')


def test_a_node_read_of_other_shapes_is_neither_ready_nor_annotated() -> None:
    for text in ('["not", "a node"]', '"k8s-node2"', '{"kind": "Node"}', None, ""):
        assert node_ready(text) is False
        assert annotated_vtep_mac(text) is None


def test_an_empty_or_non_text_vtep_mac_is_no_mac() -> None:
    for backend_data in ('{"VtepMAC": ""}', '{"VtepMAC": 2}', '{"VtepMAC": null}', "[]"):
        node = copy.deepcopy(NODES[2])
        node["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"] = backend_data
        assert annotated_vtep_mac(json.dumps(node)) is None
