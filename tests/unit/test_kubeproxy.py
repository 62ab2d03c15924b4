"""lab/net/kubeproxy.py: the kube-proxy-shaped rules (iptables mode of v1.18).

The chain names are checked against kube-proxy's own unit test
(pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRulesWithMultipleServices: the
hashes are the same from v1.18 on); the whole restore input against a golden file whose
differences from later releases docs/services.md names."""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.net import kubeproxy as kp
from tests.unit.golden import golden_text

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "kubeproxy"
P80 = kp.ServicePort("p80", "tcp", 80, 80)


def _svc(ns: str, name: str, ip: str, *eps: str, port: kp.ServicePort = P80) -> kp.Service:
    return kp.Service(ns, name, IPv4Address(ip), (port,), tuple(IPv4Address(e) for e in eps))


# (namespace, name, endpoint) -> (KUBE-SVC, KUBE-SEP) as proxier_test.go expects them
UPSTREAM = [
    ("ns1", "svc1", "10.180.0.1", "KUBE-SVC-XPGD46QRK7WJZT7O", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
    ("ns2", "svc2", "10.180.0.2", "KUBE-SVC-GNZBNJ2PO5MGZ6GT", "KUBE-SEP-RS4RBKLTHTF2IUXJ"),
    ("ns3", "svc3", "10.180.0.3", "KUBE-SVC-X27LE4BHSL4DOUIK", "KUBE-SEP-OYPFS5VJICHGATKP"),
    ("ns4", "svc4", "10.180.0.4", "KUBE-SVC-4SW47YFZTEDKD3PK", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
    ("ns4", "svc4", "10.180.0.5", "KUBE-SVC-4SW47YFZTEDKD3PK", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
    ("ns5", "svc5", "10.180.0.3", "KUBE-SVC-NUKIZ6OKUXPJNT4C", "KUBE-SEP-I77PXRDZVX7PMWMN"),
]


@pytest.mark.parametrize(("ns", "name", "endpoint", "svc", "sep"), UPSTREAM)
def test_chain_names_are_kube_proxys(ns: str, name: str, endpoint: str, svc: str, sep: str) -> None:
    service = _svc(ns, name, "172.30.0.41", endpoint)
    assert kp.svc_chain(service, P80) == svc
    assert kp.sep_chain(service, P80, IPv4Address(endpoint)) == sep


def test_the_protocol_and_the_target_port_are_part_of_the_hash() -> None:
    udp = kp.ServicePort("p80", "udp", 80, 80)
    other_target = kp.ServicePort("p80", "tcp", 80, 8080)
    service = _svc("ns1", "svc1", "172.30.0.41", "10.180.0.1")
    ep = IPv4Address("10.180.0.1")
    assert kp.svc_chain(service, udp) != kp.svc_chain(service, P80)
    assert kp.sep_chain(service, other_target, ep) != kp.sep_chain(service, P80, ep)
    assert kp.svc_chain(service, other_target) == kp.svc_chain(service, P80)


@pytest.mark.parametrize(("n", "text"), [(1, "1.00000"), (2, "0.50000"), (3, "0.33333")])
def test_probability_has_v118s_five_decimals(n: int, text: str) -> None:
    assert kp.probability(n) == text


ECHO = kp.ServicePort("tcp", "tcp", 80, 8080, 30080)
ECHO_UDP = kp.ServicePort("udp", "udp", 80, 8080, 30081)
CIDR = IPv4Network("10.244.0.0/16")


def _lab_services() -> list[kp.Service]:
    echo = kp.Service(
        "e2e-cri",
        "echo",
        IPv4Address("10.96.0.11"),
        (ECHO, ECHO_UDP),
        tuple(IPv4Address(a) for a in ("10.244.1.3", "10.244.0.2", "10.244.0.3")),
    )
    empty = kp.Service("e2e-cri", "gone", IPv4Address("10.96.0.12"), (ECHO,))
    return [empty, echo]


def test_the_restore_input_is_the_golden_one() -> None:
    text = kp.render_restore(
        _lab_services(), CIDR, stale=["KUBE-SEP-OLD", "KUBE-SVC-XPGD46QRK7WJZT7O"]
    )
    assert text == golden_text(GOLDEN / "two-services.restore", text)


def _rules(text: str, table: str) -> list[str]:
    section = text.split(f"*{table}\n", 1)[1].split("COMMIT", 1)[0]
    return [line for line in section.splitlines() if line.startswith("-A ")]


def test_every_endpoint_is_picked_with_the_odds_that_make_the_choice_uniform() -> None:
    text = kp.render_restore(_lab_services(), CIDR)
    svc = kp.svc_chain(_lab_services()[1], ECHO)
    picks = [r for r in _rules(text, "nat") if r.startswith(f"-A {svc} ")]
    odds = [re.search(r"--probability (\S+)", r) for r in picks]
    assert [m[1] if m else None for m in odds] == ["0.33333", "0.50000", None]
    # each endpoint's chance: p_i * prod(1 - p_j for j < i) == 1/3
    left, chances = 1.0, []
    for m in odds:
        p = float(m[1]) if m else 1.0
        chances.append(left * p)
        left *= 1 - p
    assert chances == pytest.approx([1 / 3] * 3, abs=1e-4)


def test_every_chain_used_is_declared_and_every_declared_chain_is_used_or_deleted() -> None:
    text = kp.render_restore(_lab_services(), CIDR, stale=["KUBE-SEP-OLD"])
    for table in ("filter", "nat"):
        section = text.split(f"*{table}\n", 1)[1].split("COMMIT", 1)[0]
        declared = {line[1:].split()[0] for line in section.splitlines() if line.startswith(":")}
        jumped = {m[1] for m in re.finditer(r"-j (KUBE-[A-Z0-9-]+)", section)}
        appended = {line.split()[1] for line in section.splitlines() if line.startswith("-A ")}
        deleted = {line.split()[1] for line in section.splitlines() if line.startswith("-X ")}
        assert jumped <= declared, table
        assert declared - appended - deleted <= {kp.EXTERNAL_SERVICES, kp.NODEPORTS}, table
        assert appended | deleted <= declared, table


def test_a_service_without_endpoints_rejects_on_its_cluster_ip_and_node_port() -> None:
    text = kp.render_restore(_lab_services(), CIDR)
    rejects = [r for r in _rules(text, "filter") if "-j REJECT" in r]
    assert any("-d 10.96.0.12/32 --dport 80" in r for r in rejects)
    assert any("--dport 30080" in r and "KUBE-EXTERNAL-SERVICES" in r for r in rejects)
    assert "10.96.0.12" not in "\n".join(_rules(text, "nat"))


def test_traffic_from_outside_the_cluster_cidr_and_hairpin_traffic_is_masqueraded() -> None:
    text = kp.render_restore(_lab_services(), CIDR)
    nat = _rules(text, "nat")
    assert any("-d 10.96.0.11/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ" in r for r in nat)
    hairpins = [r for r in nat if r.startswith("-A KUBE-SEP-") and "-j KUBE-MARK-MASQ" in r]
    assert sorted(r.split("-s ")[1].split()[0] for r in hairpins) == sorted(
        [f"{a}/32" for a in ("10.244.1.3", "10.244.0.2", "10.244.0.3")] * 2
    )
    assert nat[-1].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")


def test_only_kube_proxys_own_stale_chains_are_deleted() -> None:
    text = kp.render_restore([], CIDR, stale=["KUBE-SEP-OLD", "KUBE-MARK-DROP", "OTHER"])
    assert "-X KUBE-SEP-OLD" in text
    assert "KUBE-MARK-DROP" not in text
    assert "OTHER" not in text


def test_without_random_fully_the_masquerade_has_no_flag() -> None:
    assert "--random-fully" in kp.render_restore([], CIDR)
    assert "--random-fully" not in kp.render_restore([], CIDR, random_fully=False)


def test_jumps_are_the_seven_of_v118() -> None:
    jumps = kp.jump_rules()
    assert [(t, c) for t, c, _ in jumps] == [
        ("filter", "INPUT"),
        ("filter", "FORWARD"),
        ("filter", "OUTPUT"),
        ("nat", "OUTPUT"),
        ("nat", "PREROUTING"),
        ("nat", "POSTROUTING"),
        ("filter", "FORWARD"),
    ]
    assert all(rule[-2:][0] == "-j" for _, _, rule in jumps)


SAVED = """# Generated by iptables-save v1.8.9
*filter
:INPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
-A FORWARD -j KUBE-FORWARD
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:FLANNEL-POSTRTG - [0:0]
COMMIT
"""


def test_held_chains_are_read_from_iptables_save_and_removed_by_table() -> None:
    held = kp.parse_held_chains(SAVED)
    assert held == {
        "filter": {"KUBE-FORWARD", "KUBE-SERVICES"},
        "nat": {"KUBE-SVC-XPGD46QRK7WJZT7O"},
    }
    removal = kp.render_removal(held)
    assert removal.splitlines() == [
        "*filter",
        ":KUBE-FORWARD - [0:0]",
        ":KUBE-SERVICES - [0:0]",
        "-X KUBE-FORWARD",
        "-X KUBE-SERVICES",
        "COMMIT",
        "*nat",
        ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]",
        "-X KUBE-SVC-XPGD46QRK7WJZT7O",
        "COMMIT",
    ]


# --- against kube-proxy's own whole-ruleset expectation (a later release) --------------------
# What changed between v1.18 (what the lab renders) and the release whose test text is
# tests/golden/kubeproxy/upstream-svc1.nat, each as the rewrite that turns v1.18's rule into
# the later one. Nothing else may differ.


def _no_host_prefix(rule: str) -> str:
    """Later releases write a single address without /32."""
    return re.sub(r"(-[ds] \d+\.\d+\.\d+\.\d+)/32\b", r"\1", rule)


def _or_mark(rule: str) -> str:
    """KUBE-MARK-MASQ sets the bit with --or-mark (v1.18: --set-xmark MARK/MARK)."""
    return rule.replace("--set-xmark 0x00004000/0x00004000", "--or-mark 0x4000")


def _postrouting(rule: str) -> list[str]:
    """KUBE-POSTROUTING returns unmarked packets, clears the mark, then masquerades (v1.18: one
    MASQUERADE matching the mark); the test's fake iptables has no --random-fully."""
    if not rule.startswith("-A KUBE-POSTROUTING "):
        return [rule]
    return [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE",
    ]


def _masquerade_in_svc_chain(rule: str, svc: str) -> str:
    """The ClusterIP's masquerade rule moved from KUBE-SERVICES into the Service's chain."""
    if rule.startswith("-A KUBE-SERVICES ") and rule.endswith("-j KUBE-MARK-MASQ"):
        return rule.replace("-A KUBE-SERVICES ", f"-A {svc} ", 1)
    return rule


def _comments(rule: str, name: str, endpoint: str) -> str:
    """SEP rules carry the Service's name and SVC -> SEP jumps `NAME -> ENDPOINT` (v1.18 lost
    them: appendServiceCommentLocked's result was discarded)."""
    if rule.startswith("-A KUBE-SEP-"):
        chain, rest = rule[3:].split(" ", 1)
        return f"-A {chain} -m comment --comment {name} {rest}"
    if rule.startswith("-A KUBE-SVC-") and "-j KUBE-SEP-" in rule:
        chain, rest = rule[3:].split(" ", 1)
        return f'-A {chain} -m comment --comment "{name} -> {endpoint}" {rest}'
    return rule


def _later(ours: list[str], svc: str, skip: str = "") -> list[str]:
    """v1.18's rules rewritten as the later release writes them (`skip`: one rewrite left out)."""
    steps: dict[str, Callable[[str], list[str]]] = {
        "no /32": lambda r: [_no_host_prefix(r)],
        "--or-mark": lambda r: [_or_mark(r)],
        "masquerade in the SVC chain": lambda r: [_masquerade_in_svc_chain(r, svc)],
        "comments": lambda r: [_comments(r, "ns1/svc1:p80", "10.180.0.1:80")],
        "KUBE-POSTROUTING": _postrouting,
    }
    rules = list(ours)
    for name, step in steps.items():
        if name != skip:
            rules = [out for r in rules for out in step(r)]
    return sorted(rules)


REWRITES = ("no /32", "--or-mark", "masquerade in the SVC chain", "comments", "KUBE-POSTROUTING")


def test_v118s_rules_are_kube_proxys_own_but_for_the_named_changes() -> None:
    upstream = [
        line
        for line in (GOLDEN / "upstream-svc1.nat").read_text().splitlines()
        if line.startswith("-A ")
    ]
    service = _svc("ns1", "svc1", "172.30.0.41", "10.180.0.1")
    svc = kp.svc_chain(service, P80)
    ours = _rules(kp.render_restore([service], IPv4Network("10.0.0.0/8")), "nat")
    assert _later(ours, svc) == sorted(upstream)


@pytest.mark.parametrize("skip", REWRITES)
def test_each_named_change_is_one_that_is_needed(skip: str) -> None:
    upstream = [
        line
        for line in (GOLDEN / "upstream-svc1.nat").read_text().splitlines()
        if line.startswith("-A ")
    ]
    service = _svc("ns1", "svc1", "172.30.0.41", "10.180.0.1")
    ours = _rules(kp.render_restore([service], IPv4Network("10.0.0.0/8")), "nat")
    assert _later(ours, kp.svc_chain(service, P80), skip) != sorted(upstream)
