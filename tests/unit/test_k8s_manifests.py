"""What the Kubernetes driver sends kubectl, to the letter: the argv for flannel's ConfigMap,
namespace names cut to a valid label, the objects' names and labels refused with their rule at
63 characters (and accepted at 63), the manifest's shape, a container's summary."""

from __future__ import annotations

import re

import pytest

from lab.k8s import kubectl, manifests
from lab.k8s.manifests import ContainerSpec
from lab.k8s.model import ContainerStatus


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
