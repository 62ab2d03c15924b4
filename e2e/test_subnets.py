"""Non-conflicting pod IPs: every pod IP in its node's subnet; node subnets disjoint and
inside the cluster pod CIDR."""

from __future__ import annotations

from e2e import checks
from e2e.drivers.base import Pod
from e2e.drivers.cni import CniDriver
from lab.config import Lab


def test_every_pod_ip_lies_in_its_nodes_pod_subnet(
    fleet: dict[tuple[str, int], Pod], driver: CniDriver
) -> None:
    subnets = {n: driver.node_subnets(n) for n in driver.nodes}
    checks.expect_no_problems(
        checks.pod_subnet_problems(list(fleet.values()), subnets), "pod IPs vs node subnets"
    )


def test_node_pod_subnets_are_disjoint_and_inside_the_cluster_cidr(
    lab: Lab, driver: CniDriver
) -> None:
    subnets = {n: driver.node_subnets(n) for n in driver.nodes}
    checks.expect_no_problems(
        checks.node_subnet_problems(lab.pod_network.cidr, subnets), "node pod subnets"
    )
