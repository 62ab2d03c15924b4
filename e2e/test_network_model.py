"""The Kubernetes network model, scenario by scenario, with every driver the lab supports: each
test runs once per driver and its id says which kind of pod proved it (`[cni]`: sandboxes the
suite wires with the node's CNI config; `[k8s]`: pods Kubernetes scheduled).

- every pod reaches every pod, and every node every pod, without NAT (the receiver reports the
  source address it saw, on every cell of a matrix whose size the lab implies);
- one IP per pod, which the pod, the runtime and its peers see alike;
- the containers of a pod share one network namespace (the guide's busybox + nginx pod);
- per-node pod subnets are disjoint, inside the cluster CIDR, as the lab allots them, and hold
  their pods' IPs;
- the pod MTU is the lab's on every pod, and full-size packets cross nodes from every pod and
  every node, over ICMP (don't-fragment) and TCP.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from e2e import checks, mtu, report, scenarios
from e2e.drivers.base import Driver, Pod
from e2e.probes import Proto
from lab.model.config import Lab
from lab.net.reachability import Matrix
from lab.podnet import backend_of


def _save(artifacts_dir: Path, slug: str, matrix: Matrix) -> None:
    report.write_matrix(artifacts_dir, slug, matrix.render(), matrix.to_json())


def _pods(fleet: dict[tuple[str, int], Pod[Any]]) -> list[Pod[Any]]:
    return [fleet[s] for s in sorted(fleet)]


PROTOCOLS = pytest.mark.parametrize("proto", ["tcp", "udp"])


def _slug(kind: str, driver: Driver[Any], proto: str) -> str:
    return f"{kind}-{driver.name}" + ("" if proto == "tcp" else f"-{proto}")


@PROTOCOLS
def test_every_pod_reaches_every_pod_without_nat(
    lab: Lab,
    fleet: dict[tuple[str, int], Pod[Any]],
    driver: Driver[Any],
    artifacts_dir: Path,
    proto: Proto,
) -> None:
    """Over TCP and UDP (flannel masquerades UDP too; conntrack treats it otherwise): every
    cell answered by its target pod, which saw the sender's own IP."""
    checks.skip_unless_answered_over(driver.protocols, driver.name, proto)
    matrix = scenarios.pod_matrix(driver, _pods(fleet), proto=proto)
    _save(artifacts_dir, _slug("pod-to-pod", driver, proto), matrix)
    pod_cells, _ = scenarios.expected_cells(sorted(fleet), len(lab.nodes))
    checks.expect_matrix(matrix, pod_cells)


@PROTOCOLS
def test_every_node_reaches_every_pod_from_the_address_its_route_picks(
    lab: Lab,
    fleet: dict[tuple[str, int], Pod[Any]],
    driver: Driver[Any],
    artifacts_dir: Path,
    proto: Proto,
) -> None:
    """Policy: the receiver must see exactly the source address the sending node's kernel
    picks for the route to that pod (`ip route get`), and that address must be the node's
    private IP or its address on the pod bridge / overlay device: never loopback, never its
    management address, never another node's, never a translated one."""
    checks.skip_unless_answered_over(driver.protocols, driver.name, proto)
    matrix = scenarios.node_matrix(driver, lab, _pods(fleet), proto=proto)
    _save(artifacts_dir, _slug("node-to-pod", driver, proto), matrix)
    _, node_cells = scenarios.expected_cells(sorted(fleet), len(lab.nodes))
    checks.expect_matrix(matrix, node_cells)


def test_every_pod_has_one_ip_which_it_and_its_peers_see_alike(
    slot: tuple[str, int], fleet: dict[tuple[str, int], Pod[Any]], driver: Driver[Any]
) -> None:
    pod = fleet[slot]
    # a peer on another node, so the source crosses the pod network (the lab has two nodes)
    peer = next(p for s, p in sorted(fleet.items()) if p.node != pod.node)
    checks.expect_no_problems(
        scenarios.pod_identity_problems(driver, pod, peer), f"pod {pod.name} on {pod.node}"
    )


@pytest.fixture
def guide_pods(
    lab: Lab,
    driver: Driver[Any],
    make_pods: Callable[..., list[Pod[Any]]],
    request: pytest.FixtureRequest,
) -> list[Pod[Any]]:
    """The guide's pod on every node: the fleet's first pod of each node where the driver's
    fleet pods are the guide's pod, else one made for the test (removed at its teardown)."""
    guide = driver.guide_pod()
    if guide.in_fleet:
        fleet: dict[tuple[str, int], Pod[Any]] = request.getfixturevalue("fleet")
        return [fleet[(node, 0)] for node in sorted(lab.node_names)]
    return make_pods(*((node, guide.containers) for node in sorted(lab.node_names)))


def test_containers_of_a_pod_share_one_network_namespace(
    guide_pods: list[Pod[Any]], driver: Driver[Any]
) -> None:
    """The guide's pod on every node at once (the nodes work side by side, not in turn)."""
    guide = driver.guide_pod()
    checks.expect_no_problems(
        scenarios.side_by_side(
            guide_pods, lambda p: scenarios.shared_netns_problems(driver, p, guide)
        ),
        f"the guide's pod ({' + '.join(c.name for c in guide.containers)}) on "
        f"{', '.join(p.node for p in guide_pods)}",
    )


def test_node_pod_subnets_are_disjoint_as_allotted_and_hold_their_pods_ips(
    lab: Lab, fleet: dict[tuple[str, int], Pod[Any]], driver: Driver[Any]
) -> None:
    checks.expect_no_problems(
        scenarios.subnet_problems(lab, _pods(fleet), driver.node_subnets()),
        f"pod subnets as the nodes report them [{driver.name}]",
    )


@pytest.mark.long
def test_every_pod_has_the_labs_mtu_and_full_size_packets_cross_from_pods_and_nodes(
    lab: Lab, fleet: dict[tuple[str, int], Pod[Any]], driver: Driver[Any]
) -> None:
    """Every fleet pod's eth0 has the lab's pod MTU; from every pod and every node to a pod
    on another node, a don't-fragment ping of that size crosses and one byte more is refused
    at that MTU, and a TCP transfer of several full-size segments is counted whole by the
    receiving pod within a bound (e2e/mtu.py: one agent call per node)."""
    checks.expect_no_problems(
        mtu.observe_mtu(driver, lab, _pods(fleet)),
        f"MTU {backend_of(lab).pod_mtu(lab)} from every pod and node [{driver.name}]",
    )
