"""Every pod reaches every pod, and every node every pod, without NAT; big packets cross nodes."""

from __future__ import annotations

from pathlib import Path

from e2e import checks, report
from e2e.drivers.base import Pod
from e2e.drivers.cni import CniDriver
from lab.config import Lab
from lab.reachability import Matrix


def _save(artifacts_dir: Path, slug: str, matrix: Matrix) -> None:
    report.write_matrix(artifacts_dir, slug, matrix.render(), matrix.to_json())


def test_every_pod_reaches_every_pod_without_nat(
    fleet: dict[tuple[str, int], Pod], driver: CniDriver, artifacts_dir: Path
) -> None:
    pods = [fleet[s] for s in sorted(fleet)]
    matrix = checks.pod_matrix(driver, pods)
    _save(artifacts_dir, "pod-to-pod", matrix)
    checks.expect_matrix(matrix)


def test_every_node_reaches_every_pod_from_an_address_it_owns(
    lab: Lab,
    fleet: dict[tuple[str, int], Pod],
    driver: CniDriver,
    artifacts_dir: Path,
) -> None:
    """Policy: the receiver must see an address the sending node owns (its private IP, or
    the bridge/overlay address the kernel picks as route source; flannel's --ip-masq leaves
    node-to-pod traffic un-NATed because that source is inside the pod CIDR or is the node's
    own address). Never another node's address or a translated one. Observed sources are
    reported in the matrix artifact."""
    pods = [fleet[s] for s in sorted(fleet)]
    matrix = checks.node_matrix(driver, lab, pods)
    _save(artifacts_dir, "node-to-pod", matrix)
    checks.expect_matrix(matrix)


def test_a_dont_fragment_packet_at_the_path_mtu_crosses_nodes(
    node_pair: tuple[str, str], fleet: dict[tuple[str, int], Pod], driver: CniDriver
) -> None:
    source, target = fleet[(node_pair[0], 0)], fleet[(node_pair[1], 0)]
    checks.expect_no_problems(
        checks.mtu_problems(driver, source, target), f"path MTU {node_pair[0]} -> {node_pair[1]}"
    )
