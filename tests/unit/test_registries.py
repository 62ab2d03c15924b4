"""The two registries (lab/podnet/, lab/hosts/os/): a pod-network backend and an OS family are
each one place. A toy backend and a toy OS, registered from this file alone, are validated,
planned and rendered like the shipped ones; no module outside the registries compares a
backend's or a family's name."""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.common.commands import Command, cmd
from lab.hosts import compat
from lab.hosts.hypervisor import HypervisorChoice
from lab.hosts.os import BoxState, OsProfile, profile, profile_of
from lab.hosts.os import base as os_base
from lab.hosts.render import render_lab_files
from lab.model.config import Lab, Node, check_lab
from lab.model.labfile import load_lab
from lab.model.problems import Problem
from lab.podnet import Backend, Restart, backend, backend_of, register, unregister
from lab.podnet import base as podnet_base
from lab.podnet.bridge import bridge_conflist
from provision.model import AnyStep, PodnetSteps, Resources, Step
from provision.steps import dry_run, inputs_for, render_plan, steps_for

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")

# --- a toy backend: a bridge per node and a route table of its own ------------------------


@dataclass(frozen=True)
class ToyFacts:
    table: str | None


def plan_toy(lab: Lab, node: Node, facts: ToyFacts) -> tuple[Command, ...]:
    return () if facts.table == "100 toy" else (cmd("sh", "-c", "echo 100 toy >> /etc/rt"),)


TOY_STEP = Step(
    number="11t",
    key="toy-table",
    title="the toy route table",
    section="(a test's own backend)",
    scope="all",
    facts_type=ToyFacts,
    facts=lambda lab, node: {},
    plan=plan_toy,
    fresh=lambda lab, node: ToyFacts(None),
)


class ToySteps:
    """The toy backend's provisioning module (its `provisioning` names it by module:attr)."""

    @staticmethod
    def steps(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
        return (TOY_STEP,)


class Toy(Backend):
    name = "toy"
    description = "a test's backend"
    family = "routing"
    provisioning = f"{__name__}:ToySteps"

    def validate(self, lab: Lab) -> Iterator[Problem]:
        if lab.pod_network.subnet_len != 24:
            yield Problem("pod_network.subnet_len", lab.pod_network.subnet_len, "toy wants 24")

    def dataplane(self, lab: Lab) -> str:
        return "toy-routes"

    def conflist(self, lab: Lab, node: Node, nic_mtu: int | None) -> dict[str, Any]:
        subnets = self.planned_subnets(lab)
        assert subnets is not None
        return bridge_conflist(lab, subnets[node.name], self.pod_mtu(lab), "0.0.0.0/0", {})

    def render_files(self, lab: Lab, flannel_upstream: str | None) -> dict[str, str]:
        return {f"toy-{n.name}.txt": f"table 100 for {n.name}\n" for n in lab.nodes}

    def restart(self, lab: Lab, node: Node) -> Restart:
        return Restart(inject=(cmd("ip", "route", "flush", "table", "100"),))


# --- a toy OS: Debian 12's column under another name, with steps of its own ----------------


def plan_nothing(lab: Lab, node: Node, facts: ToyFacts) -> tuple[Command, ...]:
    return ()


TOY_OS_STEP = dataclasses.replace(TOY_STEP, number="1", key="toy-os", plan=plan_nothing)


class ToyOsSteps:
    @staticmethod
    def steps(lab: Lab, resources: Resources, podnet: PodnetSteps) -> tuple[AnyStep, ...]:
        return (TOY_OS_STEP, *podnet.network, *podnet.after_join)

    @staticmethod
    def inputs(lab: Lab, channels: Any) -> dict[str, Any]:
        return {}


def toy_os_checks(lab: Lab) -> Iterator[Problem]:
    if lab.vm.private_nic != "eth1":
        yield Problem("vm.private_nic", lab.vm.private_nic, "toyos names it eth1")


TOY_OS = OsProfile(
    family="toyos",
    description="a test's OS",
    python="python3.99",
    cni_bin_dir="/opt/toy/cni",
    components={"systemd": "300"},
    tools=compat.tools_table([("ip", "iproute2", "iproute2", "/usr/bin/ip", "box", "everyone")]),
    user_path=("/usr/bin",),
    sudo_path=("/usr/bin",),
    box=BoxState(fstab="", swaps=()),
    provisioning=f"{__name__}:ToyOsSteps",
    validate=toy_os_checks,
)


@pytest.fixture
def toys() -> Iterator[None]:
    register(Toy())
    os_base.register(TOY_OS)
    try:
        yield
    finally:
        unregister("toy")
        os_base.unregister("toyos")


def toy_lab(**pod_network: Any) -> tuple[Lab | None, list[Problem]]:
    raw = {
        "name": "toy-lab",
        "vm": {"box": "toy/box", "box_version": "1", "cpus": 1, "memory_mib": 1024},
        "network": {"private": "10.77.0.0/24", "management": "192.168.177.0/24"},
        "nodes": [{"name": "node1", "ip": "10.77.0.11"}, {"name": "node2", "ip": "10.77.0.12"}],
        "os": {"family": "toyos"},
        "pod_network": {"driver": "toy", "cidr": "10.244.0.0/16", **pod_network},
    }
    return check_lab(raw, "toy.yaml")


@pytest.mark.usefixtures("toys")
def test_a_toy_backend_and_os_registered_here_validate_plan_and_render() -> None:
    lab, problems = toy_lab()
    assert problems == []
    assert lab is not None
    assert backend_of(lab).dataplane(lab) == "toy-routes"
    assert profile_of(lab).python == "python3.99"
    steps = steps_for(lab)
    assert [s.key for s in steps] == ["toy-os", "toy-table"]
    assert inputs_for(lab, {}) == {}
    plan = render_plan(lab.nodes[0], dry_run(lab, lab.nodes[0], steps))
    assert "echo 100 toy >> /etc/rt" in plan
    files = render_lab_files(lab, HypervisorChoice("qemu", "qemu64", ""), None)
    assert files["toy-node2.txt"] == "table 100 for node2\n"
    assert '"default_prefix": "netlab-toy-lab_"' in files["vagrant.json"]


@pytest.mark.usefixtures("toys")
def test_a_toy_backends_and_oss_own_checks_run_with_the_generic_ones() -> None:
    _, problems = toy_lab(subnet_len=25, mtu=100)
    assert [str(p) for p in problems] == [
        "pod_network.mtu = 100: must be between 576 and 9000",
        "pod_network.subnet_len = 25: toy wants 24",
    ]


def test_without_registration_the_names_are_unknown_and_the_known_ones_listed() -> None:
    _, problems = toy_lab()
    assert [str(p) for p in problems] == [
        "os.family = 'toyos': is not an OS family this harness knows; use one of: debian12, el7",
        "pod_network.driver = 'toy': is not a pod-network backend this harness knows; use one "
        "of: bgp, flannel, host-routes, vxlan",
    ]
    with pytest.raises(KeyError, match="unknown pod-network backend 'toy'"):
        backend("toy")
    with pytest.raises(KeyError, match="unknown OS family 'toyos'"):
        profile("toyos")


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="'vxlan' is already registered"):
        register(type("Other", (Toy,), {"name": "vxlan"})())


def test_the_shipped_backends_answer_for_the_shipped_labs() -> None:
    answers = {}
    for name in ("ci-debian12", "ci-debian12-vxlan", "guide-centos7"):
        lab = load_lab(ROOT / "labs" / f"{name}.yaml")
        chosen = backend_of(lab)
        answers[name] = (
            chosen.dataplane(lab),
            chosen.tunnels(lab),
            chosen.pod_mtu(lab),
            chosen.allots_subnets(lab),
            chosen.programs_tunnel,
            chosen.restart(lab, lab.nodes[-1]).isolates,
            profile_of(lab).python,
            profile_of(lab).cni_bin_dir,
        )
    assert answers == {
        "ci-debian12": ("host-gw", False, 1500, True, False, True, "python3", "/usr/lib/cni"),
        "ci-debian12-vxlan": ("vxlan", True, 1450, True, True, True, "python3", "/usr/lib/cni"),
        # the guide's flannel is vxlan (not "host-gw", as e2e/perf.py once called it), leased
        # by the cluster, and outlives its pod's restart (no teardown in v0.14.0)
        "guide-centos7": ("vxlan", True, 1450, False, False, False, "python", "/opt/cni/bin"),
    }


def test_a_restart_on_the_ci_labs_removes_exactly_the_routes_networkd_puts_back() -> None:
    vx = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
    for lab, link in ((CI, "eth1"), (vx, "flannel.1")):
        how = backend_of(lab).restart(lab, lab.nodes[-1])
        assert [c.argv for c in how.inject] == [("ip", "route", "del", "10.244.0.0/24")]
        assert [c.argv for c in how.heal] == [("networkctl", "reconfigure", link)]
        assert how.daemonset == ""


# --- no name comparisons outside the registries ---------------------------------------------

REGISTRIES = ("lab/podnet/", "lab/hosts/os/")
SOURCES = ("app", "lab", "provision", "e2e", "bench")
NAMES = {"flannel", "host-routes", "vxlan", "host-gw", "el7", "debian12"}


def compared_names(path: Path) -> list[str]:
    """`x.driver == "vxlan"`, `"el7" != lab.os.family`, `family in ("el7", ...)`: every
    comparison (== != in not in) of a backend's or a family's name with a string constant."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        constants = []
        for side in (node.left, *node.comparators):
            if isinstance(side, ast.Constant) and isinstance(side.value, str):
                constants.append(side.value)
            elif isinstance(side, ast.Tuple | ast.List | ast.Set):
                constants += [
                    e.value
                    for e in side.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
        hits = NAMES.intersection(constants)
        if hits:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {sorted(hits)}")
    return found


def test_no_module_outside_the_registries_compares_a_backend_or_os_name() -> None:
    found = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not str(path.relative_to(ROOT)).startswith(REGISTRIES):
                found += compared_names(path)
    assert found == []


def test_the_name_scan_sees_a_comparison() -> None:
    sample = ROOT / "tests" / "unit" / "_scan_sample.py"
    code = 'def f(lab):\n    return lab.pod_network.driver == "vxlan" or "el7" in (1, "el7")\n'
    sample.write_text(code)
    try:
        assert compared_names(sample) == [
            "tests/unit/_scan_sample.py:2: ['vxlan']",
            "tests/unit/_scan_sample.py:2: ['el7']",
        ]
    finally:
        sample.unlink()


class Bare(Backend):
    """A backend that answers only what every backend has (never registered)."""

    name = "bare"
    description = "a test's backend with the defaults"
    family = "routing"
    provisioning = f"{__name__}:ToySteps"


def test_a_backend_without_its_own_answers_has_the_defaults() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    bare = Bare()
    assert list(bare.validate(lab)) == []
    assert bare.tunnel_device(lab) is None
    assert bare.expected_routes(lab, lab.nodes[0]) == ()
    assert bare.tunnel_port(lab) is None
    assert bare.conflist(lab, lab.nodes[0], 1500) is None
    assert bare.render_files(lab, None) == {}
    with pytest.raises(NotImplementedError, match=r"^backend bare has no restart fault$"):
        bare.restart(lab, lab.nodes[0])


def test_real_flannel_answers_from_its_section_its_backend_and_its_restart() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    flannel = backend_of(guide)
    assert (flannel.dataplane(guide), flannel.max_pod_mtu(guide)) == ("vxlan", 1450)
    assert flannel.restart(guide, guide.nodes[-1]) == Restart(
        daemonset="app=flannel", isolates=False
    )
    section = guide.pod_network.flannel
    assert section is not None
    host_gw = dataclasses.replace(
        guide,
        pod_network=dataclasses.replace(
            guide.pod_network, flannel=dataclasses.replace(section, backend="host-gw")
        ),
    )
    assert (flannel.dataplane(host_gw), flannel.max_pod_mtu(host_gw)) == ("host-gw", 1500)
    bare = dataclasses.replace(
        guide, pod_network=dataclasses.replace(guide.pod_network, flannel=None)
    )
    assert flannel.dataplane(bare) == "vxlan"  # flannel's own default backend


def test_real_flannel_tunnels_through_flannel_1_only_with_its_vxlan_backend() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    flannel = backend_of(guide)
    section = guide.pod_network.flannel
    assert section is not None

    def with_section(fl: Any) -> Lab:
        return dataclasses.replace(
            guide, pod_network=dataclasses.replace(guide.pod_network, flannel=fl)
        )

    host_gw = with_section(dataclasses.replace(section, backend="host-gw"))
    answers = [
        (flannel.tunnels(lab), flannel.tunnel_device(lab), flannel.tunnel_port(lab))
        for lab in (guide, host_gw, with_section(None))
    ]
    assert answers == [(True, "flannel.1", 8472), (False, None, None), (False, None, None)]
    # only a tunnel costs its encapsulation: flannel's host-gw carries the NIC's whole MTU
    assert [flannel.max_pod_mtu(lab) for lab in (guide, host_gw)] == [1450, 1500]


def _guide_with(flannel: dict[str, Any], mtu: int | None, cni: str) -> Lab:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    assert guide.pod_network.flannel is not None
    assert guide.kubernetes is not None
    fl = dataclasses.replace(guide.pod_network.flannel, **flannel)
    return dataclasses.replace(
        guide,
        pod_network=dataclasses.replace(guide.pod_network, flannel=fl, mtu=mtu),
        kubernetes=dataclasses.replace(guide.kubernetes, cni_package_version=cni),
    )


def test_real_flannel_names_every_bad_field_of_its_section_at_once() -> None:
    bad = {
        "version": "0.14",
        "manifest_url": "ftp://x",
        "manifest_sha256": "XYZ",
        "image": "bad image",
        "mirror_image": "not an image",
    }
    lab = _guide_with(bad, 1500, "1.2.0-0")
    image = "is not a container image reference; use registry/repository:tag, e.g. "
    assert [str(p) for p in backend_of(lab).validate(lab)] == [
        "pod_network.flannel.version = '0.14': must look like v0.14.0",
        "pod_network.flannel.manifest_url = 'ftp://x': must be an http(s) URL; e.g. "
        "https://mirrors.example.org/",
        "pod_network.flannel.manifest_sha256 = 'XYZ': must be 64 lowercase hex digits; run "
        "sha256sum on the manifest",
        f"pod_network.flannel.image = 'bad image': {image}quay.io/coreos/flannel:v0.14.0",
        f"pod_network.flannel.mirror_image = 'not an image': {image}quay.io/coreos/flannel:v0.14.0",
        "pod_network.mtu = 1500: a VXLAN tunnel takes 50 bytes of the node network's 1500: pods "
        "get at most 1450 (flannel's FLANNEL_MTU); set pod_network.mtu: 1450",
        "kubernetes.cni_package_version = '1.2.0-0': kubernetes-cni 1.x ships no flannel CNI "
        "plugin (flannel-io/flannel#1471) and the flannel manifest installs none: pods would "
        "stay ContainerCreating; pin a 0.8.x release that ships it, e.g. 0.8.7-0",
    ]


def test_real_flannel_checks_host_gw_as_a_routing_backend_and_no_mirror_as_none() -> None:
    lab = _guide_with({"backend": "host-gw", "mirror_image": ""}, 1500, "0.8.7-0")
    assert list(backend_of(lab).validate(lab)) == []
    lab = _guide_with({"backend": "host-gw"}, 1501, "0.8.7-0")
    assert [p.where for p in backend_of(lab).validate(lab)] == ["pod_network.mtu"]


@pytest.mark.parametrize(
    ("cni", "refused"),
    [("0.8.7-0", False), ("0.9.1-0", False), ("1.0.0-0", True), ("10.1.0-0", True)],
)
def test_real_flannel_refuses_a_kubernetes_cni_from_1_0_on(cni: str, refused: bool) -> None:
    lab = _guide_with({}, None, cni)
    where = [p.where for p in backend_of(lab).validate(lab)]
    assert where == (["kubernetes.cni_package_version"] if refused else [])


def test_a_shipped_os_family_cannot_be_registered_again_under_another_profile() -> None:
    shipped = os_base.profile("debian12")
    assert os_base.register(shipped) is shipped  # the same profile again: a no-op
    impostor = dataclasses.replace(shipped)  # equal, but another profile
    with pytest.raises(ValueError, match=r"^OS family 'debian12' is already registered$"):
        os_base.register(impostor)
    assert os_base.profile("debian12") is shipped


def test_a_pod_mtu_the_lab_sets_wins_over_the_backends_own() -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    narrower = dataclasses.replace(ci, pod_network=dataclasses.replace(ci.pod_network, mtu=1400))
    assert (backend_of(ci).pod_mtu(ci), backend_of(narrower).pod_mtu(narrower)) == (1500, 1400)


def test_the_largest_pod_mtu_is_the_nics_less_the_tunnels_overhead() -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    vxlan = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
    assert backend_of(ci).max_pod_mtu(ci) == 1500
    assert backend_of(vxlan).max_pod_mtu(vxlan) == 1450


@pytest.mark.parametrize(
    ("mtu", "refused"),
    [(1501, True), (1500, False), (9000, True), (9001, False), (576, False), (None, False)],
)
def test_host_routes_refuse_a_pod_mtu_over_the_nics_within_the_valid_range(
    mtu: int | None, refused: bool
) -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    lab = dataclasses.replace(ci, pod_network=dataclasses.replace(ci.pod_network, mtu=mtu))
    expected = [
        Problem(
            "pod_network.mtu",
            mtu,
            "is more than the 1500 bytes the nodes' private NIC (eth1) carries: pod packets "
            "cross nodes unencapsulated with a routing backend, and larger ones are dropped or "
            "fragmented on the way",
            "set pod_network.mtu: 1500, or remove it",
        )
    ]
    assert list(backend_of(lab).validate(lab)) == (expected if refused else [])


def test_a_shipped_family_or_backend_is_imported_on_its_first_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved_os = os_base._PROFILES.pop("el7")
    saved_backend = podnet_base._BACKENDS.pop("vxlan")
    monkeypatch.delitem(sys.modules, "lab.hosts.os.el7")
    monkeypatch.delitem(sys.modules, "lab.podnet.vxlan")
    try:
        assert os_base.profile("el7").family == "el7"
        assert backend("vxlan").name == "vxlan"
    finally:
        os_base._PROFILES["el7"] = saved_os
        podnet_base._BACKENDS["vxlan"] = saved_backend


def test_an_unknown_family_or_backend_is_named_with_the_known_ones() -> None:
    with pytest.raises(KeyError) as family:
        os_base.profile("arch")
    assert family.value.args == ("unknown OS family 'arch'; known: debian12, el7",)
    with pytest.raises(KeyError) as podnet:
        backend("calico")
    assert podnet.value.args == (
        "unknown pod-network backend 'calico'; known: bgp, flannel, host-routes, vxlan",
    )


def test_real_flannel_without_its_section_or_kubernetes_asks_for_the_section() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    bare = dataclasses.replace(
        guide, pod_network=dataclasses.replace(guide.pod_network, flannel=None), kubernetes=None
    )
    assert [str(p) for p in backend_of(bare).validate(bare)] == [
        "pod_network.flannel: is required when driver is flannel; copy the flannel section of "
        "labs/guide-centos7.yaml"
    ]
