"""The Kubernetes network model, checked on the guide's cluster (kubeadm 1.18.1 + flannel vxlan).

Cluster-state tests read kubectl JSON on the control plane and run the pure checks of
`lab.k8s`. The run's Services over the k8s fleet (ClusterIP and NodePort matrices, balancing,
DNS answers, endpoints that change) are e2e/test_services.py's `[k8s]` tests; what only a
Kubernetes pod has is here (its resolver through kubelet's search path). Checks never assert
cell by cell: one comparison fails with every problem, the command that reproduces it and,
where a test has a namespace of its own, a dump of it. Nothing is parametrized from live
state: every loop runs over the lab definition's sorted node names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from e2e import checks, scenarios, services
from e2e.drivers.base import CommandLog, Pod
from e2e.drivers.k8s import K8sDriver
from e2e.fleets import Drivers, Fleets
from lab import k8s
from lab.model.config import Lab

pytestmark = pytest.mark.kubernetes

NEEDS_KUBERNETES = (
    "needs a lab with Kubernetes (kubernetes section in the lab file; e.g. LAB=guide-centos7 "
    "on a KVM host with internet)"
)


def _require_kubernetes(lab: Lab) -> None:
    if lab.kubernetes is None:
        pytest.skip(NEEDS_KUBERNETES)


@pytest.fixture(autouse=True)
def _kubernetes_only(lab: Lab) -> None:
    _require_kubernetes(lab)


@pytest.fixture(scope="session")
def cluster(
    lab: Lab, run_id: str, command_log: CommandLog, worker_tag: str, request: pytest.FixtureRequest
) -> K8sDriver:
    """kubectl on the control plane, unbound (cluster-wide reads). Skips before the lab is
    touched when it has no Kubernetes; one worker sweeps e2e namespaces of earlier runs."""
    _require_kubernetes(lab)
    driver = K8sDriver(lab, request.getfixturevalue("node_runner"), run_id, log=command_log)
    if worker_tag in ("main", "gw0"):
        driver.sweep()
    return driver


def _dump(ns: K8sDriver) -> str:
    return f"--- namespace {ns.namespace} ---\n{ns.dump()}"


def expect_no_problems(
    what: str, problems: Sequence[object], reproduce: Sequence[str], ns: K8sDriver | None = None
) -> None:
    __tracebackhide__ = True
    checks.expect_no_problems(problems, what, reproduce, None if ns is None else lambda: _dump(ns))


# ---------------------------------------------------------------------------------------------
# Cluster state


def test_every_node_is_ready_and_every_kube_system_pod_is_running(
    lab: Lab, cluster: K8sDriver
) -> None:
    problems = k8s.validate_nodes_ready(cluster.cluster.get_nodes(), lab)
    problems += k8s.validate_system_pods(cluster.cluster.get_pods(k8s.SYSTEM_NAMESPACE))
    expect_no_problems(
        "nodes and kube-system pods",
        problems,
        [
            cluster.reproduce("get", "nodes", "-o", "wide"),
            cluster.reproduce("-n", k8s.SYSTEM_NAMESPACE, "get", "pods", "-o", "wide"),
        ],
    )


def test_every_node_uses_its_private_ip_as_internal_ip_and_as_flannel_public_ip(
    lab: Lab, cluster: K8sDriver
) -> None:
    columns = (
        "custom-columns=NAME:.metadata.name,"
        'INTERNAL-IP:.status.addresses[?(@.type=="InternalIP")].address,'
        "FLANNEL-PUBLIC-IP:.metadata.annotations.flannel\\.alpha\\.coreos\\.com/public-ip"
    )
    expect_no_problems(
        "node addresses",
        k8s.validate_node_addresses(cluster.cluster.get_nodes(), lab),
        [cluster.reproduce("get", "nodes", "-o", columns)],
    )


def test_flannel_network_equals_the_kubeadm_pod_subnet_and_the_lab_pod_cidr(
    lab: Lab, cluster: K8sDriver
) -> None:
    problems = k8s.validate_network_config(
        cluster.cluster.get_flannel_netconf(), cluster.cluster.get_kubeadm_networking(), lab
    )
    expect_no_problems(
        "pod network configuration",
        problems,
        [
            cluster.reproduce(*k8s.flannel_configmap("jsonpath={.items[*].data.net-conf\\.json}")),
            cluster.reproduce(
                *k8s.system_configmap(
                    k8s.KUBEADM_CONFIGMAP, "jsonpath={.data.ClusterConfiguration}"
                )
            ),
        ],
    )


def test_node_pod_cidrs_are_disjoint_inside_the_pod_cidr_and_hold_every_pod_ip(
    lab: Lab, cluster: K8sDriver
) -> None:
    nodes = cluster.cluster.get_nodes()
    problems = k8s.validate_pod_cidrs(nodes, lab.pod_network.cidr)
    problems += k8s.validate_pod_ips(cluster.cluster.get_pods(), nodes)
    expect_no_problems(
        "pod address allocation",
        problems,
        [
            cluster.reproduce(
                "get", "nodes", "-o", "custom-columns=NAME:.metadata.name,PODCIDRS:.spec.podCIDRs"
            ),
            cluster.reproduce("get", "pods", "--all-namespaces", "-o", "wide"),
        ],
    )


def test_every_service_of_the_cluster_has_a_ready_endpoint(cluster: K8sDriver) -> None:
    # the cluster's own services; e2e namespaces of tests still starting up are not judged
    listed = cluster.cluster.get_services()
    services = [s for s in listed if s.namespace in ("default", "kube-system")]
    expect_no_problems(
        "service endpoints",
        k8s.validate_service_endpoints(services, cluster.cluster.get_endpoints()),
        [cluster.reproduce("get", "endpoints", "--all-namespaces")],
    )


# ---------------------------------------------------------------------------------------------
# Workloads: the run's Services over the fleet (ClusterIP, NodePort, balancing, DNS answers,
# endpoints that change) are e2e/test_services.py's, with `[k8s]` in their ids; what only a
# Kubernetes pod has stays here.

SHORT_NAMES = ("echo", "kubernetes.default")


def test_a_pods_resolver_finds_services_by_short_name_through_kubelets_search_path(
    lab: Lab, cluster: K8sDriver, fleets: Fleets, drivers: Drivers
) -> None:
    """kubelet's ClusterFirst resolv.conf (CoreDNS, the pod namespace's search path, ndots:5)
    as the pod's own resolver uses it: busybox `nslookup` of short names in the first fleet
    pod of every node: `echo` (the run's Service in the pod's namespace) and
    `kubernetes.default` (the API server's). The answers CoreDNS gives every pod and node
    for full names, and NXDOMAIN, are e2e/test_services.py's."""
    fleet = fleets.get("k8s")
    layout = fleets.layout
    assert layout is not None, "a lab with Kubernetes has the run's Services"
    driver = drivers.get("k8s")
    system = {s.ref: s.cluster_ip for s in cluster.cluster.get_services()}
    expected = {
        "echo": layout.addresses[(services.namespace("k8s"), services.ECHO)],
        "kubernetes.default": system.get("default/kubernetes"),
    }
    firsts: dict[str, Pod[Any]] = {}
    for slot in sorted(fleet):
        firsts.setdefault(fleet[slot].node, fleet[slot])

    def lookups(pod: Pod[Any]) -> list[str]:
        problems = []
        for name, want in expected.items():
            result = driver.exec(pod, driver.client_of(pod), ("nslookup", name), 15)
            got = k8s.parse_busybox_nslookup(result.stdout)
            if want is None or want not in got:
                seen = ", ".join(map(str, got)) or "nothing"
                problems.append(
                    f"{name} resolved to {seen} (exit {result.exit_code}), expected {want}\n"
                    f"    reproduce: {result.reproduce}"
                )
        return problems

    expect_no_problems(
        "short Service names through a pod's resolver",
        scenarios.side_by_side(list(firsts.values()), lookups),
        [],
    )
