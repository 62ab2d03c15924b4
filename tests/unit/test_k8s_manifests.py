"""What the Kubernetes driver sends kubectl (lab/k8s/manifests.py, lab/k8s/kubectl.py): the
guide's two-container pod, namespaces and services rendered with the run labels, invalid objects
refused before the API; and to the letter: the argv for flannel's ConfigMap, namespace names cut
to a valid label, the objects' names and labels refused with their rule at 63 characters (and
accepted at 63), the manifest's shape, a container's summary."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lab import k8s
from lab.k8s import kubectl, manifests
from lab.k8s.manifests import ContainerSpec
from lab.k8s.model import ContainerStatus
from lab.model.config import DNS1123_LABEL


def test_flannels_configmap_is_looked_up_in_every_namespace() -> None:
    assert kubectl.flannel_configmap() == (
        "get", "configmap", "--all-namespaces", "--field-selector",
        "metadata.name=kube-flannel-cfg", "-o", "json",
    )  # fmt: skip
    assert kubectl.flannel_configmap("yaml")[-2:] == ("-o", "yaml")
    assert kubectl.configmap_anywhere("x")[:5] == (
        "get", "configmap", "--all-namespaces", "--field-selector", "metadata.name=x",
    )  # fmt: skip


def test_a_namespace_name_is_cut_to_63_characters_around_its_hash() -> None:
    name = manifests.namespace_for("R0614", "-test_Pod To Pod-[cni]-")
    assert re.fullmatch(r"nl-r0614-test-pod-to-pod-cni-[0-9a-f]{6}", name)
    long = manifests.namespace_for("-run-", "t" * 100)
    assert len(long) == 63
    assert long.startswith("nl-run-ttt")
    assert re.fullmatch(r"nl-run-t{49}-[0-9a-f]{6}", long)
    # a cut that ends on '-' loses it: no '--' before the hash
    cut = manifests.namespace_for("r", "a" * 50 + "-bcd")
    assert not cut[:-7].endswith("-")
    assert len(cut) == 62


def test_names_and_label_values_are_valid_up_to_63_characters() -> None:
    ok = "a" * 63
    assert manifests.render_namespace(ok, "r1")["metadata"]["name"] == ok
    with pytest.raises(ValueError, match="must be a DNS-1123 label") as e:
        manifests.render_namespace(ok + "a", "r1")
    assert str(e.value) == (
        f"namespace name {ok + 'a'!r} must be a DNS-1123 label (lowercase letters, digits, "
        "'-'; at most 63 characters)"
    )
    assert manifests.run_labels("r1", {"k": "v" * 63})["k"] == "v" * 63
    with pytest.raises(ValueError, match="a label value has at most") as e:
        manifests.run_labels("r1", {"k": "v" * 64})
    assert str(e.value) == (
        f"label k={'v' * 64!r}: a label value has at most 63 characters of letters, digits, "
        "'-', '_' and '.', starting and ending with a letter or digit"
    )


def test_each_refused_name_says_which_name_it_is() -> None:
    echo = [ContainerSpec("echo", "img")]
    with pytest.raises(ValueError, match=r"^service name 'Svc' must be"):
        manifests.render_service("Svc", "ns", "r1", {"a": "b"}, 80, 8080)
    with pytest.raises(ValueError, match=r"^namespace name 'NS' must be"):
        manifests.render_service("svc", "NS", "r1", {"a": "b"}, 80, 8080)
    with pytest.raises(ValueError, match=r"^label a='-b': a label value"):
        manifests.render_service("svc", "ns", "r1", {"a": "-b"}, 80, 8080)
    with pytest.raises(ValueError, match=r"^pod p: container name 'Echo' must be"):
        manifests.render_pod("p", "ns", "node1", [ContainerSpec("Echo", "img")], "r1")
    assert manifests.render_pod("p" * 253, "ns", "n", echo, "r1")["metadata"]["name"] == "p" * 253
    with pytest.raises(ValueError, match=r"must be a DNS-1123 subdomain"):
        manifests.render_pod("p" * 254, "ns", "n", echo, "r1")


def test_a_manifest_is_one_list_document_indented_by_one() -> None:
    assert manifests.render_manifest([{"kind": "Namespace"}]) == (
        '{\n "apiVersion": "v1",\n "kind": "List",\n "items": [\n  {\n   "kind": "Namespace"\n'
        "  }\n ]\n}"
    )


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (ContainerStatus("c", True, 1, "running"), "running, 1 restart"),
        (ContainerStatus("c", True, 2, "running"), "running, 2 restarts"),
        (
            ContainerStatus("c", False, 0, "waiting", "CrashLoopBackOff"),
            "waiting: CrashLoopBackOff, 0 restarts",
        ),
        (
            ContainerStatus("c", False, 7, "terminated", "Error", exit_code=1),
            "terminated: Error (exit code 1), 7 restarts",
        ),
    ],
)
def test_a_container_is_summarised_as_kubectl_would(status: ContainerStatus, text: str) -> None:
    assert status.describe() == text


def test_the_guides_two_container_pod_renders_pinned_labelled_and_quick_to_delete() -> None:
    manifest = k8s.render_pod(
        "two-containers",
        "nl-r0614-two-containers-0a1b2c",
        "k8s-node1",
        [
            k8s.ContainerSpec(
                "busybox",
                "busybox:1.28",
                ("/bin/sh", "-c", "while true;do echo hello;sleep 1;done"),
            ),
            k8s.ContainerSpec("nginx", "nginx:1.19"),
        ],
        "r0614",
        {"app": "nginx"},
    )
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "two-containers",
            "namespace": "nl-r0614-two-containers-0a1b2c",
            "labels": {"netlab.io/run": "r0614", "netlab.io/e2e": "true", "app": "nginx"},
        },
        "spec": {
            "nodeName": "k8s-node1",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "busybox",
                    "image": "busybox:1.28",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/sh", "-c", "while true;do echo hello;sleep 1;done"],
                },
                {"name": "nginx", "image": "nginx:1.19", "imagePullPolicy": "IfNotPresent"},
            ],
        },
    }


def test_a_long_running_pod_can_ask_for_restart_policy_always() -> None:
    manifest = k8s.render_pod(
        "web",
        "ns",
        "k8s-node1",
        [k8s.ContainerSpec("web", "nginx:1.19")],
        "r1",
        restart_policy="Always",
    )
    assert manifest["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Two_Containers"}, "pod name 'Two_Containers' must be a DNS-1123 subdomain"),
        ({"namespace": "NS"}, "namespace name 'NS' must be a DNS-1123 label"),
        ({"containers": []}, "pod p: needs at least one container"),
        ({"containers": [k8s.ContainerSpec("c", "")]}, "pod p: container c has no image"),
        (
            {"containers": [k8s.ContainerSpec("c", "i"), k8s.ContainerSpec("c", "i")]},
            r"pod p: container names repeat: \['c', 'c'\]",
        ),
        ({"run_id": "run id with spaces"}, "label netlab.io/run='run id with spaces'"),
        ({"labels": {"app": "-bad-"}}, "label app='-bad-'"),
    ],
)
def test_invalid_pods_are_refused_before_reaching_the_api(
    kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {
        "name": "p",
        "namespace": "ns",
        "node": "k8s-node1",
        "containers": [k8s.ContainerSpec("c", "busybox:1.28")],
        "run_id": "r1",
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        k8s.render_pod(**args)


def test_namespace_renders_with_the_run_labels() -> None:
    assert k8s.render_namespace("nl-r1-x-abcdef", "r1") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "nl-r1-x-abcdef",
            "labels": {"netlab.io/run": "r1", "netlab.io/e2e": "true"},
        },
    }


def test_cluster_ip_and_node_port_services_select_pods_by_label() -> None:
    cluster_ip = k8s.render_service("echo", "ns", "r1", {"netlab.io/app": "echo"}, 80, 8080)
    assert cluster_ip == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "echo",
            "namespace": "ns",
            "labels": {"netlab.io/run": "r1", "netlab.io/e2e": "true"},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"netlab.io/app": "echo"},
            "ports": [{"name": "tcp", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        },
    }
    node_port = k8s.render_service(
        "echo-np", "ns", "r1", {"netlab.io/app": "echo"}, 80, 8080, "NodePort", 30080
    )
    assert node_port["spec"]["type"] == "NodePort"
    assert node_port["spec"]["ports"][0]["nodePort"] == 30080
    allocated = k8s.render_service("echo-np", "ns", "r1", {"a": "b"}, 80, 8080, "NodePort")
    assert "nodePort" not in allocated["spec"]["ports"][0]


def test_a_node_port_needs_a_node_port_service_and_a_service_needs_a_selector() -> None:
    with pytest.raises(ValueError, match=r"^service echo: nodePort needs type NodePort$"):
        k8s.render_service("echo", "ns", "r1", {"a": "b"}, 80, 8080, node_port=30080)
    with pytest.raises(ValueError, match=r"^service echo: needs a selector$"):
        k8s.render_service("echo", "ns", "r1", {}, 80, 8080)


def test_namespace_names_are_valid_unique_and_stable() -> None:
    long_test = (
        "test_cluster_ip_is_reached_from_every_pod_and_every_node_and_reaches_every_endpoint"
    )
    a = k8s.namespace_for("20210614-0910-ab12", long_test)
    b = k8s.namespace_for("20210614-0910-ab12", long_test + "[x]")
    assert a == k8s.namespace_for("20210614-0910-ab12", long_test)
    assert a != b
    for name in (a, b, k8s.namespace_for("R_1", "Test.X")):
        assert DNS1123_LABEL.match(name), name
        assert len(name) <= 63, name
    assert a.startswith("nl-20210614-0910-ab12-test-cluster-ip-")


def test_a_manifest_is_one_list_document() -> None:
    text_ = k8s.render_manifest([k8s.render_namespace("ns", "r1")])
    assert json.loads(text_) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": [k8s.render_namespace("ns", "r1")],
    }


def test_a_configmap_anywhere_is_printed_as_json_by_default() -> None:
    assert kubectl.configmap_anywhere("x") == (
        "get", "configmap", "--all-namespaces", "--field-selector", "metadata.name=x",
        "-o", "json",
    )  # fmt: skip


def test_pods_are_labelled_by_name_overwriting_and_at_least_one_must_be_named() -> None:
    assert kubectl.label_pods_args("ns", ["a", "b"], "netlab.io/churn", "2") == (
        "label", "pods", "-n", "ns", "--overwrite", "a", "b", "netlab.io/churn=2",
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"^label_pods_args: no pod named$"):
        kubectl.label_pods_args("ns", [], "netlab.io/churn", "2")
