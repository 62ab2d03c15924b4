"""The run's Services over its fleet pods: on a lab without Kubernetes carried by
kube-proxy-shaped rules (iptables mode of v1.18: lab/net/kubeproxy.py; no kube-proxy runs) and
a cluster DNS behind the kube-dns ClusterIP (e2e/services.py), on a lab with Kubernetes real
Service objects carried by its kube-proxy and CoreDNS (e2e/cluster_services.py; `[k8s]`). The
same cells and expectations either way. As the Kubernetes e2e sig-network Granular Checks ask,
over TCP and UDP:

- every pod and every node reaches every pod's Service by its ClusterIP, the intended pod
  answers, and it sees the sender's own IP (a pod), its own bridge address (its own hairpin),
  or the address the node's route picks (a node: masqueraded);
- every NodePort, on every node, reaches its endpoint, local or remote, from pods and nodes;
- a Service spreads new connections over all its endpoints;
- the cluster DNS answers every pod and node with the Service's ClusterIP (and NXDOMAIN);
- endpoints that change: one that left never answers again, one that came back answers.

What only a Kubernetes lab has (the cluster's own Services' endpoints, a pod's resolver through
kubelet's search path) stays in e2e/test_kubernetes.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e import checks, report, scenarios, services
from e2e.drivers import why_no_services
from e2e.drivers.base import Driver, Pod
from e2e.fleets import Fleet, Fleets
from lab.model.config import Lab
from lab.net import kubeproxy as kp

NEEDS_SERVICES = (
    "needs a lab with a `services` section (the CI labs ci-debian12 and ci-debian12-vxlan) or "
    "with Kubernetes (guide-centos7, on a KVM host with internet)"
)
PROTOCOLS = pytest.mark.parametrize("proto", services.PROTOCOLS)


@pytest.fixture(scope="session")
def layout(lab: Lab, fleets: Fleets) -> services.Layout:
    made = fleets.layout
    if made is None:
        pytest.skip(NEEDS_SERVICES)
    return made


@pytest.fixture(scope="session")
def svc(layout: services.Layout, driver: Driver[Any], fleets: Fleets) -> services.DriverServices:
    """The driver's Services, programmed on every node (or made in the cluster) with its
    fleet; a driver whose pods get none on this lab is skipped with why."""
    reason = why_no_services(driver.name, driver.lab)
    if reason is not None:
        pytest.skip(reason)
    return fleets.services(driver.name)


@pytest.fixture(scope="session")
def routes(lab: Lab, driver: Driver[Any], fleet: Fleet) -> services.Routes:
    return services.route_sources(driver, lab, _pods(fleet))


def _pods(fleet: Fleet) -> list[Pod[Any]]:
    return [fleet[s] for s in sorted(fleet)]


def _check(
    artifacts_dir: Path,
    slug: str,
    cells: services.Cells,
    driver: Driver[Any],
    pods: list[Pod[Any]],
    implied: int,
) -> None:
    matrix = services.observe_cells(driver, cells)
    report.write_matrix(artifacts_dir, slug, matrix.render(), matrix.to_json())
    hints = services.hints(matrix, pods)
    checks.expect_matrix(
        matrix,
        implied,
        (lambda: "likely cause:\n" + "\n".join(f"  - {h}" for h in hints)) if hints else None,
    )


@PROTOCOLS
def test_every_pod_and_node_reaches_every_pods_service_by_its_cluster_ip(
    lab: Lab,
    svc: services.DriverServices,
    fleet: Fleet,
    routes: services.Routes,
    driver: Driver[Any],
    artifacts_dir: Path,
    proto: kp.Protocol,
) -> None:
    checks.skip_unless_answered_over(driver.protocols, driver.name, proto)
    pods = _pods(fleet)
    cells = services.clusterip_cells(lab, svc, pods, routes, proto)
    implied = (len(pods) + len(lab.nodes)) * len(pods)
    _check(artifacts_dir, f"clusterip-{proto}-{driver.name}", cells, driver, pods, implied)


@PROTOCOLS
def test_every_nodeport_reaches_its_local_and_remote_endpoint_from_every_pod_and_node(
    lab: Lab,
    svc: services.DriverServices,
    fleet: Fleet,
    routes: services.Routes,
    driver: Driver[Any],
    artifacts_dir: Path,
    proto: kp.Protocol,
) -> None:
    checks.skip_unless_answered_over(driver.protocols, driver.name, proto)
    pods = _pods(fleet)
    cells = services.nodeport_cells(lab, svc, pods, routes, proto)
    implied = (len(pods) + len(lab.nodes)) * len(lab.nodes) ** 2
    _check(artifacts_dir, f"nodeport-{proto}-{driver.name}", cells, driver, pods, implied)


@PROTOCOLS
def test_a_service_spreads_new_connections_over_all_its_endpoints(
    svc: services.DriverServices, fleet: Fleet, driver: Driver[Any], proto: kp.Protocol
) -> None:
    checks.skip_unless_answered_over(driver.protocols, driver.name, proto)
    pods = _pods(fleet)
    counts, problems = services.balance_problems(driver, svc.echo, pods[0], pods, proto)
    checks.expect_no_problems(
        problems, f"{svc.echo.namespace}/{svc.echo.name} from {pods[0].name} (answers: {counts})"
    )


def test_the_cluster_dns_answers_every_pod_and_node(
    lab: Lab,
    layout: services.Layout,
    svc: services.DriverServices,
    fleet: Fleet,
    driver: Driver[Any],
) -> None:
    checks.expect_no_problems(
        services.dns_problems(driver, lab, layout, svc, _pods(fleet)),
        f"kube-dns at {layout.addresses[(services.DNS_NAMESPACE, services.DNS_NAME)]}:53 "
        f"[{driver.name}]",
    )


@pytest.mark.long
def test_an_endpoint_that_left_never_answers_and_one_that_came_back_does(
    layout: services.Layout,
    svc: services.DriverServices,
    fleet: Fleet,
    driver: Driver[Any],
    artifacts_dir: Path,
) -> None:
    """The `churn` Service: one endpoint on another node than the sender, then every other
    pod (it left), then it alone again (it came back); over TCP, UDP and one UDP flow kept
    across the changes (kube-proxy removes its conntrack entry when its endpoint leaves)."""
    checks.expect_no_problems(
        services.churn_problems(driver, layout, artifacts_dir, svc, _pods(fleet)),
        f"{svc.churn.namespace}/{svc.churn.name} [{driver.name}]",
    )


@pytest.mark.long
def test_cri_pods_get_kubelets_resolv_conf_and_resolve_a_service_by_its_short_name(
    lab: Lab, layout: services.Layout, cri_driver: Driver[Any], fleets: Fleets
) -> None:
    """kubelet's ClusterFirst resolv.conf through the CRI DNSConfig (nameserver = the DNS
    ClusterIP, the namespace's search path, ndots:5), and the libc resolver of every CRI
    pod finding `echo` through it (the CNI-direct sandboxes use the node's resolv.conf)."""
    fleet = fleets.get("cri")
    svc = fleets.services("cri")
    pods = [fleet[s] for s in sorted(fleet)]
    checks.expect_no_problems(
        scenarios.side_by_side(
            pods, lambda p: services.resolv_conf_problems(cri_driver, lab, svc, p)
        ),
        "the CRI pods' resolv.conf and the names it resolves",
    )
