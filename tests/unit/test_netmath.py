"""Network math (lab/net/netmath.py): node subnets carved from a pod CIDR, exactly as many as
fit."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from lab.net.netmath import node_subnets


def test_node_subnets_fill_a_cidr_exactly_and_refuse_one_more() -> None:
    cidr = IPv4Network("10.244.0.0/23")
    assert node_subnets(cidr, 24, 2) == (
        IPv4Network("10.244.0.0/24"),
        IPv4Network("10.244.1.0/24"),
    )
    with pytest.raises(ValueError, match=r"^10\.244\.0\.0/23 holds fewer than 3 /24 subnets$"):
        node_subnets(cidr, 24, 3)
