"""e2e/cluster_services.py: the run's Services on the guide's cluster. The layout a Kubernetes
lab allots from, the labels and selectors, the placed manifests (golden), what the API server
and kube-proxy must show (fed with kubectl JSON in the recorded fixtures' shape, and with
nat tables as kube-proxy v1.18 writes them), and the kubectl/iptables command plans of
publishing, the churn set and removal against strict fakes of the nodes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from e2e import cluster_services as cs
from e2e import services
from e2e.drivers import service_drivers, service_plane, why_no_services
from e2e.drivers.base import Container, Pod, PodRequest
from e2e.drivers.k8s import K8sDriver, K8sHandle
from e2e.fleets import run_layout
from lab import k8s
from lab.common import waits
from lab.model.config import Lab, Services
from lab.model.labfile import load_lab
from lab.net import kubeproxy as kp
from tests.fakes import Script, Step, channels, script
from tests.unit.golden import golden_text

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "k8s"
GOLDEN = ROOT / "tests" / "golden" / "k8s" / "services-guide-centos7.json"
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
RUN = "r0614"
NS = "e2e-k8s"
SLOTS = [("k8s-master", 0), ("k8s-node1", 0), ("k8s-node2", 0)]
IPS = {("k8s-master", 0): "10.244.0.4", ("k8s-node1", 0): "10.244.1.7",
       ("k8s-node2", 0): "10.244.2.5"}  # fmt: skip
ECHO = (Container("echo", ("/agnhost", "netexec")), Container("client", ("sleep", "86400")))


def fleet_pod(slot: tuple[str, int]) -> Pod[K8sHandle]:
    name = f"nl-{RUN}-k8s-{slot[0]}-p{slot[1]}"
    ids = {"echo": f"docker://{slot[0]}e1", "client": f"docker://{slot[0]}c1"}
    return Pod(name, slot[0], IPv4Address(IPS[slot]), ECHO, K8sHandle(NS, {}, ids))


FLEET = {s: fleet_pod(s) for s in SLOTS}


def doc(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())  # type: ignore[no-any-return]


def layout() -> services.Layout:
    made = run_layout(GUIDE, SLOTS)
    assert made is not None
    return made


def ours() -> services.DriverServices:
    return services.driver_services(layout(), "k8s", FLEET, None)


# --- what the lab says -------------------------------------------------------------------


def test_a_kubernetes_lab_allots_from_its_service_cidr_and_the_api_servers_defaults() -> None:
    assert cs.lab_services(GUIDE) == Services(IPv4Network("10.1.0.0/16"), "30000-32767")
    assert cs.lab_services(CI) == CI.services
    assert cs.lab_services(replace(CI, services=None)) is None


def test_only_the_k8s_pods_get_services_on_the_guide_lab_and_never_on_a_ci_lab() -> None:
    assert service_drivers(GUIDE) == ("k8s",)
    assert service_plane("k8s", GUIDE) == "cluster"
    assert service_plane("cni", GUIDE) is None
    assert service_drivers(CI) == ("cni", "cri")
    assert {service_plane(n, CI) for n in ("cni", "cri")} == {"rules"}
    assert service_plane("k8s", CI) is None
    ci_slots = [("node1", 0), ("node2", 0)]
    assert CI.services is not None
    assert run_layout(CI, ci_slots) == services.allot(CI.services, ("cni", "cri"), ci_slots)
    assert "in no cluster object" in (why_no_services("cni", GUIDE) or "")
    assert why_no_services("k8s", GUIDE) is None
    assert why_no_services("k8s", replace(CI, services=None)) == (
        "needs a lab with a `services` section (the CI labs ci-debian12 and ci-debian12-vxlan) "
        "or with Kubernetes (guide-centos7, on a KVM host with internet)"
    )


def test_the_guide_layout_keeps_clear_of_the_api_servers_and_kube_dns_addresses() -> None:
    made = layout()
    assert made.addresses[("kube-system", "kube-dns")] == IPv4Address("10.1.0.10")
    mine = {k: v for k, v in made.addresses.items() if k[0] == NS}
    assert sorted(mine.values())[0] == IPv4Address("10.1.0.11")
    assert IPv4Address("10.1.0.1") not in made.addresses.values()
    assert cs.reserved_problems(made, GUIDE) == []
    assert {ns for ns, _ in made.addresses} == {"kube-system", NS}  # no e2e-cni on this lab
    assert sorted(made.node_ports.values())[0] == 30000
    assert made.fqdn(NS, "echo") == "echo.e2e-k8s.svc.cluster.local"


def test_an_allotment_on_the_clusters_own_address_is_named() -> None:
    made = layout()
    moved = dict(made.addresses)
    moved[(NS, "echo")] = IPv4Address("10.1.0.1")
    problems = cs.reserved_problems(replace(made, addresses=moved), GUIDE)
    assert problems == [
        "e2e-k8s/echo at 10.1.0.1: the cluster's own default/kubernetes holds that address"
    ]


# --- labels and selectors ------------------------------------------------------------------


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_each_selector_picks_exactly_its_pods() -> None:
    labels = {s: {**k8s.run_labels(RUN), **cs.fleet_labels(s)} for s in SLOTS}
    labels[("k8s-node1", 0)][cs.CHURN_LABEL] = cs.OUT
    other_run = {**k8s.run_labels("r0613"), **cs.fleet_labels(("k8s-node2", 0))}
    for s in SLOTS:
        picked = [t for t in SLOTS if selects(cs.selector_of(RUN, services.ep_name(s)), labels[t])]
        assert picked == [s]
    assert all(selects(cs.selector_of(RUN, "echo"), labels[s]) for s in SLOTS)
    churn = [s for s in SLOTS if selects(cs.selector_of(RUN, "churn"), labels[s])]
    assert churn == [("k8s-master", 0), ("k8s-node2", 0)]
    assert not any(selects(cs.selector_of(RUN, n), other_run) for n in ("echo", "churn"))
    with pytest.raises(ValueError, match="none of the layout's"):
        cs.selector_of(RUN, "kube-dns")


def test_the_fleet_requests_carry_the_labels_and_other_pods_keep_theirs() -> None:
    requests = [PodRequest(p.name, p.node, ECHO) for p in FLEET.values()]
    extra = PodRequest("other", "k8s-node1", ECHO, {"a": "b"})
    driver, steps = k8s_driver(
        Step("k8s-master", kubectl("get", "namespace", NS, "--ignore-not-found", "-o", "json"))
    )
    got = cs.prepare_fleet(driver, [*requests, extra], SLOTS)
    steps.done()
    assert [r.labels for r in got] == [*(cs.fleet_labels(s) for s in SLOTS), {"a": "b"}]


# --- manifests -----------------------------------------------------------------------------


def test_the_services_render_as_placed_objects_golden() -> None:
    rendered = json.dumps(cs.render_services(ours(), RUN), indent=1, sort_keys=True) + "\n"
    assert rendered == golden_text(GOLDEN, rendered)
    objects = json.loads(rendered)
    echo = next(o for o in objects if o["metadata"]["name"] == "echo")
    assert echo["spec"]["type"] == "NodePort"
    assert echo["spec"]["clusterIP"] == "10.1.0.11"
    assert [(p["protocol"], p["nodePort"]) for p in echo["spec"]["ports"]] == [
        ("TCP", 30000),
        ("UDP", 30001),
    ]
    churn = next(o for o in objects if o["metadata"]["name"] == "churn")
    assert churn["spec"]["type"] == "ClusterIP"
    assert all("nodePort" not in p for p in churn["spec"]["ports"])


def test_a_placed_service_refuses_half_its_ports_with_nodeports_and_says_which_service() -> None:
    def placed(ports: list[k8s.PortSpec], selector: dict[str, str] | None = None) -> None:
        k8s.render_placed_service(
            "echo", NS, RUN, {"a": "b"} if selector is None else selector,
            IPv4Address("10.1.0.11"), ports,
        )  # fmt: skip

    tcp, udp = k8s.PortSpec("tcp", "TCP", 80, 8080, 30000), k8s.PortSpec("udp", "UDP", 80, 8080)
    with pytest.raises(
        ValueError,
        match=r"^service e2e-k8s/echo: ports \['tcp'\] have a nodePort and the others none; "
        r"give every port one \(or none\), or the API server picks at random$",
    ):
        placed([tcp, udp])
    repeat = r"^service e2e-k8s/echo: ports repeat a name or a port/protocol$"
    with pytest.raises(ValueError, match=repeat):
        placed([udp, udp])
    with pytest.raises(ValueError, match=repeat):
        placed([udp, k8s.PortSpec("udp", "TCP", 81, 8080)])  # the name only
    with pytest.raises(ValueError, match=repeat):
        placed([udp, k8s.PortSpec("dns", "UDP", 80, 53)])  # port and protocol only
    placed([udp, k8s.PortSpec("tcp", "TCP", 80, 8080)])  # one port, two protocols: fine
    with pytest.raises(ValueError, match=r"^service e2e-k8s/echo: needs at least one port$"):
        placed([])
    with pytest.raises(
        ValueError, match=r"^service e2e-k8s/echo: port name 'Web' must be a DNS-1123 label "
    ):
        placed([k8s.PortSpec("Web", "TCP", 80, 8080)])
    with pytest.raises(ValueError, match=r"^service e2e-k8s/echo: needs a selector$"):
        placed([udp], selector={})


# --- what the API server shows --------------------------------------------------------------


def as_listed(objects: list[dict[str, Any]]) -> str:
    """Our rendered Services as `kubectl get services -n e2e-k8s -o json` prints them: the
    recorded kube-dns Service's shape (metadata the API server adds, sessionAffinity,
    status), our spec; NodePort ports as v1.18 keeps them."""
    recorded = doc("services.json")
    items = []
    for obj in objects:
        item = copy.deepcopy(recorded["items"][1])
        item["metadata"].update(name=obj["metadata"]["name"], namespace=NS)
        item["metadata"]["labels"] = obj["metadata"]["labels"]
        item["spec"] = {**item["spec"], **obj["spec"]}
        if obj["spec"]["type"] == "NodePort":
            item["spec"]["externalTrafficPolicy"] = "Cluster"
        items.append(item)
    return json.dumps({**recorded, "items": items})


def test_nothing_else_holds_our_addresses_in_the_recorded_cluster() -> None:
    existing = k8s.parse_services((DATA / "services.json").read_text())
    assert cs.collision_problems(list(ours().all()), existing) == []


def test_another_service_on_our_clusterip_or_nodeport_is_named() -> None:
    problems = cs.collision_problems(list(ours().all()), k8s.parse_services(_squatted()))
    assert problems == [
        "default/web holds ClusterIP 10.1.0.11, which the run places e2e-k8s/echo at",
        "default/web holds NodePort 30001, which the run gives e2e-k8s/echo:udp",
    ]


def test_the_api_servers_copy_is_where_the_layout_placed_it() -> None:
    mine = list(ours().all())
    listed = k8s.parse_services(as_listed(cs.render_services(ours(), RUN)))
    assert cs.placement_problems(mine, listed) == []
    moved = json.loads(as_listed(cs.render_services(ours(), RUN)))
    moved["items"][0]["spec"]["ports"][1]["nodePort"] = 31999
    del moved["items"][-1]
    problems = cs.placement_problems(mine, k8s.parse_services(moved))
    assert problems == [
        "e2e-k8s/echo: UDP port 80 has NodePort 31999, placed at 30001",
        "e2e-k8s/ep-k8s-node2-p0: not in the cluster after kubectl apply",
    ]


def test_every_service_that_moved_is_named_with_what_the_api_server_holds() -> None:
    mine = list(ours().all())
    moved = json.loads(as_listed(cs.render_services(ours(), RUN)))
    items = moved["items"]
    items[1]["spec"]["clusterIP"] = "10.1.0.99"
    items[1]["spec"]["ports"][0]["nodePort"] = 31000  # churn has none
    del items[2]["spec"]["ports"][1]
    items[3]["spec"]["type"] = "ClusterIP"
    for port in items[3]["spec"]["ports"]:
        del port["nodePort"]
    del items[0]  # the first Service missing: the others are judged all the same
    assert cs.placement_problems(mine, k8s.parse_services(moved)) == [
        "e2e-k8s/echo: not in the cluster after kubectl apply",
        "e2e-k8s/churn: ClusterIP 10.1.0.99, placed at 10.1.0.12",
        "e2e-k8s/churn: TCP port 80 has NodePort 31000, placed at none",
        "e2e-k8s/ep-k8s-master-p0: no UDP port 80",
        "e2e-k8s/ep-k8s-node1-p0: TCP port 80 has NodePort none, placed at 30004",
        "e2e-k8s/ep-k8s-node1-p0: UDP port 80 has NodePort none, placed at 30005",
    ]


def endpoints_of(service: kp.Service, ready: list[str], unready: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """An Endpoints object in the recorded kube-dns Endpoints' shape (nodeName, targetRef)."""
    recorded = doc("endpoints.json")["items"][1]
    item = copy.deepcopy(recorded)
    item["metadata"].update(name=service.name, namespace=service.namespace)
    template = recorded["subsets"][0]["addresses"][0]
    by_ip = {str(p.ip): p for p in FLEET.values()}

    def address(ip: str) -> dict[str, Any]:
        pod = by_ip[ip]
        ref = {**template["targetRef"], "name": pod.name, "namespace": NS}
        return {**template, "ip": ip, "nodeName": pod.node, "targetRef": ref}

    subset: dict[str, Any] = {
        "ports": [
            {"name": p.name, "port": p.target_port, "protocol": p.protocol.upper()}
            for p in service.ports
        ]
    }
    if ready:
        subset["addresses"] = [address(ip) for ip in ready]
    if unready:
        subset["notReadyAddresses"] = [address(ip) for ip in unready]
    item["subsets"] = [subset] if ready or unready else []
    return item


def endpoints_list(items: list[dict[str, Any]]) -> str:
    return json.dumps({**doc("endpoints.json"), "items": items})


def test_endpoints_must_list_exactly_the_pods_ready() -> None:
    svc = ours()
    good = [endpoints_of(s, [str(ip) for ip in s.endpoints]) for s in svc.all()]
    assert cs.endpoint_problems(list(svc.all()), k8s.parse_endpoints(endpoints_list(good))) == []
    echo = svc.echo
    partial = endpoints_of(echo, ["10.244.0.4", "10.244.1.7"], ["10.244.2.5"])
    problems = cs.endpoint_problems(
        [echo, svc.churn], k8s.parse_endpoints(endpoints_list([partial]))
    )
    assert problems == [
        "e2e-k8s/echo: ready ['10.244.0.4', '10.244.1.7'], not ready ['10.244.2.5']; "
        "expected ['10.244.0.4', '10.244.1.7', '10.244.2.5']",
        "e2e-k8s/churn: no Endpoints object yet (expected ['10.244.0.4', '10.244.1.7', "
        "'10.244.2.5'])",
    ]


# --- what kube-proxy programmed ------------------------------------------------------------

# The guide cluster's nat table as iptables-save 1.4.21 (CentOS 7) prints kube-proxy v1.18's
# rules for e2e-k8s/churn:tcp (options in iptables-save's order, counters dropped): written
# by hand from kube-proxy's rule shapes, with the chain names lab/net/kubeproxy.py hashes.


def churn_save(endpoints: list[str]) -> str:
    churn = services.with_endpoints(ours().churn, [IPv4Address(ip) for ip in endpoints])
    lines = ["*nat", ":KUBE-SERVICES - [0:0]"]
    for port in churn.ports:
        svc = kp.svc_chain(churn, port)
        proto = port.protocol
        lines.append(
            f"-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.1.0.12/32 -p {proto} -m comment --comment "
            f'"e2e-k8s/churn:{port.name} cluster IP" -m {proto} --dport 80 -j KUBE-MARK-MASQ'
        )
        lines.append(
            f"-A KUBE-SERVICES -d 10.1.0.12/32 -p {proto} -m comment --comment "
            f'"e2e-k8s/churn:{port.name} cluster IP" -m {proto} --dport 80 -j {svc}'
        )
        for i, ip in enumerate(endpoints):
            sep = kp.sep_chain(churn, port, IPv4Address(ip))
            odds = len(endpoints) - i
            stat = f"-m statistic --mode random --probability {1 / odds:.11f} " if odds > 1 else ""
            lines.append(f"-A {svc} {stat}-j {sep}")
            lines.append(f"-A {sep} -s {ip}/32 -j KUBE-MARK-MASQ")
            lines.append(f"-A {sep} -p {proto} -m {proto} -j DNAT --to-destination {ip}:8080")
    return "\n".join([*lines, "COMMIT", ""])


def test_kube_proxys_rules_for_a_service_are_read_in_iptables_saves_order() -> None:
    churn = services.with_endpoints(ours().churn, [IPv4Address("10.244.1.7")])
    assert cs.programmed_problems("k8s-node1", churn_save(["10.244.1.7"]), [churn]) == []
    stale = cs.programmed_problems("k8s-node1", churn_save(["10.244.1.7", "10.244.2.5"]), [churn])
    assert len(stale) == 2  # tcp and udp: an endpoint chain too many
    assert stale[0].startswith("k8s-node1: e2e-k8s/churn:tcp/tcp: KUBE-SVC-")
    assert "jumps to 2 endpoint chain(s), kube-proxy's for ['10.244.1.7'] are 1" in stale[0]


def test_the_rules_the_ci_labs_program_are_what_the_check_reads_for_kube_proxys() -> None:
    """lab/net/kubeproxy.py renders v1.18's rules (golden against upstream's): every Service
    of the layout, NodePorts included, reads as programmed."""
    mine = list(ours().all())
    text = kp.render_restore(mine, IPv4Network("10.244.0.0/16"))
    assert cs.programmed_problems("k8s-master", text, mine) == []
    missing = cs.programmed_problems("k8s-master", "*nat\nCOMMIT\n", [ours().echo])
    assert any("no KUBE-NODEPORTS jump from 30000" in p for p in missing)
    assert any("no KUBE-SERVICES jump from 10.1.0.11:80" in p for p in missing)


# --- command plans against strict fakes --------------------------------------------------------

FAST = waits.Policy("test wait", timeout_s=30, interval_s=0, max_attempts=3)


def kubectl(*args: str) -> tuple[str, ...]:
    return ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", *args)


def k8s_driver(*steps: Step) -> tuple[K8sDriver, Script]:
    steps_ = script(*steps)
    nodes = channels(GUIDE.name, GUIDE.node_names, steps_)
    driver = K8sDriver(
        GUIDE, nodes, RUN, NS, sleep=lambda _: None, pod_wait=FAST, namespace_wait=FAST,
        endpoints_wait=FAST,
    )  # fmt: skip
    driver.cluster.gone_wait = FAST
    return driver, steps_


def applied(check: Callable[[list[dict[str, Any]]], None]) -> Callable[[str | None], None]:
    def verify(stdin: str | None) -> None:
        assert stdin is not None
        check(json.loads(stdin)["items"])

    return verify


def saves(text: str) -> list[Step]:
    return [Step(n, ("iptables-save", "-t", "nat"), text) for n in sorted(GUIDE.node_names)]


def test_publishing_checks_applies_and_waits_for_endpoints_and_kube_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cs, "ENDPOINTS_LISTED", FAST)
    monkeypatch.setattr(cs, "PROGRAMMED", FAST)
    mine = ours()
    rendered = cs.render_services(mine, RUN)
    good = endpoints_list([endpoints_of(s, [str(ip) for ip in s.endpoints]) for s in mine.all()])
    late = endpoints_list([endpoints_of(s, []) for s in mine.all()])
    table = kp.render_restore(list(mine.all()), IPv4Network("10.244.0.0/16"))

    def same(items: list[dict[str, Any]]) -> None:
        assert items == rendered

    driver, steps = k8s_driver(
        Step(
            "k8s-master",
            kubectl("get", "services", "--all-namespaces", "-o", "json"),
            (DATA / "services.json").read_text(),
        ),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applied(same)),
        Step("k8s-master", kubectl("get", "services", "-n", NS, "-o", "json"), as_listed(rendered)),
        Step("k8s-master", kubectl("get", "endpoints", "-n", NS, "-o", "json"), late),
        Step("k8s-master", kubectl("get", "endpoints", "-n", NS, "-o", "json"), good),
        *saves("*nat\nCOMMIT\n"),  # kube-proxy has not synced yet
        *saves(table),
    )
    assert cs.publish(driver, layout(), FLEET) == mine
    steps.done()


def test_a_service_the_cluster_never_lists_fails_with_the_endpoints_it_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = replace(cs.ENDPOINTS_LISTED, interval_s=0, max_attempts=3)
    monkeypatch.setattr(cs, "ENDPOINTS_LISTED", fast)
    churn = ours().churn
    empty = endpoints_list([endpoints_of(churn, [])])
    get = kubectl("get", "endpoints", "-n", NS, "-o", "json")
    driver, steps = k8s_driver(*(Step("k8s-master", get, empty) for _ in range(3)))
    with pytest.raises(cs.ServicesNotMade) as err:
        cs.wait_for_endpoints(driver.cluster, NS, [churn])
    steps.done()
    assert str(err.value).startswith(
        "the run's Services list exactly their fleet pods as ready endpoints: not within 120s:"
    )
    assert "e2e-k8s/churn: ready []; expected" in str(err.value)
    assert "get endpoints -o wide" in str(err.value)


def pods_json() -> str:
    """`kubectl get pods -n e2e-k8s -l ...` of the fleet: the recorded running e2e pod's
    shape, with each fleet pod's name, node and IP."""
    running = doc("e2e-pod-running.json")
    items = []
    for pod in FLEET.values():
        item = copy.deepcopy(running)
        item["metadata"].update(name=pod.name, namespace=NS)
        item["spec"]["nodeName"] = pod.node
        item["status"].update(podIP=str(pod.ip), podIPs=[{"ip": str(pod.ip)}])
        items.append(item)
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items,
                       "metadata": {"resourceVersion": "", "selfLink": ""}})  # fmt: skip


def label(pods: list[str], value: str) -> Step:
    argv = kubectl("label", "pods", "-n", NS, "--overwrite", *pods, f"netlab.io/churn={value}")
    return Step("k8s-master", argv)


def test_the_churn_set_changes_by_relabelling_then_waits_for_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cs, "ENDPOINTS_LISTED", FAST)
    monkeypatch.setattr(cs, "PROGRAMMED", FAST)
    only = ["10.244.1.7"]
    churn = services.with_endpoints(ours().churn, [IPv4Address(ip) for ip in only])
    selector = "netlab.io/run=r0614,netlab.io/fleet=true"
    driver, steps = k8s_driver(
        Step(
            "k8s-master",
            kubectl("get", "pods", "-n", NS, "-l", selector, "-o", "json"),
            pods_json(),
        ),
        label(["nl-r0614-k8s-k8s-node1-p0"], "in"),
        label(["nl-r0614-k8s-k8s-master-p0", "nl-r0614-k8s-k8s-node2-p0"], "out"),
        Step(
            "k8s-master",
            kubectl("get", "endpoints", "-n", NS, "-o", "json"),
            endpoints_list([endpoints_of(churn, only)]),
        ),
        *saves("*nat\nCOMMIT\n"),  # kube-proxy has not followed yet
        *saves(churn_save(only)),
    )
    slept: list[float] = []
    driver.cluster.sleep = slept.append  # the wait sleeps through the cluster's sleep
    cs.set_churn(driver, layout(), [IPv4Address(ip) for ip in only])
    steps.done()
    assert slept == [0]


def test_a_churn_endpoint_that_is_no_fleet_pod_is_named() -> None:
    pods = k8s.parse_pods(pods_json())
    assert cs.churn_labels(pods, [IPv4Address("10.244.2.5")]) == (
        ["nl-r0614-k8s-k8s-node2-p0"],
        ["nl-r0614-k8s-k8s-master-p0", "nl-r0614-k8s-k8s-node1-p0"],
    )
    with pytest.raises(ValueError, match=r"churn endpoints \['10.244.9.9'\] are no fleet pod"):
        cs.churn_labels(pods, [IPv4Address("10.244.9.9")])


def namespace_json(run: str, phase: str = "Active") -> str:
    """The Services' namespace as `kubectl get namespace -o json` prints it (the recorded
    e2e namespaces' shape)."""
    item = copy.deepcopy(doc("namespaces-e2e.json")["items"][0])
    item["metadata"].update(name=NS)
    item["metadata"]["labels"]["netlab.io/run"] = run
    item["status"]["phase"] = phase
    return json.dumps(item)


def test_an_earlier_runs_namespace_is_deleted_and_waited_for_before_the_fleet() -> None:
    get = kubectl("get", "namespace", NS, "--ignore-not-found", "-o", "json")
    driver, steps = k8s_driver(
        Step("k8s-master", get, namespace_json("r0613")),
        Step(
            "k8s-master", kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")
        ),
        Step("k8s-master", get, namespace_json("r0613", "Terminating")),
        Step("k8s-master", get, ""),
    )
    cs.prepare_fleet(driver, [], [])
    steps.done()
    assert cs.is_stale(k8s.parse_namespaces(namespace_json(RUN))[0], RUN) is False
    assert cs.is_stale(k8s.parse_namespaces(namespace_json(RUN, "Terminating"))[0], RUN)


def test_removal_deletes_the_runs_services_and_their_namespace_and_says_what_is_left() -> None:
    delete = kubectl("delete", "services", "-n", NS, "-l", "netlab.io/run=r0614",
                     "--ignore-not-found", "--timeout=60s")  # fmt: skip
    listing = kubectl("get", "services", "-n", NS, "-l", "netlab.io/run=r0614", "-o", "name")
    drop_ns = kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")
    steps = script(
        Step("k8s-master", delete),
        Step("k8s-master", listing, ""),
        Step("k8s-master", drop_ns),
        Step("k8s-master", delete, exit_code=1, stderr="error: timed out waiting"),
        Step("k8s-master", listing, "service/echo\n"),
        Step("k8s-master", drop_ns),
    )
    from e2e.drivers.base import NodeRunner

    runner = NodeRunner(channels(GUIDE.name, GUIDE.node_names, steps))
    assert cs.remove(GUIDE, runner, RUN, NS) == []
    (leak,) = cs.remove(GUIDE, runner, RUN, NS)
    steps.done()
    assert leak.startswith("Services of run r0614 left in namespace e2e-k8s: ['service/echo']")
    assert "delete namespace e2e-k8s" in leak


def test_a_driver_outside_the_cluster_is_refused() -> None:
    class Other:
        name = "cni"

    with pytest.raises(TypeError, match="the cni driver's pods are not the cluster's"):
        cs.publish(Other(), layout(), FLEET)


def test_a_lab_without_either_section_has_no_layout() -> None:
    assert run_layout(replace(CI, services=None), SLOTS) is None
    guide_layout: Lab = GUIDE
    assert run_layout(guide_layout, SLOTS) is not None


def test_the_k8s_fleet_lives_in_the_services_namespace_so_their_selectors_reach_it() -> None:
    from e2e.drivers import make_driver
    from e2e.drivers.base import CommandLog

    driver = make_driver("k8s", GUIDE, {}, RUN, CommandLog())
    assert isinstance(driver, K8sDriver)
    assert driver.bound == services.namespace("k8s") == NS


NS_GET = kubectl("get", "namespace", NS, "--ignore-not-found", "-o", "json")


def test_a_namespace_already_terminating_is_only_waited_for() -> None:
    driver, steps = k8s_driver(
        Step("k8s-master", NS_GET, namespace_json(RUN, "Terminating")),
        Step("k8s-master", NS_GET, ""),
    )
    assert cs.prepare_fleet(driver, [], []) == []
    steps.done()


def test_this_runs_own_namespace_is_kept() -> None:
    requests = [PodRequest(p.name, p.node, ECHO) for p in FLEET.values()]
    driver, steps = k8s_driver(Step("k8s-master", NS_GET, namespace_json(RUN)))
    got = cs.prepare_fleet(driver, requests, SLOTS)
    steps.done()
    assert [r.labels for r in got] == [cs.fleet_labels(s) for s in SLOTS]


def test_fewer_fleet_requests_than_slots_is_an_error() -> None:
    requests = [PodRequest(p.name, p.node, ECHO) for p in FLEET.values()]
    driver, steps = k8s_driver(Step("k8s-master", NS_GET, ""))
    with pytest.raises(ValueError, match="zip"):
        cs.prepare_fleet(driver, requests[:2], SLOTS)
    steps.done()


REMOVE = kubectl("delete", "services", "-n", NS, "-l", "netlab.io/run=r0614",
                 "--ignore-not-found", "--timeout=60s")  # fmt: skip
LISTING = kubectl("get", "services", "-n", NS, "-l", "netlab.io/run=r0614", "-o", "name")
DROP_NS = kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=false")


def _remove(*steps: Step) -> tuple[list[str], Script]:
    from e2e.drivers.base import NodeRunner

    steps_ = script(*steps, Step("k8s-master", DROP_NS))
    runner = NodeRunner(channels(GUIDE.name, GUIDE.node_names, steps_))
    leaks = cs.remove(GUIDE, runner, RUN, NS)
    steps_.done()
    return leaks, steps_


def test_removal_gives_kubectls_delete_longer_than_its_own_timeout() -> None:
    leaks, steps = _remove(Step("k8s-master", REMOVE), Step("k8s-master", LISTING, ""))
    assert leaks == []
    assert [timeout for _, _, timeout in steps.ran] == [90, 60, 60]


def test_a_failed_delete_with_nothing_listed_shows_the_tail_of_its_error() -> None:
    error = "E" * 20 + "x" * 299 + "!"
    leaks, _ = _remove(
        Step("k8s-master", REMOVE, "deleting", exit_code=1, stderr=f"{error}\n"),
        Step("k8s-master", LISTING, ""),
    )
    assert leaks == [
        f"Services of run r0614 left in namespace e2e-k8s: {'x' * 299}! (remove: python -m lab "
        "ssh guide-centos7 k8s-master -- 'sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf "
        "delete namespace e2e-k8s')"
    ]


def test_a_listing_that_failed_after_a_clean_delete_names_no_leftover() -> None:
    leaks, _ = _remove(
        Step("k8s-master", REMOVE),
        Step("k8s-master", LISTING, "service/echo\n", exit_code=1, stderr="error: timed out"),
    )
    assert leaks == []


def _squatted() -> dict[str, Any]:
    """The recorded cluster's Services and `default/web` on echo's ClusterIP and a NodePort."""
    raw = doc("services.json")
    squatter = copy.deepcopy(raw["items"][1])
    squatter["metadata"].update(name="web", namespace="default")
    squatter["spec"].update(
        type="NodePort",
        clusterIP="10.1.0.11",
        ports=[
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30001}
        ],
    )
    raw["items"].append(squatter)
    return raw


def test_our_own_services_already_there_do_not_hide_another_after_them() -> None:
    mine = list(ours().all())
    listed = k8s.parse_services(as_listed(cs.render_services(ours(), RUN)))
    problems = cs.collision_problems(mine, [*listed, *k8s.parse_services(_squatted())])
    assert problems == [
        "default/web holds ClusterIP 10.1.0.11, which the run places e2e-k8s/echo at",
        "default/web holds NodePort 30001, which the run gives e2e-k8s/echo:udp",
    ]


def test_publishing_onto_addresses_another_service_holds_names_them_and_the_fix() -> None:
    driver, steps = k8s_driver(
        Step(
            "k8s-master",
            kubectl("get", "services", "--all-namespaces", "-o", "json"),
            json.dumps(_squatted()),
        )
    )
    with pytest.raises(cs.ServicesNotMade) as err:
        cs.publish(driver, layout(), FLEET)
    steps.done()
    assert str(err.value) == (
        "the run's Services cannot be placed as the layout has them:\n"
        "  default/web holds ClusterIP 10.1.0.11, which the run places e2e-k8s/echo at\n"
        "  default/web holds NodePort 30001, which the run gives e2e-k8s/echo:udp\n"
        "  fix: delete what holds them (`kubectl get services -A -o wide`), or namespace e2e-k8s "
        "if it is an earlier run's"
    )


def test_services_the_api_server_placed_elsewhere_are_named_after_apply() -> None:
    rendered = cs.render_services(ours(), RUN)
    moved = json.loads(as_listed(rendered))
    moved["items"][0]["spec"]["ports"][1]["nodePort"] = 31999
    del moved["items"][-1]
    driver, steps = k8s_driver(
        Step(
            "k8s-master",
            kubectl("get", "services", "--all-namespaces", "-o", "json"),
            (DATA / "services.json").read_text(),
        ),
        Step("k8s-master", kubectl("apply", "-f", "-")),
        Step("k8s-master", kubectl("get", "services", "-n", NS, "-o", "json"), json.dumps(moved)),
    )
    with pytest.raises(cs.ServicesNotMade) as err:
        cs.publish(driver, layout(), FLEET)
    steps.done()
    assert str(err.value) == (
        "the API server placed the run's Services elsewhere:\n"
        "  e2e-k8s/echo: UDP port 80 has NodePort 31999, placed at 30001\n"
        "  e2e-k8s/ep-k8s-node2-p0: not in the cluster after kubectl apply"
    )


def test_kube_proxy_not_programming_in_time_names_the_first_twelve_and_how_many_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from e2e.drivers.base import NodeRunner

    monkeypatch.setattr(cs, "PROGRAMMED", FAST)
    master, *workers = sorted(GUIDE.node_names)
    save = ("iptables-save", "-t", "nat")
    rounds = [
        Step(master, save, exit_code=1),
        *(Step(n, save, "*nat\nCOMMIT\n") for n in workers),
    ]
    steps = script(*rounds, *rounds, *rounds)
    runner = NodeRunner(channels(GUIDE.name, GUIDE.node_names, steps))
    mine = list(ours().all())
    with pytest.raises(cs.ServicesNotMade) as raised:
        cs.wait_for_programmed(runner, sorted(GUIDE.node_names), mine, sleep=lambda _: None)
    steps.done()
    missing = [p for n in workers for p in cs.programmed_problems(n, "*nat\nCOMMIT\n", mine)]
    assert len(missing) > 11
    shown = [f"{master}: iptables-save -t nat exited 1", *missing[:11]]
    assert str(raised.value) == (
        f"{cs.PROGRAMMED.name}: not within 30s:\n  "
        + "\n  ".join([*shown, f"... {len(missing) + 1 - 12} more"])
        + "\n  inspect: `iptables-save -t nat | grep KUBE-SVC` on the node; kube-proxy's "
        "log: `kubectl -n kube-system logs -l k8s-app=kube-proxy`"
    )


@pytest.mark.parametrize("failing", [12, 13])
def test_twelve_unprogrammed_lines_are_shown_whole_and_a_thirteenth_is_counted(
    monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    from e2e.drivers.base import NodeRunner

    monkeypatch.setattr(cs, "PROGRAMMED", FAST)
    nodes = [f"n{i:02}" for i in range(failing)]
    save = ("iptables-save", "-t", "nat")
    steps = script(*(Step(n, save, exit_code=2) for _ in range(3) for n in nodes))
    runner = NodeRunner(channels(GUIDE.name, nodes, steps))
    with pytest.raises(cs.ServicesNotMade) as raised:
        cs.wait_for_programmed(runner, nodes, [], sleep=lambda _: None)
    lines = str(raised.value).split("\n  ")[1:-1]
    assert lines == [f"n{i:02}: iptables-save -t nat exited 2" for i in range(12)] + (
        ["... 1 more"] if failing == 13 else []
    )


def test_a_missing_endpoints_object_does_not_hide_the_services_after_it() -> None:
    svc = ours()
    listed = k8s.parse_endpoints(endpoints_list([endpoints_of(svc.echo, ["10.244.0.4"])]))
    assert cs.endpoint_problems([svc.churn, svc.echo], listed) == [
        "e2e-k8s/churn: no Endpoints object yet (expected ['10.244.0.4', '10.244.1.7', "
        "'10.244.2.5'])",
        "e2e-k8s/echo: ready ['10.244.0.4']; expected ['10.244.0.4', '10.244.1.7', '10.244.2.5']",
    ]


def test_endpoints_never_listed_fail_with_every_problem_and_the_inspect_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = replace(cs.ENDPOINTS_LISTED, interval_s=5, max_attempts=2)
    monkeypatch.setattr(cs, "ENDPOINTS_LISTED", slow)
    svc = ours()
    listed = endpoints_list([endpoints_of(svc.echo, ["10.244.0.4"])])
    get = kubectl("get", "endpoints", "-n", NS, "-o", "json")
    driver, steps = k8s_driver(*(Step("k8s-master", get, listed) for _ in range(2)))
    slept: list[float] = []
    driver.cluster.sleep = slept.append
    with pytest.raises(cs.ServicesNotMade) as err:
        cs.wait_for_endpoints(driver.cluster, NS, [svc.churn, svc.echo])
    steps.done()
    assert slept == [5]  # the cluster's sleep, between the two attempts
    assert str(err.value) == (
        "the run's Services list exactly their fleet pods as ready endpoints: not within 120s:\n"
        "  e2e-k8s/churn: no Endpoints object yet (expected ['10.244.0.4', '10.244.1.7', "
        "'10.244.2.5'])\n"
        "  e2e-k8s/echo: ready ['10.244.0.4']; expected ['10.244.0.4', '10.244.1.7', "
        "'10.244.2.5']\n"
        "  inspect: python -m lab ssh guide-centos7 k8s-master -- 'sudo -n kubectl --kubeconfig "
        "/etc/kubernetes/admin.conf -n e2e-k8s get endpoints -o wide'"
    )


# kube-proxy v1.2x's shapes the v1.18 check meets on a newer cluster: a KUBE-EXT chain jumping
# to its KUBE-SVC chain without a port, and a KUBE-SVC chain's own masquerade rule
NEWER_SAVE = """*nat
:KUBE-SERVICES - [0:0]

-A KUBE-EXT-ABCDEFGHIJKLMNOP -j KUBE-SVC-ABCDEFGHIJKLMNOP
-A KUBE-SERVICES -d 10.1.0.11/32 -p tcp -m comment --comment "e2e-k8s/echo:tcp cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABCDEFGHIJKLMNOP
-A KUBE-SVC-ABCDEFGHIJKLMNOP ! -s 10.244.0.0/16 -d 10.1.0.11/32 -p tcp -m comment --comment "e2e-k8s/echo:tcp cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-ABCDEFGHIJKLMNOP -j KUBE-SEP-QRSTUVWXYZ012345
-A KUBE-NODEPORTS -p tcp -m comment --comment "e2e-k8s/echo:tcp" -m tcp --dport 30000 -j KUBE-EXT-ABCDEFGHIJKLMNOP
COMMIT
"""  # noqa: E501


def test_newer_kube_proxy_rules_read_only_as_the_jumps_the_check_knows() -> None:
    assert cs.parse_nat_rules(NEWER_SAVE) == cs.NatRules(
        {"KUBE-SVC-ABCDEFGHIJKLMNOP": frozenset({"KUBE-SEP-QRSTUVWXYZ012345"})},
        {("10.1.0.11", 80, "tcp"): "KUBE-SVC-ABCDEFGHIJKLMNOP"},
        {},
    )


def test_rules_without_an_address_protocol_or_option_value_are_skipped() -> None:
    saved = (
        "*nat\n"
        "-A KUBE-SERVICES -p tcp -m tcp --dport 80 -j KUBE-SVC-ABCDEFGHIJKLMNOP\n"  # no -d
        "-A KUBE-SERVICES -d 10.1.0.11/32 -m tcp --dport 80 -j KUBE-SVC-ABCDEFGHIJKLMNOP\n"  # no -p
        "-A KUBE-NODEPORTS -p udp -m udp --dport 30001 -j KUBE-SVC-ABCDEFGHIJKLMNOP\n"
        "-A KUBE-SVC-ABCDEFGHIJKLMNOP -j\n"  # a line cut short
    )
    assert cs.parse_nat_rules(saved) == cs.NatRules(
        {}, {}, {(30001, "udp"): "KUBE-SVC-ABCDEFGHIJKLMNOP"}
    )
