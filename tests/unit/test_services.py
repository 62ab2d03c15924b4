"""e2e/services.py: the run's Services allotted from the lab, the cells and what each cell
expects (who answers, which source it sees), the node rules' scripts, the failure hints."""

from __future__ import annotations

import json
import struct
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from e2e import dnsd, services
from e2e.drivers.base import Container, DriverError, ExecResult, Pod, Probe
from lab.model.config import Services
from lab.model.labfile import load_lab
from lab.net import kubeproxy as kp
from lab.net import reachability as rm
from tests.fakes import FakeDriver, Step, script

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
SLOTS = [("node1", 0), ("node1", 1), ("node2", 0), ("node2", 1)]
ECHO = (Container("echo", ("echo-server",)),)
IPS = {("node1", 0): "10.244.0.2", ("node1", 1): "10.244.0.3",
       ("node2", 0): "10.244.1.2", ("node2", 1): "10.244.1.3"}  # fmt: skip
FLEET = {s: Pod(f"nl-r1-cri-{s[0]}-p{s[1]}", s[0], IPv4Address(ip), ECHO, None)
         for s, ip in IPS.items()}  # fmt: skip
PODS = [FLEET[s] for s in SLOTS]
DNS_POD = IPv4Address("10.244.0.9")
# node -> pod IP -> the source `ip route get` picks (host-gw: the bridge for its own pods)
ROUTES = services.Routes(
    {
        "node1": {"10.244.0.2": "10.244.0.1", "10.244.0.3": "10.244.0.1",
                  "10.244.1.2": "10.10.40.241", "10.244.1.3": "10.10.40.241"},
        "node2": {"10.244.0.2": "10.10.40.242", "10.244.0.3": "10.10.40.242",
                  "10.244.1.2": "10.244.1.1", "10.244.1.3": "10.244.1.1"},
    }
)  # fmt: skip


def layout(drivers: tuple[str, ...] = ("cni", "cri")) -> services.Layout:
    return services.allot(Services(), drivers, SLOTS)


def svc() -> services.DriverServices:
    return services.driver_services(layout(), "cri", FLEET, DNS_POD)


# --- the layout -----------------------------------------------------------------------------


def test_kube_dns_is_at_the_tenth_address_and_the_rest_follow_in_a_fixed_order() -> None:
    made = layout()
    assert made.addresses[("kube-system", "kube-dns")] == IPv4Address("10.96.0.10")
    order = sorted(made.addresses.items(), key=lambda kv: int(kv[1]))
    assert [name for name, _ in order][:4] == [
        ("kube-system", "kube-dns"),
        ("e2e-cni", "echo"),
        ("e2e-cni", "churn"),
        ("e2e-cni", "ep-node1-p0"),
    ]
    assert made.addresses[("e2e-cri", "echo")] == IPv4Address("10.96.0.17")  # 11 + 6
    assert len(set(made.addresses.values())) == len(made.addresses) == 13


def test_node_ports_start_at_the_range_and_churn_has_none() -> None:
    made = layout(("cri",))
    assert made.node_ports[("e2e-cri", "echo", "tcp")] == 30000
    assert made.node_ports[("e2e-cri", "echo", "udp")] == 30001
    assert made.node_ports[("e2e-cri", "ep-node2-p1", "udp")] == 30009
    assert not any(name == "churn" for _, name, _ in made.node_ports)
    assert len(set(made.node_ports.values())) == len(made.node_ports) == 10


def test_the_layout_depends_on_the_lab_alone() -> None:
    assert layout() == layout()
    other = services.allot(Services(cidr=IPv4Network("10.1.0.0/16")), ("cri",), SLOTS)
    assert other.addresses[("e2e-cri", "echo")] == IPv4Address("10.1.0.11")


def test_a_service_cidr_too_small_for_the_suite_names_the_field_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"services.cidr 10.96.0.0/28 .*7 Services.*10.96.0.0/12"):
        services.allot(Services(cidr=IPv4Network("10.96.0.0/28")), ("cri",), SLOTS[:1] * 5)


def test_a_node_port_range_too_small_names_the_field_and_the_fix() -> None:
    small = Services(node_port_range="30000-30015")
    with pytest.raises(ValueError, match=r"node_port_range 30000-30015 has 16 ports.*need 20"):
        services.allot(small, ("cni", "cri"), SLOTS)


def test_the_dns_zone_holds_every_service_by_its_cluster_domain_name() -> None:
    zone = layout(("cri",)).zone()
    assert zone["domain"] == "cluster.local"
    assert zone["records"]["echo.e2e-cri.svc.cluster.local"] == ["10.96.0.11"]
    assert zone["records"]["kube-dns.kube-system.svc.cluster.local"] == ["10.96.0.10"]
    assert json.loads(json.dumps(zone)) == zone  # the DNS pod's argv carries it as JSON


def _query(name: str, ident: int = 7) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0\0\1\0\1"


def test_the_dns_pod_answers_the_zone_it_is_given() -> None:
    zone = layout(("cri",)).zone()
    answer = dnsd.answer(_query("echo.e2e-cri.svc.cluster.local"), zone["records"], "cluster.local")
    assert struct.unpack("!HHHH", answer[:8]) == (7, 0x8580, 1, 1)
    assert answer[-4:] == IPv4Address("10.96.0.11").packed


def test_the_dns_container_runs_dnsd_in_the_echo_servers_image() -> None:
    container = services.dns_container(FakeDriver(CI), layout(("cri",)))
    assert container.name == "dns"
    assert container.argv[:2] == ("python3", "-c")
    assert "def serve" in container.argv[2]
    assert json.loads(container.argv[3])["records"]["echo.e2e-cri.svc.cluster.local"]


# --- the Services and the run's state ---------------------------------------------------------


def test_each_fleet_pod_has_its_own_service_and_echo_has_them_all() -> None:
    made = svc()
    assert made.echo.endpoints == tuple(p.ip for p in PODS)
    assert made.churn.endpoints == made.echo.endpoints
    assert {n: s.endpoints for n, s in made.per_pod.items()} == {p.name: (p.ip,) for p in PODS}
    assert made.per_pod[PODS[0].name].name == "ep-node1-p0"
    assert made.echo.port("udp") == kp.ServicePort("udp", "udp", 80, 8080, 30011)


def test_the_state_file_gives_back_the_same_services() -> None:
    made = svc()
    state = {"cri": services.state_entry(made)}
    assert services.services_from_state(layout(), json.loads(json.dumps(state))) == [made]


def test_kube_dns_balances_over_every_drivers_dns_pod() -> None:
    other = services.driver_services(layout(), "cni", FLEET, IPv4Address("10.244.1.9"))
    every = services.node_services([svc(), other], layout())
    dns = every[0]
    assert (dns.namespace, dns.name, dns.cluster_ip) == (
        "kube-system",
        "kube-dns",
        IPv4Address("10.96.0.10"),
    )
    assert dns.endpoints == (DNS_POD, IPv4Address("10.244.1.9"))
    assert dns.ports == (kp.ServicePort("dns", "udp", 53, 53),)


def test_the_udp_endpoints_that_left_are_the_conntrack_entries_to_flush() -> None:
    before = [svc().churn]
    after = [services.with_endpoints(svc().churn, [p.ip for p in PODS[1:]])]
    gone = services.udp_endpoints(before) - services.udp_endpoints(after)
    assert gone == {(IPv4Address("10.96.0.18"), PODS[0].ip)}
    assert services.conntrack_flush_script(gone) == (
        "conntrack -D -p udp --orig-dst 10.96.0.18 --dst-nat 10.244.0.2 >/dev/null 2>&1 || true"
    )


def test_the_jumps_are_ensured_once_and_deleted_however_often_they_are_there() -> None:
    ensure = services.ensure_jumps_script().splitlines()
    delete = services.delete_jumps_script().splitlines()
    assert len(ensure) == len(delete) == len(kp.jump_rules())
    assert ensure[3] == (
        "iptables -w -t nat -C OUTPUT -m comment --comment 'kubernetes service portals' -j "
        "KUBE-SERVICES 2>/dev/null || iptables -w -t nat -I OUTPUT -m comment --comment "
        "'kubernetes service portals' -j KUBE-SERVICES"
    )
    assert delete[3].startswith("while iptables -w -t nat -C OUTPUT ")
    assert delete[3].endswith("; do iptables -w -t nat -D OUTPUT -m comment --comment "
                              "'kubernetes service portals' -j KUBE-SERVICES; done")  # fmt: skip


SAVED = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-OLDOLDOLDOLDOLD - [0:0]\nCOMMIT\n"


def test_programming_a_node_deletes_stale_chains_in_the_same_restore() -> None:
    fed: list[str | None] = []
    steps = script(
        Step("node1", ("iptables-save",), stdout=SAVED),
        Step("node1", ("sh", "-ec"), rest=lambda words: fed.append(words[0]), stdin=fed.append),
    )
    driver = FakeDriver(CI, steps)
    services.program_node(driver.runner, CI, "node1", [svc().echo])
    steps.done()
    program, restore = fed
    assert program is not None
    assert program.startswith("iptables-restore -w --noflush\n")
    assert restore is not None
    assert "-X KUBE-SVC-OLDOLDOLDOLDOLD" in restore
    assert "-d 10.96.0.17/32 --dport 80 -j KUBE-SVC-" in restore


def test_programming_every_node_gives_each_the_same_rules_and_flushes_what_left() -> None:
    fed: dict[str, list[str | None]] = {"node1": [], "node2": []}
    steps = script(
        *(
            step
            for node in ("node1", "node2")
            for step in (
                Step(node, ("iptables-save",), stdout=SAVED),
                Step(
                    node,
                    ("sh", "-ec"),
                    rest=lambda words, n=node: fed[n].append(words[0]),  # type: ignore[misc]
                    stdin=lambda text, n=node: fed[n].append(text),  # type: ignore[misc]
                ),
            )
        )
    )
    driver = FakeDriver(CI, steps)
    gone = {(IPv4Address("10.96.0.17"), IPv4Address("10.244.0.2"))}
    services.program(driver.runner, CI, [svc().echo], gone)
    steps.done()
    assert fed["node1"] == fed["node2"]
    program, restore = fed["node1"]
    assert program is not None
    assert program.endswith(
        "\nconntrack -D -p udp --orig-dst 10.96.0.17 --dst-nat 10.244.0.2 >/dev/null 2>&1 || true"
    )
    assert restore is not None
    assert "-d 10.96.0.17/32 --dport 80 -j KUBE-SVC-" in restore


def test_the_route_sources_are_each_nodes_kernels_per_pod() -> None:
    ips = ("10.244.0.2", "10.244.1.2")
    steps = script(
        *(
            step
            for node, src in (("node1", "10.10.40.241"), ("node2", "10.10.40.242"))
            for step in (
                *(
                    Step(node, ("ip", "-4", "route", "get", ip), stdout=f"{ip} via x src {src}\n")
                    for ip in ips
                ),
                Step(node, ("ip", "-o", "-4", "addr", "show")),
            )
        )
    )
    pods = [FLEET[("node1", 0)], FLEET[("node2", 0)]]
    routes = services.route_sources(FakeDriver(CI, steps), CI, pods)
    steps.done()
    assert routes == services.Routes(
        {
            "node1": {"10.244.0.2": "10.10.40.241", "10.244.1.2": "10.10.40.241"},
            "node2": {"10.244.0.2": "10.10.40.242", "10.244.1.2": "10.10.40.242"},
        }
    )


def test_unprogramming_a_node_says_what_is_left() -> None:
    steps = script(
        Step("node1", ("iptables-save",), stdout=SAVED),
        Step("node1", ("sh", "-ec"), rest=lambda words: None),
        Step("node1", ("iptables-save",), stdout=SAVED),
        Step("node2", ("iptables-save",), stdout=SAVED),
        Step("node2", ("sh", "-ec"), rest=lambda words: None),
        Step("node2", ("iptables-save",), stdout="*nat\nCOMMIT\n"),
    )
    driver = FakeDriver(CI, steps)
    assert "2 line(s) of KUBE- rules left" in services.unprogram_node(driver.runner, "node1")
    assert services.unprogram_node(driver.runner, "node2") == ""


# --- cells and what they expect ---------------------------------------------------------------


def test_cluster_ip_cells_expect_the_intended_pod_and_the_sender_or_its_masquerade() -> None:
    cells = services.clusterip_cells(CI, svc(), PODS, ROUTES, "udp")
    m = cells.matrix
    assert len(m.expected) == len(cells.probes) == (4 + 2) * 4
    a, b = PODS[0].name, PODS[2].name
    assert m.expected[(a, "ep-node2-p0")].source_of == {(b, "10.244.0.2")}
    assert m.expected[(a, "ep-node2-p0")].responders == {b}
    assert m.expected[(a, "ep-node1-p0")].source_of == {(a, "10.244.0.1")}  # hairpin
    assert m.expected[("node1", "ep-node2-p0")].source_of == {(b, "10.10.40.241")}
    assert m.expected[("node2", "ep-node2-p0")].source_of == {(b, "10.244.1.1")}
    probe = next(p for p in cells.probes if p.id == f"{a}->ep-node2-p0/udp")
    assert (probe.address, probe.port, probe.proto, probe.target) == (
        "10.96.0.21",
        80,
        "udp",
        PODS[2],
    )


def test_node_port_cells_try_each_node_with_a_local_and_a_remote_endpoint() -> None:
    cells = services.nodeport_cells(CI, svc(), PODS, ROUTES, "tcp")
    m = cells.matrix
    assert [t.name for t in m.targets] == [
        "node1:30012(ep-node1-p0)", "node1:30016(ep-node2-p0)",
        "node2:30012(ep-node1-p0)", "node2:30016(ep-node2-p0)",
    ]  # fmt: skip
    assert len(m.expected) == (4 + 2) * 4
    a, c = PODS[0].name, PODS[2].name
    # whoever sends, the endpoint sees the NodePort node's own route source to it
    assert m.expected[("node1", "node2:30012(ep-node1-p0)")].source_of == {(a, "10.10.40.242")}
    assert m.expected[(c, "node1:30012(ep-node1-p0)")].source_of == {(a, "10.244.0.1")}
    probe = next(p for p in cells.probes if p.id == f"{c}->node2:30016(ep-node2-p0)/tcp")
    assert (probe.address, probe.port) == ("10.10.40.242", 30016)


def _obs(source: str | None, by: str | None, ok: bool = True) -> rm.Observation:
    return rm.Observation(ok, source, "reproduce it", "" if ok else "timed out", answered_by=by)


def test_a_cell_answered_by_another_pod_or_with_a_translated_source_fails() -> None:
    driver = FakeDriver(CI)
    cells = services.clusterip_cells(CI, svc(), PODS, ROUTES, "tcp")
    for probe, (src, tgt) in zip(cells.probes, cells.matrix.expected, strict=True):
        exp = cells.matrix.expected[(src, tgt)]
        ((who, seen),) = exp.source_of
        driver.observations[probe.id] = _obs(seen, who)
    a, b, c = PODS[0].name, PODS[1].name, PODS[2].name
    driver.observations[f"{a}->ep-node2-p0/tcp"] = _obs("10.244.0.2", b)  # redirected
    driver.observations[f"{a}->ep-node1-p1/tcp"] = _obs("10.244.0.1", b)  # NATed
    driver.observations[f"{c}->ep-node1-p0/tcp"] = _obs(None, None, ok=False)
    m = services.observe_cells(driver, cells)
    assert m.symbol(a, "ep-node2-p0") == "W"
    assert m.symbol(a, "ep-node1-p1") == "N"
    assert m.symbol(c, "ep-node1-p0") == "X"
    assert len(m.mismatches()) == 3


def test_balance_names_an_endpoint_that_never_answered_and_an_answer_from_outside() -> None:
    driver = FakeDriver(CI)
    service = svc().echo
    for i in range(len(service.endpoints) * services.BALANCE_ROUNDS):
        who = [PODS[0].name, PODS[1].name, "intruder"][i % 3]
        driver.observations[f"{PODS[0].name}->echo#{i}/tcp"] = _obs("10.244.0.2", who)
    counts, problems = services.balance_problems(driver, service, PODS[0], PODS, "tcp")
    assert counts == {PODS[0].name: 14, PODS[1].name: 13, "intruder": 13}
    assert (
        sum("answered by intruder, not by an endpoint of e2e-cri/echo" in p for p in problems) == 13
    )
    assert problems[-1] == (
        "2 endpoint(s) never answered in 40 TCP probes of 10.96.0.17:80: nl-r1-cri-node2-p0, "
        "nl-r1-cri-node2-p1 (answers: {'nl-r1-cri-node1-p0': 14, 'nl-r1-cri-node1-p1': 13, "
        "'intruder': 13})"
    )


def test_churn_takes_the_pod_on_another_node_away_and_brings_it_back_alone() -> None:
    steps = services.churn_steps(PODS, PODS[0])
    leaving = PODS[2]  # node2's first: another node than the sender's
    assert [(s.endpoints, s.probes) for s in steps] == [
        ((leaving,), 4),
        ((PODS[0], PODS[1], PODS[3]), 12),
        ((leaving,), 4),
    ]
    assert [s.label for s in steps] == [
        f"only {leaving.name}",
        f"{leaving.name} left",
        f"{leaving.name} back alone",
    ]


def test_a_kept_udp_flow_is_probed_one_probe_at_a_time_from_its_port() -> None:
    driver = FakeDriver(CI)
    one = services.with_endpoints(svc().churn, [PODS[2].ip])
    for i in range(2):
        driver.observations[f"{PODS[0].name}->churn@9#{i}/udp"] = _obs("10.244.0.2", PODS[1].name)
    counts, problems = services.answers(
        driver, one, PODS, services.service_cells(one, PODS[0], PODS, "udp", 2, 61234, "@9")
    )
    assert driver.asked == [[f"{PODS[0].name}->churn@9#0/udp"], [f"{PODS[0].name}->churn@9#1/udp"]]
    assert counts == {PODS[1].name: 2}
    assert len(problems) == 2
    assert (
        f"answered by {PODS[1].name}, not by an endpoint of e2e-cri/churn ({PODS[2].name})"
        in problems[0]
    )


def _dns(answer: str) -> rm.Observation:
    return rm.Observation(True, None, "reproduce it", answer=answer)


def test_dns_wants_the_cluster_ip_and_nxdomain_from_every_pod_and_node() -> None:
    driver = FakeDriver(CI)
    name, missing = "echo.e2e-cri.svc.cluster.local", "no-such-service.e2e-cri.svc.cluster.local"
    for source in [*(p.name for p in PODS), "node1", "node2"]:
        driver.observations[f"{source}->dns:{name}"] = _dns(f"{name} A 10.96.0.17")
        driver.observations[f"{source}->dns:{missing}"] = _dns(f"{missing} RCODE 3")
    driver.observations[f"node2->dns:{name}"] = _dns(f"{name} RCODE 5")
    problems = services.dns_problems(driver, CI, layout(), svc(), PODS)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"node2->dns:{name}: answered '{name} RCODE 5', expected '{name} A 10.96.0.17'"
    )


# --- hints ------------------------------------------------------------------------------------


def _judged(bad: set[tuple[str, str]]) -> rm.Matrix:
    cells = services.clusterip_cells(CI, svc(), PODS, ROUTES, "tcp")
    for (src, tgt), exp in cells.matrix.expected.items():
        ((who, seen),) = exp.source_of
        ok = (src, tgt) not in bad
        cells.matrix.observed[(src, tgt)] = _obs(seen if ok else None, who if ok else None, ok)
    return cells.matrix


def test_failures_only_between_pods_of_one_bridge_point_at_bridge_nf() -> None:
    a, b = PODS[0].name, PODS[1].name
    found = services.hints(_judged({(a, "ep-node1-p1"), (b, "ep-node1-p0")}), PODS)
    assert found == [
        "only pod -> Service cells whose endpoint shares the source's bridge fail: the answer "
        "bypasses the node's conntrack (the guide's step 3: `modprobe br_netfilter` and "
        "net.bridge.bridge-nf-call-iptables = 1; check `sysctl net.bridge.bridge-nf-call-iptables` "
        "on the nodes)"
    ]


def test_failures_only_of_hairpins_point_at_hairpin_mode() -> None:
    bad = {(p.name, f"ep-{p.node}-p{i}") for p, i in zip(PODS, (0, 1, 0, 1), strict=True)}
    found = services.hints(_judged(bad), PODS)
    assert found == [
        "only hairpin cells fail (a pod reaching itself through its Service): the bridge port "
        "must reflect its own traffic (the bridge CNI plugin's hairpinMode: true; `bridge -d link "
        "show` shows `hairpin on`) and kube-proxy's KUBE-SEP rule must mark it for masquerade"
    ]


EVERY_SOURCE = [*(p.name for p in PODS), "node1", "node2"]


def test_services_nobody_reaches_point_at_their_chains() -> None:
    bad = {(s, t) for s in EVERY_SOURCE for t in ("ep-node2-p1", "ep-node2-p0")}
    assert services.hints(_judged(bad), PODS) == [
        "every cell to ep-node2-p0, ep-node2-p1 fails while other Services answer: its "
        "KUBE-SVC/KUBE-SEP chain is missing or points nowhere (`iptables-save -t nat | grep -A3 "
        "KUBE-SVC` on a node)"
    ]


def test_nothing_answering_at_all_points_at_no_one_service() -> None:
    bad = {(s, services.ep_name(slot)) for s in EVERY_SOURCE for slot in SLOTS}
    assert services.hints(_judged(bad), PODS) == []


def test_failures_within_and_across_bridges_point_at_no_bridge_setting() -> None:
    a = PODS[0].name
    assert services.hints(_judged({(a, "ep-node1-p1"), (a, "ep-node2-p0")}), PODS) == []


def test_failures_from_one_nodes_pods_and_the_node_itself_point_at_that_nodes_rules() -> None:
    bad = {(s, "ep-node2-p1") for s in (PODS[0].name, PODS[1].name, "node1")}
    assert services.hints(_judged(bad), PODS) == [
        "cells fail from node1's sources only: ep-node2-p1 — its KUBE-SVC/KUBE-SEP rules on node1 "
        "are missing or empty (kube-proxy's sync on that node: `sudo iptables-save -t nat | grep "
        "-B1 -A3 KUBE-SEP` there)"
    ]


def _observed_from_node1(to: str, obs: rm.Observation) -> rm.Matrix:
    matrix = _judged(set())
    matrix.observed[("node1", to)] = obs
    return matrix


def test_an_answer_from_another_pod_points_at_the_kube_sep_chains() -> None:
    redirected = _obs("10.10.40.241", PODS[3].name)
    assert services.hints(_observed_from_node1("ep-node2-p0", redirected), PODS) == [
        "some cells were answered by another pod than the Service's endpoint: a KUBE-SEP chain "
        "DNATs to the wrong address, or an endpoint's IP belongs to another pod (`iptables-save -t "
        "nat | grep KUBE-SEP` on the source's node)"
    ]


@pytest.mark.parametrize(
    "obs",
    [
        _obs("10.244.1.1", "nl-r1-cri-node2-p0"),  # NATed to another source, the right pod
        rm.Observation(
            True, "10.10.40.241", "again", answered_by="nl-r1-cri-node2-p0", retransmits=1
        ),
        _obs("10.10.40.241", ""),  # a server that names nobody: no pod to blame
    ],
    ids=["nated", "retransmitted", "unnamed"],
)
def test_a_wrong_cell_the_right_pod_answered_points_at_no_wrong_pod(obs: rm.Observation) -> None:
    matrix = _observed_from_node1("ep-node2-p0", obs)
    assert len(matrix.mismatches()) == 1
    assert services.hints(matrix, PODS) == []


def test_a_clean_matrix_has_no_hint() -> None:
    assert services.hints(_judged(set()), PODS) == []


# --- what kubelet gives a pod -----------------------------------------------------------------

KUBELET_RESOLV = (
    "search e2e-cri.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\n"
    "options ndots:5\n"
)
GAIERROR = "socket.gaierror: Name or service not known"  # 42 characters
RESOLV_ARGV = (
    "sh",
    "-c",
    "cat /etc/resolv.conf; echo ---; python3 -c "
    "'import socket; print(socket.gethostbyname('\"'\"'echo'\"'\"'))'",
)


def resolv_problems(stdout: str, exit_code: int = 0, stderr: str = "") -> list[str]:
    driver = FakeDriver(CI)
    pod = PODS[0]
    driver.execs[(pod.name, "echo", RESOLV_ARGV)] = ExecResult(exit_code, stdout, stderr, "again")
    return services.resolv_conf_problems(driver, CI, svc(), pod)


def test_kubelets_resolv_conf_in_any_order_resolving_echo_is_no_problem() -> None:
    # containerd writes `search` first, kubelet `nameserver`; comments and blank lines aside
    assert resolv_problems(f"# written by containerd\n\n{KUBELET_RESOLV}---\n10.96.0.17\n") == []


def test_a_resolv_conf_unlike_kubelets_is_named_with_both() -> None:
    assert resolv_problems("nameserver 10.96.0.10\n---\n10.96.0.17\n") == [
        "/etc/resolv.conf is ['nameserver 10.96.0.10'], kubelet's is ['nameserver 10.96.0.10', "
        "'search e2e-cri.svc.cluster.local svc.cluster.local cluster.local', "
        "'options ndots:5']\n    reproduce: again"
    ]


@pytest.mark.parametrize(
    ("resolved", "exit_code", "stderr", "why"),
    [
        ("10.96.0.99\n", 0, "", "10.96.0.99"),
        ("", 1, "x" * 300 + GAIERROR + "\n", "x" * 158 + GAIERROR),  # its last 200 characters
        ("", 7, "", "exit 7"),
    ],
    ids=["another-address", "resolver-error-tail", "silent-exit"],
)  # fmt: skip
def test_echo_resolved_elsewhere_or_not_at_all_says_what_came_instead(
    resolved: str, exit_code: int, stderr: str, why: str
) -> None:
    assert resolv_problems(f"{KUBELET_RESOLV}---\n{resolved}", exit_code, stderr) == [
        f"`echo` resolved to {why!r}, expected 10.96.0.17 (echo.e2e-cri.svc.cluster.local)\n"
        "    reproduce: again"
    ]


def test_the_dns_pod_and_the_state_file_are_named_after_the_run() -> None:
    assert services.dns_pod_name("r1", "cri") == "nl-r1-cri-dns"
    assert services.state_file(Path("/a/b")) == Path("/a/b/services.json")


def test_the_dns_pod_goes_on_the_last_node_away_from_the_first_nodes_one_node_checks() -> None:
    assert services.dns_pod_node({"node2", "node10", "node1"}) == "node2"  # names, sorted
    assert services.dns_pod_node(("b", "a", "c")) == "c"
    assert services.dns_pod_node(["only"]) == "only"


def test_a_resolv_conf_line_ending_like_the_separator_is_read_as_resolv_conf() -> None:
    # the script's own `echo ---` is the last such line: a comment ending in `---` is the file's
    assert resolv_problems(f"# --- from the CRI ---\n{KUBELET_RESOLV}---\n10.96.0.17\n") == []


# --- to the letter: what each piece hands on --------------------------------------------------

ONE_SLOT = services.allot(Services(), ("cri",), [("node1", 0)])


def test_the_dns_zone_is_records_domain_and_port_as_dnsd_reads_it() -> None:
    assert ONE_SLOT.zone() == {
        "records": {
            "churn.e2e-cri.svc.cluster.local": ["10.96.0.12"],
            "echo.e2e-cri.svc.cluster.local": ["10.96.0.11"],
            "ep-node1-p0.e2e-cri.svc.cluster.local": ["10.96.0.13"],
            "kube-dns.kube-system.svc.cluster.local": ["10.96.0.10"],
        },
        "domain": "cluster.local",
        "port": 53,
    }


class _FirstPodDiffers(FakeDriver):
    """A driver whose later fleet pods run another first container than a node's first pod."""

    def fleet_containers(self, index: int = 0) -> tuple[Container, ...]:
        return {
            0: (Container("echo", ("echo-server",), "client:1"), Container("client", ("sleep",))),
            1: (Container("echo-alone", ("echo-server",), "echo:1"),),
        }[index]


def test_the_dns_container_is_the_first_fleet_pods_server_with_its_zone_as_sorted_json() -> None:
    container = services.dns_container(_FirstPodDiffers(CI), ONE_SLOT)
    source = Path(dnsd.__file__).read_text()
    assert container == Container(
        "dns",
        (
            "python3",
            "-c",
            source,
            '{"domain": "cluster.local", "port": 53, "records": {'
            '"churn.e2e-cri.svc.cluster.local": ["10.96.0.12"], '
            '"echo.e2e-cri.svc.cluster.local": ["10.96.0.11"], '
            '"ep-node1-p0.e2e-cri.svc.cluster.local": ["10.96.0.13"], '
            '"kube-dns.kube-system.svc.cluster.local": ["10.96.0.10"]}}',
        ),
        "client:1",
    )


def test_the_state_entry_names_each_address_and_no_dns_pod_as_null() -> None:
    made = services.driver_services(ONE_SLOT, "cri", {("node1", 0): FLEET[("node1", 0)]}, None)
    entry = services.state_entry(made)
    assert entry == {
        "echo": ["10.244.0.2"],
        "churn": ["10.244.0.2"],
        "per_pod": {"nl-r1-cri-node1-p0": "10.244.0.2"},
        "dns": None,
    }
    assert services.services_from_state(ONE_SLOT, {"cri": entry}) == [made]


def test_node_names_holding_the_driver_or_a_p_come_back_from_the_state_file() -> None:
    # pod names are nl-RUN-DRIVER-NODE-pI: only the first `-cri-` ends the driver, only the
    # last `-p` starts the index
    slots = [("a-cri-pool", 0), ("cri-pool-2", 1)]
    ips = {slots[0]: IPv4Address("10.244.0.2"), slots[1]: IPv4Address("10.244.1.3")}
    fleet = {s: Pod(f"nl-r1-cri-{s[0]}-p{s[1]}", s[0], ips[s], ECHO, None) for s in slots}
    made_layout = services.allot(Services(), ("cri",), slots)
    made = services.driver_services(made_layout, "cri", fleet, DNS_POD)
    back = services.services_from_state(made_layout, {"cri": services.state_entry(made)})
    assert back == [made]
    assert {n: s.name for n, s in back[0].per_pod.items()} == {
        "nl-r1-cri-a-cri-pool-p0": "ep-a-cri-pool-p0",
        "nl-r1-cri-cri-pool-2-p1": "ep-cri-pool-2-p1",
    }


def test_only_udp_ports_have_conntrack_entries_to_flush() -> None:
    tcp_only = kp.Service(
        "e2e-cri", "web", IPv4Address("10.96.0.30"), (kp.ServicePort("http", "tcp", 80, 8080),),
        (PODS[0].ip,),
    )  # fmt: skip
    dns = services.dns_service(layout(), [DNS_POD])
    assert services.udp_endpoints([tcp_only, dns]) == {(IPv4Address("10.96.0.10"), DNS_POD)}


def _unprogram(saved: str, saved_exit: int, after: str) -> tuple[str, list[str | None]]:
    fed: list[str | None] = []
    steps = script(
        Step("node1", ("iptables-save",), stdout=saved, exit_code=saved_exit),
        Step("node1", ("sh", "-ec"), rest=fed.extend, stdin=fed.append),
        Step("node1", ("iptables-save",), stdout=after),
    )
    left = services.unprogram_node(FakeDriver(CI, steps).runner, "node1")
    steps.done()
    return left, fed


def test_unprogramming_deletes_the_jumps_then_restores_away_every_chain_held() -> None:
    left, fed = _unprogram(SAVED, 0, "*nat\nCOMMIT\n")
    assert left == ""
    assert fed == [
        services.delete_jumps_script() + "\niptables-restore -w --noflush",
        "*filter\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-OLDOLDOLDOLDOLD - [0:0]\n"
        "-X KUBE-SERVICES\n-X KUBE-SVC-OLDOLDOLDOLDOLD\nCOMMIT\n",
    ]


def test_unprogramming_after_a_failed_read_deletes_only_the_jumps() -> None:
    # what a failed iptables-save printed is no table to restore from
    left, fed = _unprogram(SAVED, 1, "")
    assert left == ""
    assert fed == [services.delete_jumps_script(), "*filter\nCOMMIT\n*nat\nCOMMIT\n"]


def test_rules_left_after_unprogramming_are_counted_and_the_first_three_shown() -> None:
    after = "*nat\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n:KUBE-C - [0:0]\n:KUBE-D - [0:0]\nCOMMIT\n"
    left, _ = _unprogram("", 0, after)
    assert left == (
        "node1: 4 line(s) of KUBE- rules left: "
        "[':KUBE-A - [0:0]', ':KUBE-B - [0:0]', ':KUBE-C - [0:0]']"
    )


def test_service_cells_go_from_the_source_to_the_cluster_ip_on_port_80() -> None:
    a, b = PODS[1].name, PODS[0]
    assert services.service_cells(svc().echo, PODS[1], PODS, "udp", 2) == [
        Probe(f"{a}->echo#0/udp", PODS[1], b, address="10.96.0.17", port=80, proto="udp"),
        Probe(f"{a}->echo#1/udp", PODS[1], b, address="10.96.0.17", port=80, proto="udp"),
    ]
    assert services.service_cells(svc().churn, PODS[1], PODS, "tcp", 1, 61234, "@2") == [
        Probe(f"{a}->churn@2#0/tcp", PODS[1], b, "10.96.0.18", 80, "tcp", sport=61234)
    ]


def test_probes_without_a_source_port_are_observed_in_one_batch() -> None:
    driver = FakeDriver(CI)
    cells = services.service_cells(svc().echo, PODS[0], PODS, "udp", 2)
    for cell in cells:
        driver.observations[cell.id] = _obs("10.244.0.2", None)
    counts, problems = services.answers(driver, svc().echo, PODS, cells)
    assert driver.asked == [[c.id for c in cells]]
    assert (counts, problems) == ({PODS[0].name: 2}, [])


def test_judging_names_every_unanswered_unnamed_and_foreign_answer_in_order() -> None:
    service = services.with_endpoints(svc().echo, [PODS[0].ip, PODS[2].ip])
    cells = services.service_cells(service, PODS[1], PODS, "tcp", 4)
    said = ["  " + "y" * 130 + "\n", "", PODS[2].name, "intruder"]
    seen = {
        cell.id: rm.Observation(i != 0, "10.244.0.3", f"again {i}", said[i], answered_by=said[i])
        for i, cell in enumerate(cells)
    }
    counts, problems = services.judge_answers(service, PODS, cells, seen)
    assert counts == {"(unnamed)": 1, PODS[2].name: 1, "intruder": 1}
    members = "nl-r1-cri-node1-p0, nl-r1-cri-node2-p0"
    assert problems == [
        f"{cells[0].id}: no answer ({'y' * 120})\n      reproduce: again 0",
        f"{cells[1].id}: answered by (unnamed), not by an endpoint of e2e-cri/echo ({members})\n"
        "      reproduce: again 1",
        f"{cells[3].id}: answered by intruder, not by an endpoint of e2e-cri/echo ({members})\n"
        "      reproduce: again 3",
    ]


def test_a_probe_list_unlike_the_matrix_is_an_error_not_a_half_filled_matrix() -> None:
    driver = FakeDriver(CI)
    cells = services.clusterip_cells(CI, svc(), PODS[:1], ROUTES, "tcp")
    extra = Probe("one too many", PODS[0], PODS[0])
    cells.probes.append(extra)
    for probe in cells.probes:
        driver.observations[probe.id] = _obs("10.244.0.1", None)
    with pytest.raises(ValueError, match="zip"):
        services.observe_cells(driver, cells)


def test_node_port_cells_to_the_letter() -> None:
    cells = services.nodeport_cells(CI, svc(), PODS, ROUTES, "udp")
    m = cells.matrix
    assert m.title == "pod/node -> NodePort UDP [cri]"
    assert m.sources == (
        *(p.endpoint for p in PODS),
        rm.Endpoint("node1", "node1", "10.10.40.241"),
        rm.Endpoint("node2", "node2", "10.10.40.242"),
    )
    assert m.targets == (
        rm.Endpoint("node1:30013(ep-node1-p0)", "node1", "10.10.40.241:30013"),
        rm.Endpoint("node1:30017(ep-node2-p0)", "node1", "10.10.40.241:30017"),
        rm.Endpoint("node2:30013(ep-node1-p0)", "node2", "10.10.40.242:30013"),
        rm.Endpoint("node2:30017(ep-node2-p0)", "node2", "10.10.40.242:30017"),
    )
    a, c = PODS[0].name, PODS[2].name
    assert m.expected[("node1", "node2:30017(ep-node2-p0)")] == rm.Expect(
        True,
        why="masqueraded by its node",
        responders=frozenset({c}),
        source_of=frozenset({(c, "10.244.1.1")}),
    )
    probes = {p.id: p for p in cells.probes}
    assert probes[f"{a}->node1:30017(ep-node2-p0)/udp"] == Probe(
        f"{a}->node1:30017(ep-node2-p0)/udp", PODS[0], PODS[2], "10.10.40.241", 30017, "udp"
    )
    assert probes["node2->node1:30013(ep-node1-p0)/udp"] == Probe(
        "node2->node1:30013(ep-node1-p0)/udp", "node2", PODS[0], "10.10.40.241", 30013, "udp"
    )


def test_dns_asks_the_kube_dns_cluster_ip_from_every_pod_and_node_for_both_names() -> None:
    driver = FakeDriver(CI)
    name, missing = "echo.e2e-cri.svc.cluster.local", "no-such-service.e2e-cri.svc.cluster.local"
    for source in [*(p.name for p in PODS), "node1", "node2"]:
        driver.observations[f"{source}->dns:{name}"] = _dns(f"{name} A 10.96.0.17")
        driver.observations[f"{source}->dns:{missing}"] = _dns(f"{missing} RCODE 3")
    assert services.dns_problems(driver, CI, layout(), svc(), PODS) == []
    assert len(driver.probed) == 12
    assert driver.probed[0] == Probe(
        f"{PODS[0].name}->dns:{name}", PODS[0], PODS[0], "10.96.0.10", 53, "dns", name=name
    )
    assert driver.probed[-1] == Probe(
        f"node2->dns:{missing}", "node2", PODS[0], "10.96.0.10", 53, "dns", name=missing
    )


@pytest.mark.parametrize(("dns_pod", "shown"), [(DNS_POD, "10.244.0.9"), (None, "?")])
def test_no_dns_answer_anywhere_says_the_dns_pod_or_its_rules(
    dns_pod: IPv4Address | None, shown: str
) -> None:
    driver = FakeDriver(CI)
    name, missing = "echo.e2e-cri.svc.cluster.local", "no-such-service.e2e-cri.svc.cluster.local"
    for source in [*(p.name for p in PODS), "node1", "node2"]:
        for q in (name, missing):
            driver.observations[f"{source}->dns:{q}"] = rm.Observation(
                False, None, "dig again", " " + "t" * 130
            )
    made = services.driver_services(layout(), "cri", FLEET, dns_pod)
    problems = services.dns_problems(driver, CI, layout(), made, PODS)
    assert len(problems) == 1 + 12
    assert problems[0] == (
        f"no DNS answer from any pod or node: the cluster DNS does not serve (its pod {shown} "
        "stopped or gone) or the kube-dns rules are missing (KUBE-SVC of kube-system/kube-dns:dns)"
    )
    assert problems[1] == (
        f"{PODS[0].name}->dns:{name}: no answer ( {'t' * 119}), expected '{name} A 10.96.0.17'\n"
        "      reproduce: dig again"
    )


def _program(saved: str, saved_exit: int = 0, exit_code: int = 0, stderr: str = "") -> str | None:
    fed: list[str | None] = []
    steps = script(
        Step("node1", ("iptables-save",), stdout=saved, exit_code=saved_exit),
        Step("node1", ("sh", "-ec"), rest=lambda w: None, stdin=fed.append, exit_code=exit_code,
             stderr=stderr),
    )  # fmt: skip
    services.program_node(FakeDriver(CI, steps).runner, CI, "node1", [svc().echo])
    steps.done()
    return fed[0]


@pytest.mark.parametrize(
    ("saved", "saved_exit"),
    [(SAVED, 1), ("*filter\n:KUBE-FORWARD - [0:0]\nCOMMIT\n", 0)],
    ids=["a-failed-read", "no-nat-chain-held"],
)
def test_a_node_without_a_readable_nat_chain_gets_the_rules_and_deletes_nothing(
    saved: str, saved_exit: int
) -> None:
    # the pod network's CIDR is the one kube-proxy's masquerade rules leave alone
    assert _program(saved, saved_exit) == kp.render_restore(
        [svc().echo], IPv4Network("10.244.0.0/16")
    )


def test_a_restore_the_node_refuses_names_the_step_and_its_output() -> None:
    with pytest.raises(DriverError) as err:
        _program(SAVED, exit_code=2, stderr="iptables-restore: line 7 failed\n")
    assert str(err.value).startswith(
        "node1: program the kube-proxy-shaped Service rules (iptables-restore --noflush) exited "
        "2: iptables-restore: line 7 failed\n  reproduce: "
    )


def test_each_udp_entry_to_flush_is_its_own_line_in_address_order() -> None:
    gone = {
        (IPv4Address("10.96.0.18"), IPv4Address("10.244.1.2")),
        (IPv4Address("10.96.0.18"), IPv4Address("10.244.0.2")),
    }
    assert services.conntrack_flush_script(gone) == (
        "conntrack -D -p udp --orig-dst 10.96.0.18 --dst-nat 10.244.0.2 >/dev/null 2>&1 || true\n"
        "conntrack -D -p udp --orig-dst 10.96.0.18 --dst-nat 10.244.1.2 >/dev/null 2>&1 || true"
    )


@pytest.mark.parametrize(
    ("word", "shown"),
    [("KUBE-SERVICES", "KUBE-SERVICES"), ("a b", "'a b'"), ("a;b", "'a;b'")],
)
def test_a_rule_word_with_a_space_or_a_semicolon_is_quoted_for_the_shell(
    word: str, shown: str
) -> None:
    assert services._shell_word(word) == shown


def test_cluster_ip_cells_to_the_letter() -> None:
    cells = services.clusterip_cells(CI, svc(), PODS, ROUTES, "udp")
    m = cells.matrix
    assert m.title == "pod/node -> ClusterIP UDP [cri]"
    assert m.sources == (
        *(p.endpoint for p in PODS),
        rm.Endpoint("node1", "node1", "10.10.40.241"),
        rm.Endpoint("node2", "node2", "10.10.40.242"),
    )
    assert m.targets == (
        rm.Endpoint("ep-node1-p0", "node1", "10.96.0.19"),
        rm.Endpoint("ep-node1-p1", "node1", "10.96.0.20"),
        rm.Endpoint("ep-node2-p0", "node2", "10.96.0.21"),
        rm.Endpoint("ep-node2-p1", "node2", "10.96.0.22"),
    )
    a, b, c = PODS[0].name, PODS[1].name, PODS[2].name

    def expect(who: str, source: str, why: str) -> rm.Expect:
        return rm.Expect(
            True, why=why, responders=frozenset({who}), source_of=frozenset({(who, source)})
        )

    assert m.expected[(a, "ep-node1-p1")] == expect(b, "10.244.0.2", "no NAT")
    assert m.expected[(a, "ep-node1-p0")] == expect(
        a, "10.244.0.1", "hairpin: masqueraded to its bridge address"
    )
    assert m.expected[("node2", "ep-node1-p0")] == expect(a, "10.10.40.242", "masqueraded")
    probes = {p.id: p for p in cells.probes}
    assert probes[f"{c}->ep-node1-p1/udp"] == Probe(
        f"{c}->ep-node1-p1/udp", PODS[2], PODS[1], "10.96.0.20", 80, "udp"
    )
    assert probes["node1->ep-node2-p0/udp"] == Probe(
        "node1->ep-node2-p0/udp", "node1", PODS[2], "10.96.0.21", 80, "udp"
    )


def test_a_cell_whose_node_has_no_route_source_admits_no_observation_and_says_why() -> None:
    cells = services.clusterip_cells(CI, svc(), PODS, services.Routes({}), "tcp")
    a = PODS[0].name
    assert cells.matrix.expected[("node1", "ep-node1-p0")] == rm.Expect(
        True,
        why="masqueraded",
        responders=frozenset({a}),
        source_of=frozenset({(a, "(no route source from the node)")}),
    )


def test_a_service_cidr_that_holds_the_suites_services_exactly_is_enough() -> None:
    # a /28's 12th to 15th addresses (the 16th is its broadcast): echo, churn and two ep-*
    exact = services.allot(Services(cidr=IPv4Network("10.96.0.0/28")), ("cri",), SLOTS[:2])
    assert sorted(exact.addresses.values())[-1] == IPv4Address("10.96.0.14")
    with pytest.raises(ValueError, match="too few addresses") as refused:
        services.allot(Services(cidr=IPv4Network("10.96.0.0/28")), ("cri",), SLOTS[:3])
    assert str(refused.value) == (
        "services.cidr 10.96.0.0/28 holds too few addresses for the suite's 5 Services (from "
        "its 11th address on): use a larger one, e.g. 10.96.0.0/12"
    )


def test_a_node_port_range_with_exactly_the_ports_needed_is_enough() -> None:
    # echo and four ep-* Services (churn has no NodePort), tcp and udp: 10 ports
    exact = services.allot(Services(node_port_range="30000-30009"), ("cri",), SLOTS)
    assert sorted(exact.node_ports.values()) == list(range(30000, 30010))
    with pytest.raises(ValueError, match=r"^services.node_port_range 30000-30008 has 9 ports"):
        services.allot(Services(node_port_range="30000-30008"), ("cri",), SLOTS)


def test_the_churn_service_has_the_endpoints_it_is_given() -> None:
    fleet = dict(zip(SLOTS, PODS, strict=True))
    given = services.driver_services(layout(("cri",)), "cri", fleet, DNS_POD, churn=[PODS[2].ip])
    assert given.churn.endpoints == (IPv4Address("10.244.1.2"),)
    every = services.driver_services(layout(("cri",)), "cri", fleet, DNS_POD)
    assert every.churn.endpoints == tuple(p.ip for p in PODS)
