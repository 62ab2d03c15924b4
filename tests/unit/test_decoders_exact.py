"""The decoders' own messages to the letter: a YAML error at its line and column (a control
character, a tab, an error without a position), kubectl output that is no JSON object or holds
no object, or a number longer than Python reads, pod IPs off their node, and `parse_lab` for
a document already read."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from lab.k8s.checks import validate_pod_ips
from lab.k8s.decode import document, items_of, too_long
from lab.k8s.model import ClusterNode, ClusterPod
from lab.model.strict import DecodeError


def test_kubectl_output_that_is_no_json_object_is_named_with_what_was_asked() -> None:
    with pytest.raises(DecodeError) as e:
        document("[1, 2]", "kubectl get nodes")
    assert str(e.value) == "kubectl get nodes = [1, 2]: expected a JSON object, got a list"
    with pytest.raises(DecodeError) as e:
        document("{", "kubectl get nodes")
    assert e.value.problem.where == "kubectl get nodes"
    assert e.value.problem.value == "{"
    assert e.value.problem.message.startswith("output is not JSON (Expecting property name")
    with pytest.raises(DecodeError) as e:
        items_of({"kind": "List", "items": [{"kind": "Node"}, 7]}, "kubectl get nodes", "Node")
    assert str(e.value) == "kubectl get nodes: items[1] = 7: must be an object"
    assert items_of({"kind": "NodeList"}, "kubectl get nodes", "Node") == []


def test_kubectl_output_with_a_number_too_long_to_read_is_named_not_raised() -> None:
    # past Python's int digit limit (4300) json.loads raises a plain ValueError, no
    # JSONDecodeError: it is refused as the others are, without Python's advice to raise it
    assert document('{"n": ' + "9" * 4300 + "}", "kubectl get nodes") == {"n": int("9" * 4300)}
    raw = '{"n": ' + "9" * 4301 + "}"
    with pytest.raises(DecodeError) as e:
        document(raw, "kubectl get nodes")
    assert e.value.problem.where == "kubectl get nodes"
    assert e.value.problem.value == raw
    assert e.value.problem.message == (
        "output holds a number too long to read (Exceeds the limit (4300 digits) for integer "
        "string conversion: value has 4301 digits)"
    )


def test_a_number_too_long_keeps_pythons_reason_whole_when_it_gives_no_advice() -> None:
    # what a later Python may write: the reason stays, only "; use ..." advice is cut
    assert too_long(ValueError("Exceeds the limit (4300 digits)")) == (
        "a number too long to read (Exceeds the limit (4300 digits))"
    )
    assert too_long(ValueError("too long; use this; use that")) == (
        "a number too long to read (too long)"
    )


def pod(name: str, ip: str, node: str | None, v6: tuple[str, ...] = ()) -> ClusterPod:
    from ipaddress import IPv6Address

    return ClusterPod(
        name, "ns", "Running", node, IPv4Address(ip), False, ("c",), (),
        pod_ips_v6=tuple(IPv6Address(a) for a in v6),
    )  # fmt: skip


def test_pod_ips_off_their_node_or_on_an_unknown_node() -> None:
    nodes = [
        ClusterNode("n1", True, "", IPv4Address("10.10.10.1"),
                    (IPv4Network("10.244.0.0/24"), IPv4Network("10.244.9.0/24")), None),
        ClusterNode("n2", True, "", IPv4Address("10.10.10.2"), (), None),
    ]  # fmt: skip
    pods = [
        pod("ghost", "10.244.5.2", "n9", ("fd00::5", "fd00::6")),
        pod("in", "10.244.9.3", "n1"),
        pod("out", "10.244.1.2", "n1", ("fd00::7",)),
        pod("nocidr", "10.244.1.3", "n2"),
    ]
    assert [str(p) for p in validate_pod_ips(pods, nodes)] == [
        "pod ns/ghost: IP 10.244.5.2 (and fd00::5) (and fd00::6) on node n9, which is not in "
        "the node list",
        "pod ns/out on n1: IP 10.244.1.2 (and fd00::7) is outside the node's podCIDR "
        "10.244.0.0/24, 10.244.9.0/24",
    ]
