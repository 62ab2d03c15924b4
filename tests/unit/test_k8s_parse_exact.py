"""The kubectl JSON parsers on the fields the recorded objects do not exercise, to the letter:
each refusal names what was asked, the object and the field as it is written in the object,
and each accepted odd value (a headless service, an old node) parses to exactly what it means."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from lab.strict import DecodeError

DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"
NODES = json.loads((DATA / "nodes.json").read_text())


def node(spec: dict[str, Any]) -> dict[str, Any]:
    """The recorded k8s-node1 with `spec` as its whole spec."""
    item = copy.deepcopy(NODES["items"][1])
    item["spec"] = spec
    return item


def refusal(parse: Callable[[Any], object], raw: object) -> str:
    with pytest.raises(DecodeError) as e:
        parse(raw)
    return str(e.value)


NOT_A_CIDR = "is not a CIDR ('10.244.1.0/33' does not appear to be an IPv4 or IPv6 network)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"podCIDR": "10.244.1.0/33"},
            f"node k8s-node1: field spec.podCIDR = '10.244.1.0/33': {NOT_A_CIDR}",
        ),
        (
            {"podCIDRs": ["10.244.1.0/33"]},
            f"node k8s-node1: field spec.podCIDRs[0] = '10.244.1.0/33': {NOT_A_CIDR}",
        ),
        (
            {"podCIDR": "10.244.1.0/33", "podCIDRs": ["10.244.1.0/24"]},
            f"node k8s-node1: field spec.podCIDR = '10.244.1.0/33': {NOT_A_CIDR}",
        ),
    ],
    ids=["old-field-only", "list-only", "both"],
)
def test_a_malformed_pod_cidr_is_named_by_the_field_that_holds_it(
    spec: dict[str, Any], message: str
) -> None:
    assert refusal(k8s.parse_nodes, node(spec)) == message
