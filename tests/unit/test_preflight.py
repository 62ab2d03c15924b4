"""`python -m lab preflight`: what the host lacks, said before anything is created. Network
checks run against a fake resolver/connector/opener; the real probe only on loopback."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import threading
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app import preflight as pf
from lab.adapters.netprobe import NetProbe
from lab.hosts.hostcheck import (
    DOCKER_HUB,
    Check,
    Endpoint,
    LibvirtNetwork,
    check_cpus,
    check_endpoint,
    check_host_networks,
    check_host_tools,
    check_kvm,
    check_libvirt_networks,
    check_memory,
    exit_code,
    lab_endpoints,
    libvirt_subnet_problems,
    parse_libvirt_network_xml,
    parse_meminfo_available_mib,
    registry_of,
)
from lab.hosts.hypervisor import HostFacts
from lab.model.config import Image
from lab.model.labfile import load_lab
from lab.model.problems import Problem

ROOT = Path(__file__).resolve().parents[2]
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
NO_KVM = HostFacts(dev_kvm_accessible=True, kvm_vendor_module=False, virt_cpu_flag=False)
KVM = HostFacts(True, True, True)
MEMINFO = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20971520 kB\n"


# --- host checks ---------------------------------------------------------------------------


KVM_FIX = (
    "run it on a Linux host with VT-x/AMD-V enabled in the firmware, kvm_intel or kvm_amd "
    "loaded and /dev/kvm readable and writable by you (group kvm)"
)


def test_the_guide_lab_needs_kvm_and_says_what_this_host_lacks() -> None:
    assert check_kvm(GUIDE, NO_KVM) == Check(
        "KVM",
        "missing",
        "not usable here (no kvm_intel/kvm_amd module; no vmx/svm CPU flag); lab guide-centos7 "
        "runs Kubernetes and needs hardware virtualisation (under QEMU TCG kubeadm's control "
        "plane does not come up in time)",
        KVM_FIX,
    )
    assert check_kvm(GUIDE, HostFacts(False, True, True)).detail.startswith(
        "not usable here (/dev/kvm is not accessible); lab guide-centos7 "
    )
    assert check_kvm(GUIDE, KVM) == Check(
        "KVM", "ok", "usable (/dev/kvm, kvm_intel/kvm_amd, vmx/svm)"
    )


def test_the_ci_lab_runs_without_kvm_with_a_warning() -> None:
    assert check_kvm(CI, NO_KVM) == Check(
        "KVM",
        "warn",
        "not usable (no kvm_intel/kvm_amd module; no vmx/svm CPU flag): QEMU TCG, 5-10x slower; "
        "fine for ci-debian12",
    )
    forced = dataclasses.replace(CI, vm=dataclasses.replace(CI.vm, hypervisor="kvm"))
    assert check_kvm(forced, NO_KVM).status == "missing"
    tcg = dataclasses.replace(GUIDE, vm=dataclasses.replace(GUIDE.vm, hypervisor="qemu"))
    assert check_kvm(tcg, NO_KVM) == Check(
        "KVM",
        "info",
        "not usable (no kvm_intel/kvm_amd module; no vmx/svm CPU flag); the lab asks for QEMU TCG",
    )


def test_memory_counts_every_node_plus_headroom() -> None:
    assert parse_meminfo_available_mib(MEMINFO) == 20480
    assert check_memory(GUIDE, 7168) == Check(
        "memory", "ok", "7168 MiB needed (3 nodes + 1024 MiB headroom), 7168 MiB available"
    )
    assert check_memory(GUIDE, 7167) == Check(
        "memory",
        "missing",
        "7168 MiB needed (3 nodes + 1024 MiB headroom), 7167 MiB available",
        "free memory, or lower vm.memory_mib",
    )
    with pytest.raises(ValueError, match=r"^no MemAvailable line in /proc/meminfo$"):
        parse_meminfo_available_mib("MemTotal: 1 kB\n")


def test_cpus_a_node_wider_than_the_host_is_missing_overcommit_a_warning() -> None:
    assert check_cpus(GUIDE, 1).status == "missing"
    assert check_cpus(GUIDE, 2).status == "warn"
    assert check_cpus(GUIDE, 8).status == "ok"


def test_libvirt_not_running_is_skipped_and_said_so() -> None:
    assert check_libvirt_networks(GUIDE, None) == Check(
        "libvirt subnets",
        "skipped",
        "libvirtd is not running (preflight starts nothing); `up` checks this before any VM",
    )


def test_preflight_no_network_on_a_host_without_kvm_fails_on_the_guide_lab_only() -> None:
    def run(lab: Any) -> list[Check]:
        tools = dict.fromkeys(("vagrant", "virsh", "libvirtd", "qemu-system-x86_64"), True)
        return pf.host_checks(lab, NO_KVM, MEMINFO, 2, tools, (), ())

    guide, ci = run(GUIDE), run(CI)
    assert exit_code(guide) == 1
    assert [c.name for c in guide if c.status == "missing"] == ["KVM"]
    assert exit_code(ci) == 0


def test_host_tools_missing_before_setup_are_information_not_failure() -> None:
    checks = pf.host_checks(CI, NO_KVM, MEMINFO, 2, {}, (), None)
    (tools,) = [c for c in checks if c.name == "host tools"]
    assert tools.status == "info"
    assert tools.fix == "make setup"
    assert exit_code(checks) == 0


# --- every URL and registry the lab file names ---------------------------------------------


def urls_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        yield value
    elif dataclasses.is_dataclass(value):
        for item in dataclasses.fields(value):
            yield from urls_in(getattr(value, item.name))
    elif isinstance(value, tuple):
        for v in value:
            yield from urls_in(v)


def test_every_url_of_the_lab_file_is_checked() -> None:
    lab = dataclasses.replace(
        GUIDE,
        kubernetes=dataclasses.replace(
            GUIDE.kubernetes,  # type: ignore[arg-type]
            repo=dataclasses.replace(
                GUIDE.kubernetes.repo,  # type: ignore[union-attr]
                alternatives=("https://repo.huaweicloud.com/kubernetes/yum/repos/el7/",),
            ),
            docker=dataclasses.replace(
                GUIDE.kubernetes.docker,  # type: ignore[union-attr]
                registry_mirrors=("https://abc.mirror.aliyuncs.com",),
            ),
        ),
    )
    checked = [e.url for e in lab_endpoints(lab)]
    for url in urls_in(lab):
        assert any(c.startswith(url.rstrip("/")) for c in checked), url
    assert "https://vagrantcloud.com/centos/7" in checked
    assert (
        "https://mirrors.aliyun.com/centos-vault/7.9.2009/os/x86_64/repodata/repomd.xml" in checked
    )


def test_every_registry_a_node_pulls_from_is_checked_and_a_mirror_replaces_its_image() -> None:
    registries = {e.url for e in lab_endpoints(GUIDE) if e.kind == "registry"}
    assert registries == {
        f"https://{DOCKER_HUB}/v2/",  # rancher/mirrored-coreos-flannel, busybox, nginx
        "https://registry.k8s.io/v2/",  # agnhost
        "https://registry.aliyuncs.com/v2/",  # kubeadm's images
    }
    assert "https://quay.io/v2/" not in registries, "flannel's image comes from its mirror"
    images = dataclasses.replace(
        GUIDE.kubernetes.e2e_images,  # type: ignore[union-attr]
        echo=Image(
            "registry.k8s.io/e2e-test-images/agnhost:2.21", "registry.example.cn/agnhost:2.21"
        ),
    )
    lab = dataclasses.replace(
        GUIDE,
        kubernetes=dataclasses.replace(GUIDE.kubernetes, e2e_images=images),  # type: ignore[arg-type]
    )
    registries = {e.url for e in lab_endpoints(lab) if e.kind == "registry"}
    assert "https://registry.example.cn/v2/" in registries
    assert "https://registry.k8s.io/v2/" not in registries


def test_registry_of_an_image_reference() -> None:
    assert registry_of("busybox:1.28") == DOCKER_HUB
    assert registry_of("rancher/mirrored-coreos-flannel:v0.14.0") == DOCKER_HUB
    assert registry_of("quay.io/coreos/flannel:v0.14.0") == "quay.io"
    assert registry_of("localhost:5000/x:1") == "localhost:5000"


def test_the_ci_lab_names_no_url_at_all() -> None:
    assert lab_endpoints(CI) == []


# --- DNS, then TCP, then HTTP(S), with fakes --------------------------------------------------


class FakeNet:
    """A strict fake resolver/connector/opener: answers only what the test declares."""

    def __init__(
        self,
        dns: dict[str, list[str] | Exception],
        tcp: dict[tuple[str, int], Exception | None],
        http: dict[str, int | Exception],
    ) -> None:
        self.dns, self.tcp, self.http = dns, tcp, http
        self.calls: list[tuple[str, float]] = []

    def resolve(self, host: str, timeout: float) -> list[str]:
        self.calls.append((f"dns {host}", timeout))
        answer = self.dns[host]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def connect(self, address: str, port: int, timeout: float) -> None:
        self.calls.append((f"tcp {address}:{port}", timeout))
        error = self.tcp[(address, port)]
        if error is not None:
            raise error

    def fetch(self, url: str, timeout: float) -> int:
        self.calls.append((f"get {url}", timeout))
        answer = self.http[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


REPO = Endpoint(
    "kubernetes.repo.baseurl", "https://mirror.example/k8s/repodata/repomd.xml", "yum-repo"
)
HUB = Endpoint("kubernetes.e2e_images.busybox.image", f"https://{DOCKER_HUB}/v2/", "registry")


def test_dns_then_tcp_then_https_each_with_the_timeout() -> None:
    net = FakeNet(
        {"mirror.example": ["192.0.2.7"]},
        {("192.0.2.7", 443): None},
        {REPO.url: 200},
    )
    check = check_endpoint(REPO, net, timeout=3.0)
    assert check.status == "ok"
    assert net.calls == [
        ("dns mirror.example", 3.0),
        ("tcp 192.0.2.7:443", 3.0),
        (f"get {REPO.url}", 3.0),
    ]


@pytest.mark.parametrize(
    ("net", "status", "says"),
    [
        (
            FakeNet({"mirror.example": OSError("Name or service not known")}, {}, {}),
            "missing",
            "mirror.example: DNS failed (Name or service not known)",
        ),
        (
            FakeNet({"mirror.example": TimeoutError("no answer within 3s")}, {}, {}),
            "missing",
            "mirror.example: DNS failed (no answer within 3s)",
        ),
        (
            FakeNet(
                {"mirror.example": ["192.0.2.7"]},
                {("192.0.2.7", 443): TimeoutError("timed out")},
                {},
            ),
            "missing",
            "mirror.example:443 (192.0.2.7): TCP failed (timed out)",
        ),
        (
            FakeNet({"mirror.example": ["192.0.2.7"]}, {("192.0.2.7", 443): None}, {REPO.url: 404}),
            "missing",
            f"{REPO.url}: HTTP 404 (moved or removed?)",
        ),
        (
            FakeNet({"mirror.example": ["192.0.2.7"]}, {("192.0.2.7", 443): None}, {REPO.url: 503}),
            "warn",
            f"{REPO.url}: HTTP 503",
        ),
        (
            FakeNet(
                {"mirror.example": ["192.0.2.7"]},
                {("192.0.2.7", 443): None},
                {REPO.url: OSError("certificate verify failed")},
            ),
            "missing",
            f"{REPO.url}: request failed (certificate verify failed)",
        ),
    ],
    ids=["dns", "dns-timeout", "tcp-timeout", "http-404", "http-503", "tls"],
)
def test_the_first_failing_stage_names_the_cause(net: FakeNet, status: str, says: str) -> None:
    assert check_endpoint(REPO, net, timeout=3.0) == Check(
        "kubernetes.repo.baseurl",
        status,
        says,
        "point kubernetes.repo.baseurl at a mirror you can reach",
    )


@pytest.mark.parametrize(
    ("code", "status"), [(200, "ok"), (299, "ok"), (300, "warn"), (199, "warn")]
)
def test_only_a_2xx_answer_is_reachable(code: int, status: str) -> None:
    net = FakeNet({"mirror.example": ["192.0.2.7"]}, {("192.0.2.7", 443): None}, {REPO.url: code})
    fix = "" if status == "ok" else "point kubernetes.repo.baseurl at a mirror you can reach"
    assert check_endpoint(REPO, net, 3.0) == Check(
        "kubernetes.repo.baseurl", status, f"{REPO.url}: HTTP {code}", fix
    )


def test_a_registry_answering_401_is_reachable() -> None:
    net = FakeNet({DOCKER_HUB: ["198.51.100.1"]}, {("198.51.100.1", 443): None}, {HUB.url: 401})
    assert check_endpoint(HUB, net, 5.0) == Check(
        "kubernetes.e2e_images.busybox.image",
        "ok",
        f"https://{DOCKER_HUB}/v2/: registry answers (HTTP 401)",
    )


def test_an_unreachable_url_with_a_pinned_local_copy_is_only_a_warning() -> None:
    cached = Endpoint(
        "pod_network.flannel.manifest_url", "https://raw.example/kube-flannel.yml", "url", True
    )
    check = check_endpoint(cached, FakeNet({"raw.example": OSError("blocked")}, {}, {}), 5.0)
    assert check == Check(
        "pod_network.flannel.manifest_url",
        "warn",
        "raw.example: DNS failed (blocked)",
        "a pinned copy is cached; fine",
    )


def test_behind_a_proxy_only_the_request_is_made_through_it() -> None:
    net = FakeNet({}, {}, {REPO.url: 200})
    check = check_endpoint(REPO, net, 5.0, proxy="http://proxy.corp:3128")
    assert check == Check(
        "kubernetes.repo.baseurl", "ok", f"{REPO.url}: HTTP 200 via proxy http://proxy.corp:3128"
    )
    assert [c for c, _ in net.calls] == [f"get {REPO.url}"]


def test_network_checks_cover_every_endpoint_of_the_lab() -> None:
    endpoints = lab_endpoints(GUIDE)
    net = FakeNet({}, {}, {e.url: 200 for e in endpoints})
    checks = pf.network_checks(GUIDE, net, 1.0, proxy="http://proxy:3128")
    assert len(checks) == len(endpoints)
    assert all(c.status == "ok" for c in checks)


# --- the verb ------------------------------------------------------------------------------


def test_the_verb_prints_every_check_and_exits_non_zero_when_something_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, bool, float]] = []

    def gather(lab: Any, network: bool, timeout: float) -> list[Check]:
        seen.append((lab.name, network, timeout))
        return [
            Check("KVM", "missing", "not usable here", "use a KVM host"),
            Check("memory", "ok", "plenty"),
        ]

    monkeypatch.setattr(pf, "gather", gather)
    assert cli.main(["preflight", "guide-centos7", "--no-network", "--timeout", "2"]) == 1
    assert seen == [("guide-centos7", False, 2.0)]
    out = capsys.readouterr().out
    assert "missing  KVM: not usable here" in out
    assert "fix: use a KVM host" in out
    assert "not ready: 1 missing (KVM)" in out


# --- the real probe, on loopback only ------------------------------------------------------


@pytest.fixture
def local_http() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/repodata/repomd.xml" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_real_probe_against_a_loopback_server(
    local_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    net = NetProbe()
    good = Endpoint("kubernetes.repo.baseurl", f"{local_http}/repodata/repomd.xml", "yum-repo")
    gone = Endpoint("kubernetes.repo.baseurl", f"{local_http}/old/repodata/repomd.xml", "yum-repo")
    assert check_endpoint(good, net, 2.0).status == "ok"
    assert "HTTP 404" in check_endpoint(gone, net, 2.0).detail
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        net.connect("127.0.0.1", free, 1.0)
    assert set(net.resolve("localhost", 2.0)) & {"127.0.0.1", "::1"}


def test_an_unreachable_endpoint_says_which_field_to_point_elsewhere() -> None:
    blocked = FakeNet({"mirror.example": OSError("no"), DOCKER_HUB: OSError("no")}, {}, {})
    two = Endpoint(
        "a.baseurl,b.baseurl", "https://mirror.example/r/repodata/repomd.xml", "yum-repo"
    )
    assert check_endpoint(two, blocked, 1.0).fix == "point a.baseurl at a mirror you can reach"
    assert check_endpoint(HUB, blocked, 1.0).fix == (
        "set a mirror you can reach (kubernetes.docker.registry_mirrors or the image's mirror)"
    )
    spaced = Endpoint("a b", "https://mirror.example/r/", "yum-repo")
    assert check_endpoint(spaced, blocked, 1.0).fix == "point a b at a mirror you can reach"


FIX = "point kubernetes.repo.baseurl at a mirror you can reach"
R = "kubernetes.repo.baseurl"


@pytest.mark.parametrize(
    ("net", "check"),
    [
        (
            FakeNet({"mirror.example": OSError("no such host")}, {}, {}),
            Check(R, "missing", "mirror.example: DNS failed (no such host)", FIX),
        ),
        (
            FakeNet({"mirror.example": []}, {}, {}),
            Check(R, "missing", "mirror.example: DNS returned no address", FIX),
        ),
        (
            FakeNet(
                {"mirror.example": ["192.0.2.7"]}, {("192.0.2.7", 443): OSError("refused")}, {}
            ),
            Check(R, "missing", "mirror.example:443 (192.0.2.7): TCP failed (refused)", FIX),
        ),
        (
            FakeNet(
                {"mirror.example": ["192.0.2.7"]},
                {("192.0.2.7", 443): None},
                {REPO.url: OSError("reset")},
            ),
            Check(R, "missing", f"{REPO.url}: request failed (reset)", FIX),
        ),
        (
            FakeNet({"mirror.example": ["192.0.2.7"]}, {("192.0.2.7", 443): None}, {REPO.url: 401}),
            Check(R, "warn", f"{REPO.url}: HTTP 401", FIX),  # a yum repo must answer 2xx
        ),
        (
            FakeNet({"mirror.example": ["192.0.2.7"]}, {("192.0.2.7", 443): None}, {REPO.url: 404}),
            Check(R, "missing", f"{REPO.url}: HTTP 404 (moved or removed?)", FIX),
        ),
    ],
)
def test_each_way_an_endpoint_fails_is_one_exact_check(net: FakeNet, check: Check) -> None:
    assert check_endpoint(REPO, net, 2.0) == check


def test_an_optional_endpoint_only_warns_and_says_a_copy_is_cached() -> None:
    cached = Endpoint(R, REPO.url, "yum-repo", optional=True)
    net = FakeNet({"mirror.example": OSError("no")}, {}, {})
    assert check_endpoint(cached, net, 2.0) == Check(
        R, "warn", "mirror.example: DNS failed (no)", "a pinned copy is cached; fine"
    )


def test_plain_http_is_port_80_and_a_url_without_a_host_asks_dns_for_nothing() -> None:
    plain = Endpoint("f", "http://mirror.example/r/", "yum-repo")
    net = FakeNet({"mirror.example": ["192.0.2.7"]}, {("192.0.2.7", 80): None}, {plain.url: 200})
    assert check_endpoint(plain, net, 2.0) == Check("f", "ok", f"{plain.url}: HTTP 200")
    hostless = Endpoint("g", "https:///v2/", "registry")
    nothing = FakeNet({"": OSError("empty name")}, {}, {})
    assert check_endpoint(hostless, nothing, 2.0).detail == ": DNS failed (empty name)"


def test_a_registry_answers_with_401_and_a_proxy_is_named_only_when_used() -> None:
    direct = FakeNet({DOCKER_HUB: ["192.0.2.8"]}, {("192.0.2.8", 443): None}, {HUB.url: 401})
    assert check_endpoint(HUB, direct, 2.0) == Check(
        HUB.field, "ok", f"{HUB.url}: registry answers (HTTP 401)"
    )
    proxied = FakeNet({}, {}, {HUB.url: 200})
    assert check_endpoint(HUB, proxied, 2.0, proxy="http://p:3128") == Check(
        HUB.field, "ok", f"{HUB.url}: registry answers (HTTP 200) via proxy http://p:3128"
    )


# --- the host's tools, interfaces and libvirt networks, each as one exact check ---


def test_host_tools_all_there_or_those_missing_named_in_order() -> None:
    every = dict.fromkeys(("vagrant", "virsh", "libvirtd", "qemu-system-x86_64"), True)
    assert check_host_tools(every) == Check(
        "host tools", "ok", "vagrant, virsh, libvirtd, qemu-system-x86_64"
    )
    some = {**every, "virsh": False, "qemu-system-x86_64": False}
    assert check_host_tools(some) == Check(
        "host tools", "info", "not installed yet: virsh, qemu-system-x86_64", "make setup"
    )


def test_every_lab_range_a_host_interface_holds_is_named() -> None:
    held = [IPv4Network("192.168.131.0/25"), IPv4Network("10.1.2.0/24"), IPv4Network("10.9.0.0/16")]
    assert check_host_networks(GUIDE, held) == Check(
        "host subnets",
        "missing",
        "network.management 192.168.131.0/24 overlaps 192.168.131.0/25; "
        "kubernetes.service_cidr 10.1.0.0/16 overlaps 10.1.2.0/24",
        "pick ranges no host interface uses",
    )
    assert check_host_networks(
        CI, [IPv4Network("10.244.7.0/24"), IPv4Network("10.10.40.9/32")]
    ) == (
        Check(
            "host subnets",
            "missing",
            "network.private 10.10.40.0/24 overlaps 10.10.40.9/32; "
            "pod_network.cidr 10.244.0.0/16 overlaps 10.244.7.0/24",
            "pick ranges no host interface uses",
        )
    )
    assert check_host_networks(CI, held) == Check(
        "host subnets", "ok", "no overlap with 3 host interface range(s)"
    )


NET_XML = """<network>
  <name>{name}</name>
  <ip address="{address}" {mask}/>
  <ip family="ipv6" address="fd00::1" prefix="64"/>
  <ip family="ipv4"/>
</network>"""


def libvirt_net(name: str, address: str, mask: str = 'prefix="24"') -> str:
    return NET_XML.format(name=name, address=address, mask=mask)


def test_a_libvirt_networks_name_and_ipv4_ranges_are_read() -> None:
    parse = parse_libvirt_network_xml
    assert parse(libvirt_net(" default ", "192.168.122.1")) == LibvirtNetwork(
        "default", (IPv4Network("192.168.122.0/24"),)
    )
    assert parse(libvirt_net("n", "10.1.2.3", 'netmask="255.255.0.0"')).subnets == (
        IPv4Network("10.1.0.0/16"),
    )
    assert parse(libvirt_net("n", "10.1.2.3", "")).subnets == (IPv4Network("10.1.2.0/24"),)
    assert parse("<network><ip address='10.0.0.1' prefix='8'/></network>") == LibvirtNetwork(
        "", (IPv4Network("10.0.0.0/8"),)
    )
    # an IPv6 range or an address-less <ip> before an IPv4 one is skipped, not the end
    two = (
        "<network><name>n</name><ip family='ipv6' address='fd00::1' prefix='64'/><ip/>"
        "<ip address='10.0.0.1' prefix='24'/><ip address='10.0.1.1' prefix='24'/></network>"
    )
    assert parse(two) == LibvirtNetwork(
        "n", (IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/24"))
    )


def test_a_range_another_libvirt_network_holds_is_refused_with_how_to_free_it() -> None:
    xmls = [libvirt_net("vagrant-libvirt", "10.10.40.1"), libvirt_net("other", "172.16.0.1")]
    assert check_libvirt_networks(CI, xmls) == Check(
        "libvirt subnets",
        "missing",
        "network.private 10.10.40.0/24: libvirt network 'vagrant-libvirt' already holds "
        "10.10.40.0/24: vagrant-libvirt refuses a network whose address exists under another "
        "name (NetworkNameAndAddressMismatch)",
        "pick a free range for network.private, or remove 'vagrant-libvirt' if nothing uses it "
        "(virsh net-destroy vagrant-libvirt; virsh net-undefine vagrant-libvirt)",
    )
    assert check_libvirt_networks(CI, xmls[1:]) == Check(
        "libvirt subnets", "ok", "no overlap with 1 libvirt network(s)"
    )


def test_every_range_another_libvirt_network_holds_is_named_and_the_first_fix_given() -> None:
    xmls = [
        libvirt_net("vagrant-libvirt", "10.10.40.1"),
        libvirt_net("wide", "10.10.0.1", 'prefix="16"'),
    ]
    assert check_libvirt_networks(CI, xmls) == Check(
        "libvirt subnets",
        "missing",
        "network.private 10.10.40.0/24: libvirt network 'vagrant-libvirt' already holds "
        "10.10.40.0/24: vagrant-libvirt refuses a network whose address exists under another "
        "name (NetworkNameAndAddressMismatch); "
        "network.private 10.10.40.0/24: libvirt network 'wide' already holds 10.10.0.0/16: "
        "vagrant-libvirt refuses a network whose address exists under another name "
        "(NetworkNameAndAddressMismatch)",
        "pick a free range for network.private, or remove 'vagrant-libvirt' if nothing uses it "
        "(virsh net-destroy vagrant-libvirt; virsh net-undefine vagrant-libvirt)",
    )


def test_the_labs_own_network_is_fine_at_its_range_and_refused_at_an_old_one() -> None:
    own = LibvirtNetwork("netlab-ci-debian12_priv", (IPv4Network("10.10.40.0/24"),))
    empty = LibvirtNetwork("netlab-ci-debian12_mgmt", ())
    assert libvirt_subnet_problems(CI, [own, empty]) == []
    moved = LibvirtNetwork("netlab-ci-debian12_priv", (IPv4Network("10.10.99.0/24"),))
    (problem,) = libvirt_subnet_problems(CI, [moved])
    assert problem == Problem(
        "network.private",
        "10.10.40.0/24",
        "this lab's libvirt network 'netlab-ci-debian12_priv' still holds 10.10.99.0/24 from an "
        "earlier up: vagrant-libvirt refuses a known network name with another address",
        "destroy the lab first (python -m lab destroy ci-debian12), or remove the network "
        "(virsh net-destroy netlab-ci-debian12_priv; virsh net-undefine "
        "netlab-ci-debian12_priv)",
    )
    moved_twice = LibvirtNetwork(
        "netlab-ci-debian12_priv", (IPv4Network("10.10.98.0/24"), IPv4Network("10.10.99.0/24"))
    )
    (problem,) = libvirt_subnet_problems(CI, [moved_twice])
    assert problem.message == (
        "this lab's libvirt network 'netlab-ci-debian12_priv' still holds 10.10.98.0/24, "
        "10.10.99.0/24 from an earlier up: vagrant-libvirt refuses a known network name with "
        "another address"
    )


def test_a_foreign_network_listed_after_the_labs_own_is_still_checked() -> None:
    own = LibvirtNetwork("netlab-ci-debian12_priv", (IPv4Network("10.10.40.0/24"),))
    other = LibvirtNetwork("other", (IPv4Network("10.10.0.0/16"),))
    assert [(p.field, p.value) for p in libvirt_subnet_problems(CI, [own, other])] == [
        ("network.private", "10.10.40.0/24")
    ]


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (HostFacts(False, True, True), "/dev/kvm is not accessible"),
        (HostFacts(True, False, True), "no kvm_intel/kvm_amd module"),
        (HostFacts(True, True, False), "no vmx/svm CPU flag"),
        (
            HostFacts(False, False, False),
            "/dev/kvm is not accessible; no kvm_intel/kvm_amd module; no vmx/svm CPU flag",
        ),
    ],
)
def test_kvm_says_exactly_what_is_missing_and_what_it_means_for_the_lab(
    facts: HostFacts, why: str
) -> None:
    assert check_kvm(GUIDE, facts) == Check(
        "KVM",
        "missing",
        f"not usable here ({why}); lab guide-centos7 runs Kubernetes and needs hardware "
        "virtualisation (under QEMU TCG kubeadm's control plane does not come up in time)",
        "run it on a Linux host with VT-x/AMD-V enabled in the firmware, kvm_intel or "
        "kvm_amd loaded and /dev/kvm readable and writable by you (group kvm)",
    )
    assert check_kvm(CI, facts) == Check(
        "KVM", "warn", f"not usable ({why}): QEMU TCG, 5-10x slower; fine for ci-debian12"
    )
    tcg = dataclasses.replace(GUIDE, vm=dataclasses.replace(GUIDE.vm, hypervisor="qemu"))
    assert check_kvm(tcg, facts) == Check(
        "KVM", "info", f"not usable ({why}); the lab asks for QEMU TCG"
    )


def test_usable_kvm_is_ok_whatever_the_lab() -> None:
    ok = Check("KVM", "ok", "usable (/dev/kvm, kvm_intel/kvm_amd, vmx/svm)")
    assert check_kvm(GUIDE, KVM) == ok
    assert check_kvm(CI, KVM) == ok


def test_cpus_a_node_wider_than_the_host_is_refused_an_overcommit_warned() -> None:
    detail = "{} host CPUs; nodes have 6 vCPUs, the largest 2"
    assert check_cpus(GUIDE, 1) == Check(
        "CPUs", "missing", detail.format(1), "a node cannot have more vCPUs than the host"
    )
    assert check_cpus(GUIDE, 2) == Check(
        "CPUs", "warn", detail.format(2) + " (overcommitted: slower, still works)"
    )
    assert check_cpus(GUIDE, 5) == Check(
        "CPUs", "warn", detail.format(5) + " (overcommitted: slower, still works)"
    )
    assert check_cpus(GUIDE, 6) == Check("CPUs", "ok", detail.format(6))


def test_meminfo_available_is_whole_mib_and_its_absence_is_said() -> None:
    assert parse_meminfo_available_mib("MemAvailable:   2047 kB\n") == 1
    assert parse_meminfo_available_mib("MemAvailable:   2048 kB\n") == 2
    with pytest.raises(ValueError, match=r"^no MemAvailable line in /proc/meminfo$"):
        parse_meminfo_available_mib("MemTotal: 1 kB\nXMemAvailable: 5 kB\n")


ALIYUN = "https://mirrors.aliyun.com"


def test_every_endpoint_of_the_guide_lab_in_order_with_where_the_lab_names_it() -> None:
    # the values of labs/guide-centos7.yaml, written out
    assert lab_endpoints(GUIDE, manifest_cached=True) == [
        Endpoint("vm.box", "https://vagrantcloud.com/centos/7", "url"),
        Endpoint(
            "os.vault_url",
            f"{ALIYUN}/centos-vault/7.9.2009/os/x86_64/repodata/repomd.xml",
            "yum-repo",
        ),
        Endpoint(
            "pod_network.flannel.manifest_url",
            "https://raw.githubusercontent.com/flannel-io/flannel/v0.14.0/Documentation/"
            "kube-flannel.yml",
            "url",
            optional=True,
        ),
        Endpoint(
            "kubernetes.repo.baseurl",
            f"{ALIYUN}/kubernetes/yum/repos/kubernetes-el7-x86_64/repodata/repomd.xml",
            "yum-repo",
        ),
        Endpoint("kubernetes.repo.gpgkeys[0]", f"{ALIYUN}/kubernetes/yum/doc/yum-key.gpg", "url"),
        Endpoint(
            "kubernetes.repo.gpgkeys[1]", f"{ALIYUN}/kubernetes/yum/doc/rpm-package-key.gpg", "url"
        ),
        Endpoint(
            "kubernetes.docker.repo.baseurl",
            f"{ALIYUN}/docker-ce/linux/centos/7/x86_64/stable/repodata/repomd.xml",
            "yum-repo",
        ),
        Endpoint(
            "kubernetes.docker.repo.gpgkeys[0]", f"{ALIYUN}/docker-ce/linux/centos/gpg", "url"
        ),
        Endpoint(
            "pod_network.flannel.mirror_image, kubernetes.e2e_images.busybox.image, "
            "kubernetes.e2e_images.nginx.image",
            "https://registry-1.docker.io/v2/",
            "registry",
        ),
        Endpoint("kubernetes.e2e_images.echo.image", "https://registry.k8s.io/v2/", "registry"),
        Endpoint("kubernetes.image_repository", "https://registry.aliyuncs.com/v2/", "registry"),
    ]
    assert lab_endpoints(CI) == []  # its box is built here, it pulls nothing


def test_a_box_url_alternatives_mirrors_an_http_key_and_an_unmirrored_flannel() -> None:
    k8s = GUIDE.kubernetes
    flannel = GUIDE.pod_network.flannel
    assert k8s is not None
    assert flannel is not None
    repo = dataclasses.replace(
        k8s.repo,
        alternatives=("https://alt.example/k8s/", "https://alt2.example/k8s"),
        gpgkeys=("file:///etc/k.gpg", "http://keys.example/k.gpg"),
    )
    docker = dataclasses.replace(
        k8s.docker, registry_mirrors=("https://hub.example/", "https://hub2.example")
    )
    lab = dataclasses.replace(
        GUIDE,
        vm=dataclasses.replace(GUIDE.vm, box_url="https://boxes.example/c7.box"),
        os=dataclasses.replace(GUIDE.os, gpgkey_url="http://keys.example/os.gpg"),
        kubernetes=dataclasses.replace(k8s, repo=repo, docker=docker),
        pod_network=dataclasses.replace(
            GUIDE.pod_network, flannel=dataclasses.replace(flannel, mirror_image="")
        ),
    )
    found = lab_endpoints(lab)
    assert found[0] == Endpoint("vm.box_url", "https://boxes.example/c7.box", "url")
    assert Endpoint("os.gpgkey_url", "http://keys.example/os.gpg", "url") in found
    assert [e for e in found if e.field.startswith("kubernetes.repo.")] == [
        Endpoint("kubernetes.repo.baseurl", repo.baseurl + "repodata/repomd.xml", "yum-repo"),
        Endpoint(
            "kubernetes.repo.alternatives[0]",
            "https://alt.example/k8s/repodata/repomd.xml",
            "yum-repo",
        ),
        Endpoint(
            "kubernetes.repo.alternatives[1]",
            "https://alt2.example/k8s/repodata/repomd.xml",
            "yum-repo",
        ),
        Endpoint("kubernetes.repo.gpgkeys[1]", "http://keys.example/k.gpg", "url"),
    ]
    assert [e for e in found if "registry_mirrors" in e.field] == [
        Endpoint("kubernetes.docker.registry_mirrors[0]", "https://hub.example/v2/", "registry"),
        Endpoint("kubernetes.docker.registry_mirrors[1]", "https://hub2.example/v2/", "registry"),
    ]
    assert Endpoint("pod_network.flannel.image", "https://quay.io/v2/", "registry") in found
    (manifest,) = [e for e in found if e.field == "pod_network.flannel.manifest_url"]
    assert manifest.optional is False  # not cached here


def test_localhost_is_a_registry_host_when_it_leads_a_reference() -> None:
    assert registry_of("localhost/busybox:1.28") == "localhost"
    assert registry_of("library/busybox:1.28") == DOCKER_HUB


def test_an_https_or_http_gpg_key_of_the_os_is_checked_and_a_local_file_is_not() -> None:
    def os_key(url: str) -> list[Endpoint]:
        lab = dataclasses.replace(GUIDE, os=dataclasses.replace(GUIDE.os, gpgkey_url=url))
        return [e for e in lab_endpoints(lab) if e.field == "os.gpgkey_url"]

    https = "https://vault.centos.org/RPM-GPG-KEY-CentOS-7"
    assert os_key(https) == [Endpoint("os.gpgkey_url", https, "url")]
    http = "http://mirror.centos.org/centos/RPM-GPG-KEY-CentOS-7"
    assert os_key(http) == [Endpoint("os.gpgkey_url", http, "url")]
    assert os_key("file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7") == []


def test_only_the_trailing_slash_of_a_base_url_is_dropped() -> None:
    """A path that ends in a capital X keeps it: what is stripped is the slash, not letters."""
    k8s = GUIDE.kubernetes
    assert k8s is not None
    lab = dataclasses.replace(
        GUIDE,
        os=dataclasses.replace(GUIDE.os, vault_url="https://mirror.example/vault/EL7-X/"),
        kubernetes=dataclasses.replace(
            k8s,
            repo=dataclasses.replace(k8s.repo, baseurl="https://mirror.example/k8s/EL7-X/"),
            docker=dataclasses.replace(
                k8s.docker, registry_mirrors=("https://mirror.example/hub-X/",)
            ),
        ),
    )
    urls = {e.field: e.url for e in lab_endpoints(lab)}
    assert urls["os.vault_url"] == (
        "https://mirror.example/vault/EL7-X/os/x86_64/repodata/repomd.xml"
    )
    assert urls["kubernetes.repo.baseurl"] == (
        "https://mirror.example/k8s/EL7-X/repodata/repomd.xml"
    )
    assert urls["kubernetes.docker.registry_mirrors[0]"] == "https://mirror.example/hub-X/v2/"
