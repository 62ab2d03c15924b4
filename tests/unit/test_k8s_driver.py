"""The Kubernetes driver against a strict fake of the nodes' SSH channels, fed with recorded
kubectl and agent outputs: pods, exec, probes batched per source, sweeps, failures."""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from e2e.drivers.base import Container, Pod, PodRequest, Probe
from e2e.drivers.k8s import (
    K8sDriver,
    K8sHandle,
    PodNotRunning,
    echo_container,
)
from e2e.drivers.kube import KubectlFailed
from lab.common import waits
from lab.model.config import E2eImages, Lab
from lab.model.labfile import load_lab
from tests.fakes import Script, Step, channels, script

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "k8s"


def text(name: str) -> str:
    return (DATA / name).read_text()


def doc(name: str) -> dict[str, Any]:
    return json.loads(text(name))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def lab() -> Lab:
    return load_lab(ROOT / "labs" / "guide-centos7.yaml")


FAST = waits.Policy("test wait", timeout_s=30, interval_s=0, max_attempts=3)
ECHO_IMAGE = E2eImages().echo.image  # the guide lab leaves e2e_images at their defaults


def driver_for(lab: Lab, *steps: Step, namespace: str | None = None) -> tuple[K8sDriver, Script]:
    steps_ = script(*steps)
    nodes = channels(lab.name, lab.node_names, steps_)
    sleeps: list[float] = []
    driver = K8sDriver(
        lab,
        nodes,
        "r0614",
        namespace,
        sleep=sleeps.append,
        pod_wait=FAST,
        namespace_wait=FAST,
        endpoints_wait=FAST,
    )
    return driver, steps_


def kubectl(*args: str) -> tuple[str, ...]:
    return ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", *args)


NS = "nl-r0614-services-9b41d7"


def applies(kind: str, name: str, check: Callable[[dict[str, Any]], None] | None = None) -> Any:
    def verify(stdin: str | None) -> None:
        assert stdin is not None, "kubectl apply -f - needs the manifest on stdin"
        (obj,) = json.loads(stdin)["items"]
        assert (obj["kind"], obj["metadata"]["name"]) == (kind, name)
        assert obj["metadata"]["labels"]["netlab.io/run"] == "r0614"
        if check is not None:
            check(obj)

    return verify


def namespace_steps() -> list[Step]:
    return [
        Step(
            "k8s-master",
            kubectl("apply", "-f", "-"),
            "namespace/x created",
            stdin=applies("Namespace", NS),
        ),
        Step(
            "k8s-master",
            kubectl("-n", NS, "get", "serviceaccount", "default", "-o", "name"),
            exit_code=1,
            stderr='Error from server (NotFound): serviceaccounts "default" not found',
        ),
        Step(
            "k8s-master",
            kubectl("-n", NS, "get", "serviceaccount", "default", "-o", "name"),
            "serviceaccount/default",
        ),
    ]


def pod_json(name: str, phase_file: str = "e2e-pod-running.json", **status: Any) -> str:
    raw = doc(phase_file)
    raw["metadata"]["name"] = name
    raw["metadata"]["namespace"] = NS
    raw["status"].update(status)
    return json.dumps(raw)


def test_create_pod_applies_a_pinned_pod_and_waits_until_it_runs(lab: Lab) -> None:
    def pinned(obj: dict[str, Any]) -> None:
        assert obj["spec"]["nodeName"] == "k8s-node1"
        assert obj["spec"]["containers"] == [
            {
                "name": "echo",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.21",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/agnhost", "netexec", "--http-port=8080", "--udp-port=8080"],
            }
        ]
        assert obj["metadata"]["labels"]["netlab.io/app"] == "echo"

    get_pod = kubectl("-n", NS, "get", "pod", "echo-k8s-node1", "-o", "json")
    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step(
            "k8s-master",
            kubectl("apply", "-f", "-"),
            "pod/echo-k8s-node1 created",
            stdin=applies("Pod", "echo-k8s-node1", pinned),
        ),
        Step("k8s-master", get_pod, pod_json("echo-k8s-node1", "e2e-pod-pending.json")),
        Step("k8s-master", get_pod, pod_json("echo-k8s-node1")),
        namespace=NS,
    )
    pod = driver.create_pod(
        "echo-k8s-node1", "k8s-node1", (echo_container(ECHO_IMAGE),), {"netlab.io/app": "echo"}
    )
    script.done()
    assert (pod.name, pod.node, pod.ip) == (
        "echo-k8s-node1",
        "k8s-node1",
        IPv4Address("10.244.1.7"),
    )
    assert pod.handle.namespace == NS


def test_a_container_without_image_runs_the_busybox_image(lab: Lab) -> None:
    def busybox(obj: dict[str, Any]) -> None:
        assert obj["spec"]["containers"][0]["image"] == "busybox:1.28"

    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Pod", "c", busybox)),
        namespace=NS,
    )
    driver.start_pod("c", "k8s-node2", (Container("client", ("sleep", "60")),))
    script.done()


def test_create_pods_applies_all_before_waiting_for_any(lab: Lab) -> None:
    a = kubectl("-n", NS, "get", "pod", "a", "-o", "json")
    b = kubectl("-n", NS, "get", "pod", "b", "-o", "json")
    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Pod", "a")),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Pod", "b")),
        Step("k8s-master", a, pod_json("a")),
        Step("k8s-master", b, pod_json("b", podIP="10.244.1.8", podIPs=[{"ip": "10.244.1.8"}])),
        namespace=NS,
    )
    pods = driver.create_pods(
        [
            PodRequest("a", "k8s-node1", (echo_container(ECHO_IMAGE),)),
            PodRequest("b", "k8s-node1", (echo_container(ECHO_IMAGE),)),
        ]
    )
    script.done()
    assert [str(p.ip) for p in pods] == ["10.244.1.7", "10.244.1.8"]


def test_a_crash_looping_pod_fails_at_once_with_its_state_and_how_to_inspect(lab: Lab) -> None:
    crashed = {
        "containerStatuses": [
            {
                "name": "echo",
                "ready": False,
                "restartCount": 0,
                "image": "x",
                "imageID": "",
                "state": {"terminated": {"exitCode": 2, "reason": "Error"}},
            }
        ]
    }
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("-n", NS, "get", "pod", "p", "-o", "json"),
            pod_json("p", **crashed),
        ),
        namespace=NS,
    )
    with pytest.raises(PodNotRunning) as err:
        driver.wait_for_pod("p", "k8s-node1", (echo_container(ECHO_IMAGE),))
    script.done()
    assert str(err.value) == (
        f"pod {NS}/p on k8s-node1: phase Running; containers: echo terminated: Error (exit "
        "code 2), 0 restarts\n"
        "  inspect: python -m lab ssh guide-centos7 k8s-master -- 'sudo -n kubectl "
        f"--kubeconfig /etc/kubernetes/admin.conf -n {NS} describe pod p'"
    )


def test_a_pod_that_never_starts_fails_within_the_named_wait_with_an_image_hint(lab: Lab) -> None:
    pulling = {
        "containerStatuses": [
            {
                "name": "echo",
                "ready": False,
                "restartCount": 0,
                "image": "x",
                "imageID": "",
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "registry.aliyuncs.com/x"',
                    }
                },
            }
        ]
    }
    get_pod = kubectl("-n", NS, "get", "pod", "p", "-o", "json")
    pending = pod_json("p", "e2e-pod-pending.json", **pulling)
    driver, script = driver_for(
        lab, *(Step("k8s-master", get_pod, pending) for _ in range(3)), namespace=NS
    )
    with pytest.raises(PodNotRunning, match="within 30s \\(test wait\\): phase Pending") as err:
        driver.wait_for_pod("p", "k8s-node1", (echo_container(ECHO_IMAGE),))
    script.done()
    assert "echo waiting: ImagePullBackOff, 0 restarts: Back-off pulling image" in str(err.value)
    assert "the node cannot pull an image" in str(err.value)


def test_exec_runs_kubectl_exec_and_reproduces_as_one_ssh_command(lab: Lab) -> None:
    pod = Pod("client-k8s-node1", "k8s-node1", IPv4Address("10.244.1.9"), (), K8sHandle(NS))
    argv = ("wget", "-qO-", "-T", "2", "http://10.1.23.4/hostname")
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("exec", "-n", NS, "client-k8s-node1", "-c", "client", "--", *argv),
            "echo-k8s-node2\n",
        ),
    )
    result = driver.exec(pod, "client", argv, timeout=10)
    script.done()
    assert (result.exit_code, result.stdout) == (0, "echo-k8s-node2\n")
    remote = (
        "sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf exec -n "
        f"{NS} client-k8s-node1 -c client -- wget -qO- -T 2 http://10.1.23.4/hostname"
    )
    assert (
        result.reproduce == f"python -m lab ssh guide-centos7 k8s-master -- {shlex.quote(remote)}"
    )
    assert script.ran[0][2] == 25  # the probe's 10 s plus kubectl's own start-up


def test_exec_keeps_the_commands_exit_code_and_a_timeout_becomes_124(lab: Lab) -> None:
    pod = Pod("p", "k8s-node1", IPv4Address("10.244.1.9"), (), K8sHandle(NS))
    exec_argv = kubectl("exec", "-n", NS, "p", "-c", "c", "--", "false")
    driver, script = driver_for(
        lab,
        Step("k8s-master", exec_argv, exit_code=1, stderr="command terminated with exit code 1"),
        Step("k8s-master", exec_argv, no_exit=True),
    )
    assert driver.exec(pod, "c", ("false",)).exit_code == 1
    timed_out = driver.exec(pod, "c", ("false",))
    script.done()
    assert timed_out.exit_code == 124
    assert "timed out or SSH failed" in timed_out.stderr


def test_exec_on_node_runs_on_that_node(lab: Lab) -> None:
    argv = ("curl", "-s", "--max-time", "3", "http://10.10.10.243:30080/hostname")
    driver, script = driver_for(lab, Step("k8s-node1", argv, "echo-k8s-node2"))
    result = driver.exec_on_node("k8s-node1", argv)
    script.done()
    assert result.stdout == "echo-k8s-node2"
    assert result.reproduce.startswith("python -m lab ssh guide-centos7 k8s-node1 -- ")


def test_delete_pod_deletes_in_the_pods_namespace(lab: Lab) -> None:
    pod = Pod("p", "k8s-node1", IPv4Address("10.244.1.9"), (), K8sHandle(NS))
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("delete", "pod", "p", "-n", NS, "--ignore-not-found", "--timeout=60s"),
        ),
    )
    driver.delete_pod(pod)
    script.done()


def test_sweep_deletes_only_e2e_namespaces_of_other_runs(lab: Lab) -> None:
    listing = kubectl("get", "namespaces", "-l", "netlab.io/e2e=true", "-o", "json")
    driver, script = driver_for(
        lab,
        Step("k8s-master", listing, text("namespaces-e2e.json")),
        Step(
            "k8s-master",
            kubectl(
                "delete",
                "namespace",
                "nl-r0613-services-1f0c2a",
                "--ignore-not-found",
                "--wait=false",
            ),
        ),
        Step("k8s-master", listing, text("namespaces-e2e.json")),
    )
    assert driver.sweep() == ["nl-r0613-services-1f0c2a"]
    assert driver.sweep(keep_prefix="nl-r0613") == []  # nothing to delete: no delete command
    script.done()


def test_a_failed_kubectl_says_what_failed_and_how_to_reproduce(lab: Lab) -> None:
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("get", "nodes", "-o", "json"),
            exit_code=1,
            stderr="The connection to the server 10.10.10.241:6443 was refused",
        ),
    )
    with pytest.raises(KubectlFailed) as err:
        driver.cluster.get_nodes()
    script.done()
    assert str(err.value) == (
        "list nodes: kubectl exited 1: The connection to the server 10.10.10.241:6443 was "
        "refused\n  reproduce: python -m lab ssh guide-centos7 k8s-master -- 'sudo -n kubectl "
        "--kubeconfig /etc/kubernetes/admin.conf get nodes -o json'"
    )


def test_cluster_reads_parse_kubectl_json(lab: Lab) -> None:
    cm = ("-n", "kube-system", "get", "configmap")
    driver, script = driver_for(
        lab,
        Step("k8s-master", kubectl("get", "nodes", "-o", "json"), text("nodes.json")),
        Step(
            "k8s-master",
            kubectl("get", "pods", "-n", "kube-system", "-o", "json"),
            text("pods-kube-system.json"),
        ),
        Step(
            "k8s-master",
            kubectl("get", "services", "--all-namespaces", "-o", "json"),
            text("services.json"),
        ),
        Step(
            "k8s-master",
            kubectl("get", "endpoints", "--all-namespaces", "-o", "json"),
            text("endpoints.json"),
        ),
        Step(
            "k8s-master",
            kubectl(
                "get",
                "configmap",
                "--all-namespaces",
                "--field-selector",
                "metadata.name=kube-flannel-cfg",
                "-o",
                "json",
            ),
            text("configmap-kube-flannel-cfg.json"),
        ),
        Step(
            "k8s-master",
            kubectl(*cm, "kubeadm-config", "-o", "json"),
            text("configmap-kubeadm-config.json"),
        ),
    )
    assert len(driver.cluster.get_nodes()) == 3
    assert len(driver.cluster.get_pods("kube-system")) == 12
    assert len(driver.cluster.get_services()) == 2
    assert len(driver.cluster.get_endpoints()) == 2
    assert driver.cluster.get_flannel_netconf().network == IPv4Network("10.244.0.0/16")
    assert driver.cluster.get_kubeadm_networking().service_subnet == IPv4Network("10.1.0.0/16")
    script.done()


def test_create_service_and_wait_for_its_endpoints(lab: Lab) -> None:
    svc = doc("services.json")["items"][1]
    svc["metadata"].update(name="echo", namespace=NS)
    svc["spec"].update(
        clusterIP="10.1.23.4",
        ports=[{"name": "tcp", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    )
    eps = doc("endpoints.json")["items"][1]
    eps["metadata"].update(name="echo", namespace=NS)
    one_ready = copy.deepcopy(eps)
    one_ready["subsets"][0]["addresses"] = one_ready["subsets"][0]["addresses"][:1]
    get_eps = kubectl("-n", NS, "get", "endpoints", "echo", "-o", "json")
    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Service", "echo")),
        Step(
            "k8s-master", kubectl("-n", NS, "get", "service", "echo", "-o", "json"), json.dumps(svc)
        ),
        Step("k8s-master", get_eps, json.dumps(one_ready)),
        Step("k8s-master", get_eps, json.dumps(eps)),
        namespace=NS,
    )
    echo = {"netlab.io/app": "echo"}
    service = driver.cluster.create_service(driver.bound, "echo", echo, 80, 8080)
    ready = driver.cluster.wait_for_endpoints(
        driver.bound, "echo", [IPv4Address("10.244.0.2"), IPv4Address("10.244.0.3")]
    )
    script.done()
    assert service.cluster_ip == IPv4Address("10.1.23.4")
    assert len(ready.ready_ips) == 2


def test_an_unexpected_command_is_an_error_of_the_fake(lab: Lab) -> None:
    driver, _ = driver_for(lab)
    with pytest.raises(AssertionError, match="unexpected command on k8s-master"):
        driver.cluster.get_nodes()


def test_an_unbound_driver_refuses_namespaced_work(lab: Lab) -> None:
    driver, _ = driver_for(lab)
    with pytest.raises(ValueError, match="not bound to a namespace"):
        driver.start_pod("p", "k8s-node1", (echo_container(ECHO_IMAGE),))
    with pytest.raises(ValueError, match="'k8s-node9' is not a node of lab guide-centos7"):
        driver.in_namespace(NS).start_pod("p", "k8s-node9", (echo_container(ECHO_IMAGE),))


def test_a_lab_without_kubernetes_has_no_kubernetes_driver() -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    with pytest.raises(ValueError, match="has no kubernetes section"):
        K8sDriver(ci, {}, "r1")


# ---------------------------------------------------------------------------------------------
# Probes and the network-model scenarios with Kubernetes pods

FLEET_NS = "nl-r0614-fleet"


def fleet_pod(name: str, node: str, ip: str) -> Pod[K8sHandle]:
    containers = (
        echo_container(ECHO_IMAGE),
        Container("client", ("sleep", "86400"), "busybox:1.28"),
    )
    ids = {"echo": f"docker://{name}0e1", "client": f"docker://{name}c11"}
    return Pod(name, node, IPv4Address(ip), containers, K8sHandle(FLEET_NS, {}, ids))


def agent_request(check: Callable[[dict[str, Any]], None]) -> Callable[[tuple[str, ...]], None]:
    def rest(words: tuple[str, ...]) -> None:
        (text_,) = words
        check(json.loads(text_))

    return rest


def busybox_output(*cells: tuple[str, int, str]) -> str:
    """What busybox_probe_script prints in a client container (recorded shape)."""
    return "".join(f"@@NETLAB-CELL {i} {rc} {answer}\n" for i, rc, answer in cells)


def test_probes_from_nodes_go_through_the_agent_and_from_pods_through_kubectl_exec(
    lab: Lab,
) -> None:
    a = fleet_pod("a", "k8s-node1", "10.244.1.7")
    b = fleet_pod("b", "k8s-node2", "10.244.2.5")

    def node_cells(request: dict[str, Any]) -> None:
        assert request["op"] == "probe"
        (cell,) = request["cells"]
        assert (cell["host"], cell["port"], cell["send"]) == (
            "10.244.2.5",
            8080,
            "GET /hostname HTTP/1.1\r\nHost: netlab\r\n\r\n"
            "GET /clientip HTTP/1.1\r\nHost: netlab\r\nConnection: close\r\n\r\n",
        )

    def pod_jobs(request: dict[str, Any]) -> None:
        assert request["op"] == "steps"
        assert request["parallel"] == 2
        assert [j["id"] for j in request["jobs"]] == ["a", "b"]
        argv = request["jobs"][0]["steps"][0]["argv"]
        assert argv[:10] == [*KUBECTL_ADMIN, "exec", "-n", FLEET_NS, "a", "-c", "client", "--"][:10]
        assert "wget -qO- -T 5 http://10.244.2.5:8080/clientip" in argv[-1]
        assert "wget -qO- -T 5 http://10.244.2.5:8080/hostname" in argv[-1]

    node_answer = json.dumps(
        {
            "results": [
                {
                    "id": "k8s-node1->b",
                    "ok": True,
                    # agnhost's two pipelined answers: /hostname, then /clientip
                    "answer": "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"
                    "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.1.0:51736",
                    "connect_s": 0.004,
                    "total_s": 0.02,
                    "retransmits": 0,
                }
            ]
        }
    )
    pods_answer = json.dumps(
        {
            "jobs": [
                {
                    "id": "a",
                    "ok": True,
                    "steps": [
                        {"exit": 0, "stdout": busybox_output(("a->b", 0, "10.244.1.7:40012 b"))}
                    ],
                },
                {
                    "id": "b",
                    "ok": True,
                    "steps": [
                        {
                            "exit": 0,
                            "stdout": busybox_output(("b->a", 1, "wget: download timed out")),
                        }
                    ],
                },
            ]
        }
    )
    driver, steps = driver_for(
        lab,
        Step("k8s-node1", ("python", "-"), node_answer, rest=agent_request(node_cells)),
        Step("k8s-master", ("python", "-"), pods_answer, rest=agent_request(pod_jobs)),
    )
    seen = driver.observe(
        [Probe("k8s-node1->b", "k8s-node1", b), Probe("a->b", a, b), Probe("b->a", b, a)]
    )
    steps.done()
    assert seen["k8s-node1->b"].seen_source == "10.244.1.0"
    assert seen["k8s-node1->b"].answered_by == "b"
    assert seen["a->b"].seen_source == "10.244.1.7"
    assert seen["a->b"].answered_by == "b"
    assert not seen["b->a"].reachable
    assert "download timed out" in seen["b->a"].detail
    assert seen["a->b"].reproduce == (
        "python -m lab ssh guide-centos7 k8s-master -- 'sudo -n kubectl --kubeconfig "
        f"/etc/kubernetes/admin.conf exec -n {FLEET_NS} a -c client -- wget -qO- -T 5 "
        "http://10.244.2.5:8080/clientip'"
    )


KUBECTL_ADMIN = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]


def test_the_pod_matrix_with_kubernetes_pods_names_a_masqueraded_cell(lab: Lab) -> None:
    """flannel's --ip-masq with a Network other than the pod CIDR masquerades cross-node pod
    traffic: the receiver sees the node's flannel.1 address (x.x.x.0), not the pod."""
    from e2e import scenarios

    a = fleet_pod("a", "k8s-node1", "10.244.1.7")
    b = fleet_pod("b", "k8s-node2", "10.244.2.5")
    answer = json.dumps(
        {
            "jobs": [
                {
                    "id": "a",
                    "ok": True,
                    "steps": [
                        {"exit": 0, "stdout": busybox_output(("a->b", 0, "10.244.1.0:40012 b"))}
                    ],
                },
                {
                    "id": "b",
                    "ok": True,
                    "steps": [
                        {"exit": 0, "stdout": busybox_output(("b->a", 0, "10.244.2.5:40100 a"))}
                    ],
                },
            ]
        }
    )
    driver, steps = driver_for(
        lab, Step("k8s-master", ("python", "-"), answer, rest=agent_request(lambda r: None))
    )
    matrix = scenarios.pod_matrix(driver, [a, b])
    steps.done()
    assert (matrix.symbol("a", "b"), matrix.symbol("b", "a")) == ("N", ".")
    assert matrix.title == "pod -> pod [k8s]"
    assert (
        "a -> b: expected reachable, seen as 10.244.1.7, answered by b; observed reachable, "
        "seen as 10.244.1.0, answered by b" in matrix.render()
    )


def test_the_pods_netns_is_entered_through_its_docker_pid(lab: Lab) -> None:
    a = fleet_pod("a", "k8s-node1", "10.244.1.7")
    script_ = (
        "pid=$(docker inspect -f '{{.State.Pid}}' a0e1) && "
        'exec nsenter -t "$pid" -n -- ip -j link show eth0'
    )
    driver, steps = driver_for(
        lab, Step("k8s-node1", ("sh", "-c", script_), json.dumps([{"mtu": 1450}]))
    )
    result = driver.netns_exec(a, ("ip", "-j", "link", "show", "eth0"))
    steps.done()
    assert json.loads(result.stdout) == [{"mtu": 1450}]


def test_node_subnets_are_the_podcidrs_the_cluster_allots(lab: Lab) -> None:
    driver, steps = driver_for(
        lab,
        Step("k8s-master", (*KUBECTL_ADMIN, "get", "nodes", "-o", "json"), text("nodes.json")),
    )
    assert driver.node_subnets() == {
        "k8s-master": (IPv4Network("10.244.0.0/24"),),
        "k8s-node1": (IPv4Network("10.244.1.0/24"),),
        "k8s-node2": (IPv4Network("10.244.2.0/24"),),
    }
    steps.done()


# --- the guide's busybox + nginx pod: nginx:1.19 has no `ip` ------------------------------

# what the guide's images hold of the commands the shared-namespace check runs (nginx:1.19 is
# Debian buster-slim: coreutils and dash, no iproute2; busybox has every applet)
IMAGE_COMMANDS = {
    "busybox": {"cat", "readlink", "sh", "ip", "wget"},
    "nginx": {"cat", "readlink", "sh"},
}
PROC_NET = text("nginx-1.19-proc-net.txt")  # the pod's namespace, as `cat` shows it


def in_container(pod: str, container: str, argv: tuple[str, ...], stdout: str = "") -> Step:
    """`kubectl exec` of argv in one of the guide's containers: a command its image lacks
    exits 126, as Docker 19.03's runc answers it."""
    exec_argv = kubectl("exec", "-n", NS, pod, "-c", container, "--", *argv)
    if argv[0] not in IMAGE_COMMANDS[container]:
        stderr = (
            "OCI runtime exec failed: exec failed: container_linux.go:370: starting container "
            f'process caused: exec: "{argv[0]}": executable file not found in $PATH: unknown\n'
            "command terminated with exit code 126"
        )
        return Step("k8s-master", exec_argv, exit_code=126, stderr=stderr)
    return Step("k8s-master", exec_argv, stdout)


def test_the_guides_nginx_without_ip_is_checked_for_the_shared_namespace_with_cat(
    lab: Lab,
) -> None:
    from e2e import scenarios

    name = "guide-k8s-node1"
    oneline = ("ip", "-o", "-4", "addr", "show")
    proc_net = ("cat", "/proc/net/dev", "/proc/net/route", "/proc/net/fib_trie")
    ns = ("readlink", "/proc/self/ns/net")
    driver, steps = driver_for(
        lab,
        # what the check asked before: `ip` in every container; nginx's exec exits 126
        in_container(name, "nginx", oneline),
        # what it asks now
        in_container(name, "busybox", ns, "net:[4026532248]\n"),
        in_container(name, "nginx", ns, "net:[4026532248]\n"),
        in_container(name, "busybox", proc_net, PROC_NET),
        in_container(name, "nginx", proc_net, PROC_NET),
        in_container(name, "busybox", scenarios.local_fetch_argv(80), "<h1>Welcome to nginx!</h1>"),
    )
    guide = driver.guide_pod()
    pod = Pod(name, "k8s-node1", IPv4Address("10.244.1.4"), guide.containers, K8sHandle(NS))
    before = scenarios.pod_addresses(driver, pod, "nginx")
    assert before.error.startswith("exit 126: OCI runtime exec failed")
    assert set(before.interfaces) == set(), "the old check saw no address in nginx: it failed"
    assert scenarios.shared_netns_problems(driver, pod, guide) == []
    steps.done()


# --- Service cells: from a pod's netns through the node agent ----------------------------------


def test_service_cells_from_pods_run_in_the_pods_netns_and_ask_agnhost_on_one_flow(
    lab: Lab,
) -> None:
    """A ClusterIP over TCP (both questions pipelined on one connection), over UDP (both as
    datagrams of one socket: one endpoint answers both), and a DNS question: the node agent
    inside the pod's netns (its Docker PID, asked once), a node's UDP cell the same way."""
    a = fleet_pod("a", "k8s-node1", "10.244.1.7")
    b = fleet_pod("b", "k8s-node2", "10.244.2.5")
    inspect = ("docker", "inspect", "-f", "{{.State.Pid}}", "a0e1")

    def pod_cells(request: dict[str, Any]) -> None:
        cells = {c["id"]: c for c in request["cells"]}
        assert {c["netns"] for c in cells.values()} == {"/proc/4242/ns/net"}
        tcp, udp, dns = cells["a->svc/tcp"], cells["a->svc/udp"], cells["a->dns"]
        assert (tcp["host"], tcp["port"], tcp["send"]) == ("10.1.0.13", 80, AGNHOST_HTTP)
        assert (udp["host"], udp["port"], udp["proto"]) == ("10.1.0.13", 80, "udp")
        assert udp["datagrams"] == ["clientip", "hostname"]
        assert (dns["proto"], dns["name"], "datagrams" in dns) == ("dns", "echo.e2e-k8s", False)

    def node_cells(request: dict[str, Any]) -> None:
        (cell,) = request["cells"]
        assert (cell["netns"], cell["datagrams"]) == (None, ["clientip", "hostname"])

    def results(*items: tuple[str, str]) -> str:
        return json.dumps({"results": [{"id": i, "ok": True, "answer": t} for i, t in items]})

    pod_answer = results(
        ("a->svc/tcp", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"
                       "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.1.7:51736"),
        ("a->svc/udp", "10.244.1.7:40001\nb"),
        ("a->dns", "echo.e2e-k8s A 10.1.0.11"),
    )  # fmt: skip
    driver, steps = driver_for(
        lab,
        Step("k8s-node1", inspect, "4242\n"),
        Step("k8s-node1", ("python", "-"), pod_answer, rest=agent_request(pod_cells)),
        Step(
            "k8s-node2",
            ("python", "-"),
            results(("k8s-node2->svc/udp", "10.244.2.0:5353\nb")),
            rest=agent_request(node_cells),
        ),
        Step(
            "k8s-node1",
            ("python", "-"),
            results(("a->svc/udp", "10.244.1.7:40002\nb")),
            rest=agent_request(lambda r: None),
        ),
    )
    svc = {"address": "10.1.0.13", "port": 80}
    seen = driver.observe(
        [
            Probe("a->svc/tcp", a, b, **svc),  # type: ignore[arg-type]
            Probe("a->svc/udp", a, b, proto="udp", **svc),  # type: ignore[arg-type]
            Probe("a->dns", a, b, address="10.1.0.10", port=53, proto="dns", name="echo.e2e-k8s"),
            Probe("k8s-node2->svc/udp", "k8s-node2", b, proto="udp", **svc),  # type: ignore[arg-type]
        ]
    )
    again = driver.observe([Probe("a->svc/udp", a, b, proto="udp", **svc)])  # type: ignore[arg-type]
    steps.done()  # the PID was asked once
    assert (seen["a->svc/tcp"].seen_source, seen["a->svc/tcp"].answered_by) == ("10.244.1.7", "b")
    assert (seen["a->svc/udp"].seen_source, seen["a->svc/udp"].answered_by) == ("10.244.1.7", "b")
    assert seen["a->dns"].answer == "echo.e2e-k8s A 10.1.0.11"
    assert seen["k8s-node2->svc/udp"].seen_source == "10.244.2.0"
    assert again["a->svc/udp"].reachable
    assert "/proc/4242/ns/net" in seen["a->svc/udp"].reproduce
    assert seen["a->svc/udp"].reproduce.endswith("< e2e/agent.py")


AGNHOST_HTTP = (
    "GET /hostname HTTP/1.1\r\nHost: netlab\r\n\r\n"
    "GET /clientip HTTP/1.1\r\nHost: netlab\r\nConnection: close\r\n\r\n"
)


def test_a_pod_whose_container_does_not_run_leaves_its_service_cells_unknown(lab: Lab) -> None:
    a = fleet_pod("a", "k8s-node1", "10.244.1.7")
    inspect = ("docker", "inspect", "-f", "{{.State.Pid}}", "a0e1")
    driver, steps = driver_for(lab, Step("k8s-node1", inspect, "0\n"))
    seen = driver.observe([Probe("a->svc", a, a, address="10.1.0.13", port=80)])
    steps.done()
    assert seen["a->svc"].unknown
    assert "gave '0' (exit 0): its container does not run" in seen["a->svc"].detail


PY27 = sorted(Path("/root/.pyenv/versions").glob("2.7*/bin/python2.7"))


@pytest.mark.parametrize("python", ["this", *(["2.7"] if PY27 else [])])
def test_agnhosts_udp_questions_go_on_one_socket_and_come_back_joined(python: str) -> None:
    """The agent (this Python, and 2.7 where there is one) against a loopback server that
    answers as agnhost netexec's UDP server does: `clientip` -> `ip:port`, `hostname` -> its
    name, both to the one client address that asked."""
    import socket
    import subprocess
    import sys
    import threading

    from e2e import probes
    from e2e.drivers.k8s import agnhost_cell

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    clients: set[tuple[str, int]] = set()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = server.recvfrom(512)
            except OSError:
                continue
            clients.add(addr)
            text = data.decode().strip().lower()
            server.sendto(f"{addr[0]}:{addr[1]}".encode() if text == "clientip" else b"p0", addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        pod = fleet_pod("p0", "k8s-node1", "10.244.1.7")
        probe = Probe("c", "k8s-node1", pod, address="127.0.0.1", port=server.getsockname()[1],
                      proto="udp")  # fmt: skip
        interpreter = sys.executable if python == "this" else str(PY27[0])
        command = probes.agent_command(
            interpreter, probes.probe_request([agnhost_cell(probe, None)])
        )
        out = subprocess.run(list(command.argv), input=command.stdin, capture_output=True,
                             text=True, timeout=30, check=True)  # fmt: skip
    finally:
        stop.set()
        thread.join()
        server.close()
    (result,) = probes.parse_probe_answer(out.stdout, ["c"], "").values()
    assert result.ok, result.error
    first, name = result.answer.split("\n")
    assert first.startswith("127.0.0.1:")
    assert name == "p0"
    assert len(clients) == 1, "both questions came from one socket"


def test_a_udp_probe_with_a_payload_of_its_own_sends_it_last_as_agnhosts_echo() -> None:
    """The tunnel proof's tagged datagram (a probe's payload) still goes out on [k8s]: after
    agnhost's two questions, on the same socket, as `echo TAG`; the answer is read by its
    first two lines (the source agnhost saw, its name), the echoed tag after them."""
    from e2e import probes
    from e2e.drivers.k8s import agnhost_cell, parse_agnhost_or_busybox

    pod = fleet_pod("p0", "k8s-node2", "10.244.2.5")
    tagged = Probe("n1->p0/tunnel", "k8s-node1", pod, proto="udp", payload="nltp.r1.n1.n2\n")
    plain = Probe("n1->p0/udp", "k8s-node1", pod, proto="udp")
    assert agnhost_cell(tagged, None).as_json()["datagrams"] == [
        "clientip",
        "hostname",
        "echo nltp.r1.n1.n2",
    ]
    assert agnhost_cell(plain, None).as_json()["datagrams"] == ["clientip", "hostname"]
    assert parse_agnhost_or_busybox("10.244.1.0:40001\np0\nnltp.r1.n1.n2") == probes.Echo(
        "10.244.1.0", "p0"
    )
