"""The Kubernetes network model, checked on the guide's cluster (kubeadm 1.18.1 + flannel vxlan).

Cluster-state tests read kubectl JSON on the control plane and run the pure checks of
`lab.k8s`; workload tests create pods pinned to every lab node in a namespace of their own
(labelled with the run, deleted afterwards) and probe from pods and nodes. Probes never
assert: they fill a matrix or a problem list, and one comparison fails with every wrong cell,
what was expected, what was observed, the command that reproduces it and, for workload tests,
a dump of the test's namespace. Nothing is parametrized from live state: every loop runs over
the lab definition's sorted node names.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from e2e import checks, report
from e2e.drivers.base import CommandLog, ExecResult, Pod, PodRequest
from e2e.drivers.k8s import (
    ECHO_PORT,
    K8sDriver,
    echo_container,
    sleeper_container,
)
from lab import k8s
from lab.common import waits
from lab.model.config import Lab
from lab.net.reachability import Endpoint, Expect, Matrix, Observation

pytestmark = pytest.mark.kubernetes

NEEDS_KUBERNETES = (
    "needs a lab with Kubernetes (kubernetes section in the lab file; e.g. LAB=guide-centos7 "
    "on a KVM host with internet)"
)
ECHO_LABELS = {"netlab.io/app": "echo"}
SERVICE_PORT = 80
# kube-proxy programs a new service moments after its endpoints are ready: a bounded wait for
# the first answer on the control plane, then every probe is a single attempt.
SERVICE_PROGRAMMED = waits.Policy("kube-proxy programmed the service", timeout_s=60)
# Requests per source through a ClusterIP: with one endpoint per node (3), the chance that a
# given endpoint never answers 40 random picks is (2/3)**40, about 1e-7.
REQUESTS = 40


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


@pytest.fixture
def ns(cluster: K8sDriver, request: pytest.FixtureRequest) -> Iterator[K8sDriver]:
    """A driver bound to this test's own namespace; the namespace goes when the test ends."""
    driver = cluster.in_namespace(k8s.namespace_for(cluster.run_id, request.node.name))
    yield driver
    driver.delete_namespace()


def _dump(ns: K8sDriver) -> str:
    return f"--- namespace {ns.namespace} ---\n{ns.dump()}"


def expect_no_problems(
    what: str, problems: Sequence[object], reproduce: Sequence[str], ns: K8sDriver | None = None
) -> None:
    __tracebackhide__ = True
    checks.expect_no_problems(problems, what, reproduce, None if ns is None else lambda: _dump(ns))


@pytest.fixture
def expect_matrix(ns: K8sDriver, artifacts_dir: Path) -> Callable[[Matrix, str, int], None]:
    """Compare a filled matrix (saved with the run's artifacts when there are any, for the
    heatmaps); on failure: the whole table, every wrong cell with its command, and a dump of
    the test's namespace."""

    def expect(matrix: Matrix, slug: str, cells: int) -> None:
        __tracebackhide__ = True
        report.write_matrix(artifacts_dir, slug, matrix.render(), matrix.to_json())
        checks.expect_matrix(matrix, cells, lambda: _dump(ns))

    return expect


def _node_names(lab: Lab) -> list[str]:
    return sorted(lab.node_names)


def _echo_requests(lab: Lab, ns: K8sDriver) -> list[PodRequest]:
    """One echo server per node (the service's endpoints)."""
    return [
        PodRequest(f"echo-{n}", n, (echo_container(ns.agnhost_image),), ECHO_LABELS)
        for n in _node_names(lab)
    ]


def _client_requests(lab: Lab, ns: K8sDriver) -> list[PodRequest]:
    """One idle busybox per node, to probe from."""
    return [
        PodRequest(f"client-{n}", n, (sleeper_container(ns.busybox_image),))
        for n in _node_names(lab)
    ]


def _wait_until_programmed(ns: K8sDriver, url: str, backends: Sequence[Pod[Any]]) -> None:
    """Convergence, not the check: if the service never answers, the probes that follow
    still run and the matrix shows every cell that fails."""
    names = {p.name for p in backends}
    with contextlib.suppress(waits.WaitTimeout):
        waits.wait_until(
            SERVICE_PROGRAMMED,
            lambda: ns.exec_on_node(ns.control_plane, ("curl", "-s", "--max-time", "2", url), 10),
            lambda r: r.ok and r.stdout.strip() in names,
            sleep=ns.sleep,
        )


def _repeat(command: str) -> str:
    """A shell loop: `command` REQUESTS times, one answer per line."""
    return f"for i in $(seq {REQUESTS}); do {command}; echo; done"


def _answers(result: ExecResult) -> collections.Counter[str]:
    return collections.Counter(line.strip() for line in result.stdout.splitlines() if line.strip())


def _detail(result: ExecResult, answers: collections.Counter[str]) -> str:
    seen = ", ".join(f"{k} x{v}" for k, v in sorted(answers.items())) or "no answer"
    err = result.stderr.strip().splitlines()[-1:] if result.stderr.strip() else []
    return f"exit {result.exit_code}; answered by: {seen}" + (f"; {err[0]}" if err else "")


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
# Workloads


def test_cluster_ip_is_reached_from_every_pod_and_every_node_and_reaches_every_endpoint(
    lab: Lab, ns: K8sDriver, expect_matrix: Callable[[Matrix, str, int], None]
) -> None:
    requests = _echo_requests(lab, ns)
    pods = ns.create_pods([*requests, *_client_requests(lab, ns)])
    backends, clients = pods[: len(requests)], pods[len(requests) :]
    service = ns.cluster.create_service(ns.bound, "echo", ECHO_LABELS, SERVICE_PORT, ECHO_PORT)
    ns.cluster.wait_for_endpoints(ns.bound, "echo", [p.ip for p in backends])
    url = f"http://{service.cluster_ip}:{SERVICE_PORT}/hostname"
    _wait_until_programmed(ns, url, backends)
    budget = REQUESTS * 2 + 30

    probes: list[tuple[Endpoint, ExecResult]] = []
    for client in clients:
        result = ns.exec(client, "client", ("sh", "-c", _repeat(f"wget -qO- -T 2 {url}")), budget)
        probes.append((Endpoint(f"pod {client.name}", client.node, str(client.ip)), result))
    for node in sorted(lab.nodes, key=lambda n: n.name):
        script = _repeat(f"curl -s --max-time 2 {url}")
        result = ns.exec_on_node(node.name, ("sh", "-c", script), budget)
        probes.append((Endpoint(f"node {node.name}", node.name, str(node.ip)), result))

    targets = tuple(Endpoint(p.name, p.node, str(p.ip)) for p in backends)
    matrix = Matrix(
        f"ClusterIP {service.cluster_ip}:{SERVICE_PORT} ({REQUESTS} requests per source) -> "
        "the endpoint that answered",
        tuple(source for source, _ in probes),
        targets,
    )
    for source, result in probes:
        answers = _answers(result)
        # every request must be answered by an endpoint: a lost request fails the whole row
        answered = sum(answers[t.name] for t in targets)
        for target in targets:
            matrix.expected[(source.name, target.name)] = Expect(
                True, why=f"all {REQUESTS} requests answered, balanced over every ready endpoint"
            )
            matrix.observed[(source.name, target.name)] = Observation(
                reachable=answered == REQUESTS and answers[target.name] > 0,
                seen_source=None,
                reproduce=result.reproduce,
                detail=f"{answered}/{REQUESTS} answered by an endpoint; "
                + _detail(result, answers),
            )
    expect_matrix(matrix, "k8s-cluster-ip", 2 * len(lab.nodes) * len(lab.nodes))


def test_node_port_answers_on_every_node_from_every_node(
    lab: Lab, ns: K8sDriver, expect_matrix: Callable[[Matrix, str, int], None]
) -> None:
    backends = ns.create_pods(_echo_requests(lab, ns))
    service = ns.cluster.create_service(
        ns.bound, "echo-np", ECHO_LABELS, SERVICE_PORT, ECHO_PORT, service_type="NodePort"
    )
    ns.cluster.wait_for_endpoints(ns.bound, "echo-np", [p.ip for p in backends])
    node_port = service.ports[0].node_port
    names = {p.name for p in backends}
    nodes = sorted(lab.nodes, key=lambda n: n.name)
    plane = lab.node(ns.control_plane)
    _wait_until_programmed(ns, f"http://{plane.ip}:{node_port}/hostname", backends)

    sources = tuple(Endpoint(f"node {n.name}", n.name, str(n.ip)) for n in nodes)
    targets = tuple(Endpoint(f"{n.name}:{node_port}", n.name, str(n.ip)) for n in nodes)
    matrix = Matrix(f"NodePort {node_port} on every node's private IP", sources, targets)
    for source, src_node in zip(sources, nodes, strict=True):
        for target, dst_node in zip(targets, nodes, strict=True):
            url = f"http://{dst_node.ip}:{node_port}/hostname"
            result = ns.exec_on_node(src_node.name, ("curl", "-s", "--max-time", "5", url), 20)
            answer = result.stdout.strip()
            matrix.expected[(source.name, target.name)] = Expect(
                True, why="a NodePort answers on every node"
            )
            matrix.observed[(source.name, target.name)] = Observation(
                reachable=result.ok and answer in names,
                seen_source=None,
                reproduce=result.reproduce,
                detail=f"exit {result.exit_code}; answer {answer[:80]!r}",
            )
    expect_matrix(matrix, "k8s-node-port", len(lab.nodes) * len(lab.nodes))


def test_service_dns_names_resolve_to_cluster_ips_from_pods_on_every_node(
    lab: Lab, cluster: K8sDriver, ns: K8sDriver
) -> None:
    domain = cluster.cluster.get_kubeadm_networking().dns_domain
    clients = ns.create_pods(_client_requests(lab, ns))
    service = ns.cluster.create_service(ns.bound, "echo", ECHO_LABELS, SERVICE_PORT, ECHO_PORT)
    system = {s.ref: s for s in cluster.cluster.get_services()}
    expected = {
        "kubernetes.default": system["default/kubernetes"].cluster_ip,
        f"kube-dns.kube-system.svc.{domain}": system["kube-system/kube-dns"].cluster_ip,
        f"echo.{ns.namespace}.svc.{domain}": service.cluster_ip,
        "echo": service.cluster_ip,  # the pod's own namespace, through its search path
    }
    problems: list[str] = []
    reproduce: list[str] = []
    for client in clients:
        for name, want in expected.items():
            result = ns.exec(client, "client", ("nslookup", name), 15)
            got = k8s.parse_busybox_nslookup(result.stdout)
            if want not in got:
                seen = ", ".join(map(str, got)) or "nothing"
                problems.append(
                    f"pod {client.name} on {client.node}: {name} resolved to {seen} "
                    f"(exit {result.exit_code}), expected {want}"
                )
                reproduce.append(result.reproduce)
    expect_no_problems("service DNS from pods", problems, reproduce, ns)
