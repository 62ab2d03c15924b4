"""The preflight checks the pins, not only that hosts answer: each pinned rpm in its
repository's metadata (repomd.xml -> primary), each pinned image tag in its registry (manifest
HEAD, anonymous token flow). Parsers fed with metadata shaped as createrepo writes it
(tests/data/pins/SOURCES.md); the HTTP side against a fake repository and registry this test
serves on 127.0.0.1. No test contacts any other host."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import http.server
import json
import lzma
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app import preflight as pf
from lab.adapters.netprobe import HttpClient
from lab.hosts.hostcheck import DOCKER_HUB, Check
from lab.hosts.hypervisor import HostFacts
from lab.hosts.pins import (
    KUBEADM_COMPONENTS,
    MANIFEST_ACCEPT,
    Challenge,
    RepoPins,
    RpmPackage,
    RpmPin,
    check_repo_pins,
    decompress,
    image_pins,
    judge_rpm_pin,
    kubeadm_images,
    parse_bearer_challenge,
    parse_image_reference,
    parse_primary,
    parse_repomd,
    parse_token,
    pin_count,
    repo_pins,
    token_url,
)
from lab.model.labfile import load_lab
from provision import el7

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "pins"
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
K8S_PRIMARY = (DATA / "primary-kubernetes-el7.xml").read_bytes()
DOCKER_PRIMARY = (DATA / "primary-docker-ce.xml").read_bytes()
KUBE_REPO = repo_pins(GUIDE)[0]


# --- what the lab pins -----------------------------------------------------------------------


def test_the_rpm_pins_are_the_ones_provisioning_installs() -> None:
    kubernetes, docker = repo_pins(GUIDE)
    assert {p.name: f"{p.version}-{p.release}" for p in kubernetes.pins} == el7.k8s_packages(GUIDE)
    assert {p.name: p.version for p in docker.pins} == el7.docker_packages(GUIDE)
    assert kubernetes.urls == (GUIDE.kubernetes.repo.baseurl,)  # type: ignore[union-attr]
    assert [p.spec for p in kubernetes.pins] == [
        "kubelet-1.18.1-0",
        "kubeadm-1.18.1-0",
        "kubectl-1.18.1-0",
        "kubernetes-cni-0.8.7-0",
        "cri-tools-1.13.0-0",
    ]
    assert [p.spec for p in docker.pins] == [
        "docker-ce-19.03.15",
        "docker-ce-cli-19.03.15",
        "containerd.io-1.4.3",
    ]


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag"),
    [
        ("nginx:1.19", DOCKER_HUB, "library/nginx", "1.19"),
        ("busybox", DOCKER_HUB, "library/busybox", "latest"),
        (
            "rancher/mirrored-coreos-flannel:v0.14.0",
            DOCKER_HUB,
            "rancher/mirrored-coreos-flannel",
            "v0.14.0",
        ),
        ("docker.io/flannel/flannel:v0.22.0", DOCKER_HUB, "flannel/flannel", "v0.22.0"),
        ("quay.io/coreos/flannel:v0.14.0", "quay.io", "coreos/flannel", "v0.14.0"),
        (
            "registry.k8s.io/e2e-test-images/agnhost:2.21",
            "registry.k8s.io",
            "e2e-test-images/agnhost",
            "2.21",
        ),
        ("localhost:5000/netlab/echo", "localhost:5000", "netlab/echo", "latest"),
    ],
)
def test_an_image_reference_names_its_registry_repository_and_tag(
    reference: str, registry: str, repository: str, tag: str
) -> None:
    pin = parse_image_reference("f", reference)
    assert (pin.registry, pin.repository, pin.tag) == (registry, repository, tag)


def test_the_guide_labs_images_are_the_pulled_ones_and_kubeadms_seven() -> None:
    refs = [p.reference for p in image_pins(GUIDE)]
    assert refs[:4] == [
        "rancher/mirrored-coreos-flannel:v0.14.0",  # the mirror, not quay.io: what is pulled
        "busybox:1.28",
        "nginx:1.19",
        "registry.k8s.io/e2e-test-images/agnhost:2.21",
    ]
    repo = "registry.aliyuncs.com/google_containers"
    assert refs[4:] == [
        *(f"{repo}/{c}:v1.18.1" for c in KUBEADM_COMPONENTS),
        f"{repo}/pause:3.2",
        f"{repo}/etcd:3.4.3-0",
        f"{repo}/coredns:1.6.7",
    ]
    assert kubeadm_images("1.19.0", "r") == tuple(f"r/{c}:v1.19.0" for c in KUBEADM_COMPONENTS)
    assert pin_count(GUIDE) == 8 + 11


# --- repository metadata ---------------------------------------------------------------------


def test_repomd_names_the_primary_metadata() -> None:
    href = parse_repomd((DATA / "repomd-kubernetes-el7.xml").read_bytes())
    assert href.startswith("repodata/0e1c5e3e")
    assert href.endswith("-primary.xml.gz")
    assert parse_repomd((DATA / "repomd-docker-ce.xml").read_bytes()).endswith(".xml.bz2")
    with pytest.raises(ValueError, match="names no primary"):
        parse_repomd(b'<repomd xmlns="http://linux.duke.edu/metadata/repo"/>')
    with pytest.raises(ValueError, match=r"repomd\.xml is not XML"):
        parse_repomd(b"<html>404 Not Found")


def test_primary_lists_every_package_with_its_version_and_release() -> None:
    packages = parse_primary(K8S_PRIMARY)
    assert len(packages) == 15
    assert RpmPackage("kubelet", "x86_64", "1.18.1", "0") in packages
    docker = parse_primary(DOCKER_PRIMARY)
    assert RpmPackage("containerd.io", "x86_64", "1.4.3", "3.2.el7") in docker


@pytest.mark.parametrize(
    ("href", "pack"),
    [
        ("x-primary.xml.gz", gzip.compress),
        ("x-primary.xml.bz2", bz2.compress),
        ("x-primary.xml.xz", lzma.compress),
        ("x-primary.xml", lambda data: data),
    ],
)
def test_primary_metadata_in_each_compression_yum_writes(href: str, pack: Any) -> None:
    assert decompress(href, pack(K8S_PRIMARY)) == K8S_PRIMARY


def test_an_unreadable_compression_is_said_not_guessed() -> None:
    with pytest.raises(
        ValueError, match=r"x-primary\.xml\.zst: a compression this check cannot read"
    ):
        decompress("x-primary.xml.zst", b"\x28\xb5\x2f\xfd")
    with pytest.raises(ValueError, match=r"x-primary\.xml\.gz: cannot decompress"):
        decompress("x-primary.xml.gz", b"not gzip")


def test_a_pin_in_the_metadata_is_ok_and_a_missing_one_says_what_there_is() -> None:
    packages = parse_primary(K8S_PRIMARY)
    ok = judge_rpm_pin(
        KUBE_REPO, RpmPin("kubernetes.version", "kubelet", "1.18.1", "0"), packages, "X"
    )
    assert ok == Check("pin kubernetes.version: kubelet-1.18.1-0", "ok", "in X")
    missing = judge_rpm_pin(
        KUBE_REPO, RpmPin("kubernetes.version", "kubelet", "1.18.3", "0"), packages, "X"
    )
    assert missing.status == "missing"
    assert missing.detail == "not in X: it has 1.18.0-0, 1.18.1-0, 1.18.2-0 (of 4)"
    assert "kubernetes.repo.alternatives" in missing.fix
    none = judge_rpm_pin(KUBE_REPO, RpmPin("f", "kubernetes-cni-plugins", "1.0.0"), packages, "X")
    assert none.detail == "not in X: no kubernetes-cni-plugins at all"
    any_release = RpmPin("kubernetes.docker.containerd_version", "containerd.io", "1.4.3")
    docker = parse_primary(DOCKER_PRIMARY)
    assert judge_rpm_pin(KUBE_REPO, any_release, docker, "X").status == "ok"


# --- registry answers ------------------------------------------------------------------------


def test_docker_hubs_and_quays_challenges_and_what_is_no_bearer_challenge() -> None:
    hub = parse_bearer_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert hub == Challenge(
        "https://auth.docker.io/token", "registry.docker.io", "repository:library/nginx:pull"
    )
    assert token_url(hub, "library/nginx") == (
        "https://auth.docker.io/token?service=registry.docker.io&"
        "scope=repository%3Alibrary%2Fnginx%3Apull"
    )
    quay = parse_bearer_challenge('Bearer realm="https://quay.io/v2/auth",service="quay.io"')
    assert quay == Challenge("https://quay.io/v2/auth", "quay.io")
    assert parse_bearer_challenge('Basic realm="Registry Realm"') is None
    assert parse_bearer_challenge("Bearer service=x") is None, "no realm to ask"
    assert parse_bearer_challenge("") is None


def test_the_token_is_read_from_either_field_name() -> None:
    assert parse_token(b'{"token": "abc", "expires_in": 300}') == "abc"
    assert parse_token(b'{"access_token": "xyz"}') == "xyz"
    for bad in (b"<html>", b"{}", b'{"token": ""}', b"[]"):
        with pytest.raises(ValueError, match="token endpoint"):
            parse_token(bad)


# --- against a fake repository and registry on loopback -------------------------------------

TOKEN = "tok-9f8e7d6c5b4a-not-to-be-shown"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


class FakeMirrors(http.server.BaseHTTPRequestHandler):
    """Yum repositories (`/k8s/`, `/docker/`; `/gone/` answers 404) and a v2 registry that
    asks for an anonymous token (`/v2/...` HEAD, `/token` GET); `public/` repositories need
    none. It records every request."""

    files: dict[str, bytes] = {}
    tags: set[tuple[str, str]] = set()
    seen: list[tuple[str, str, dict[str, str]]] = []

    def _record(self) -> None:
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

    def do_GET(self) -> None:
        self._record()
        url = urlsplit(self.path)
        if url.path == "/token":
            query = parse_qs(url.query)
            assert query["service"] == ["registry.docker.io"]
            body = json.dumps({"token": TOKEN, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        elif url.path in self.files:
            body = self.files[url.path]
            self.send_response(200)
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._record()
        parts = self.path.split("/")  # /v2/<repo...>/manifests/<tag>
        repo, tag = "/".join(parts[2:-2]), parts[-1]
        public = repo.startswith("public/")
        if not public and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{realm}",service="registry.docker.io",'
                f'scope="repository:{repo}:pull"',
            )
        elif (repo, tag) in self.tags and MANIFEST_LIST in self.headers.get("Accept", ""):
            self.send_response(200)
            self.send_header("Content-Type", MANIFEST_LIST)
            self.send_header("Docker-Content-Digest", "sha256:" + "ab" * 32)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 64  # the checks connect side by side: no SYN waits out a full backlog


@pytest.fixture
def mirrors(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    k8s_href = parse_repomd((DATA / "repomd-kubernetes-el7.xml").read_bytes())
    docker_href = parse_repomd((DATA / "repomd-docker-ce.xml").read_bytes())
    FakeMirrors.files = {
        "/k8s/repodata/repomd.xml": (DATA / "repomd-kubernetes-el7.xml").read_bytes(),
        f"/k8s/{k8s_href}": gzip.compress(K8S_PRIMARY),
        "/docker/repodata/repomd.xml": (DATA / "repomd-docker-ce.xml").read_bytes(),
        f"/docker/{docker_href}": bz2.compress(DOCKER_PRIMARY),
    }
    FakeMirrors.tags = {
        ("rancher/mirrored-coreos-flannel", "v0.14.0"),
        ("library/busybox", "1.28"),
        ("library/nginx", "1.19"),
        ("public/e2e-test-images/agnhost", "2.21"),
        *((f"public/google_containers/{c}", "v1.18.1") for c in KUBEADM_COMPONENTS),
        ("public/google_containers/pause", "3.2"),
        ("public/google_containers/etcd", "3.4.3-0"),
        # coredns:1.6.7 is missing from this mirror
    }
    FakeMirrors.seen = []
    server = Server(("127.0.0.1", 0), FakeMirrors)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def loopback_lab(base: str) -> Any:
    """The guide lab with its repositories on the fake (the baseurl gone, the copy answering)
    and its non-Docker-Hub registries under `public/` of the fake registry."""
    k8s = GUIDE.kubernetes
    assert k8s is not None
    repo = dataclasses.replace(k8s.repo, baseurl=f"{base}/gone/", alternatives=(f"{base}/k8s/",))
    docker = dataclasses.replace(
        k8s.docker, repo=dataclasses.replace(k8s.docker.repo, baseurl=f"{base}/docker/")
    )
    images = dataclasses.replace(
        k8s.e2e_images,
        echo=dataclasses.replace(
            k8s.e2e_images.echo, image="registry.example/public/e2e-test-images/agnhost:2.21"
        ),
    )
    return dataclasses.replace(
        GUIDE,
        kubernetes=dataclasses.replace(
            k8s,
            repo=repo,
            docker=docker,
            e2e_images=images,
            image_repository="registry.example/public/google_containers",
        ),
    )


def test_the_pins_are_checked_in_the_repositories_and_registries(mirrors: str) -> None:
    lab = loopback_lab(mirrors)
    checks = pf.pin_checks(lab, HttpClient(), 5.0, base_for=lambda host: mirrors)
    by_name = {c.name: c for c in checks}
    assert len(checks) == pin_count(lab)
    kubelet = by_name["pin kubernetes.version: kubelet-1.18.1-0"]
    assert kubelet.status == "ok"
    assert kubelet.detail.startswith(f"in {mirrors}/k8s/repodata/0e1c5e3e"), "the alternative"
    assert by_name["pin kubernetes.docker.containerd_version: containerd.io-1.4.3"].status == "ok"
    nginx = by_name["pin kubernetes.e2e_images.nginx.image: nginx:1.19"]
    assert nginx == Check(
        nginx.name,
        "ok",
        f"{DOCKER_HUB}: manifest list sha256:{'ab' * 32}, anonymous token",
    )
    coredns = by_name[
        "pin kubernetes.image_repository: registry.example/public/google_containers/coredns:1.6.7"
    ]
    assert coredns.status == "missing"
    assert coredns.detail == (
        "registry.example has no public/google_containers/coredns:1.6.7 (HTTP 404)"
    )
    assert [c.name for c in checks if c.status != "ok"] == [coredns.name]
    assert all(TOKEN not in f"{c.detail} {c.fix}" for c in checks), "the token is never shown"


def test_manifests_are_asked_with_head_accepting_lists_and_the_token_per_repository(
    mirrors: str,
) -> None:
    lab = loopback_lab(mirrors)
    pf.pin_checks(lab, HttpClient(), 5.0, base_for=lambda host: mirrors)
    heads = [(path, h) for method, path, h in FakeMirrors.seen if method == "HEAD"]
    assert heads
    assert all(h["accept"] == MANIFEST_ACCEPT for _, h in heads)
    assert not [p for m, p, _ in FakeMirrors.seen if m == "GET" and "/manifests/" in p]
    scopes = sorted(
        parse_qs(urlsplit(p).query)["scope"][0]
        for m, p, _ in FakeMirrors.seen
        if m == "GET" and p.startswith("/token")
    )
    assert scopes == [
        "repository:library/busybox:pull",
        "repository:library/nginx:pull",
        "repository:rancher/mirrored-coreos-flannel:pull",
    ]


def test_a_missing_version_a_missing_tag_and_an_unreadable_repository_are_each_named(
    mirrors: str,
) -> None:
    lab = loopback_lab(mirrors)
    k8s = lab.kubernetes
    lab = dataclasses.replace(
        lab,
        kubernetes=dataclasses.replace(
            k8s,
            version="1.18.3",
            e2e_images=dataclasses.replace(
                k8s.e2e_images, nginx=dataclasses.replace(k8s.e2e_images.nginx, image="nginx:1.91")
            ),
            docker=dataclasses.replace(
                k8s.docker,
                repo=dataclasses.replace(k8s.docker.repo, baseurl=f"{mirrors}/nowhere/"),
            ),
        ),
    )
    checks = {c.name: c for c in pf.pin_checks(lab, HttpClient(), 5.0, lambda host: mirrors)}
    kubelet = checks["pin kubernetes.version: kubelet-1.18.3-0"]
    assert kubelet.status == "missing"
    assert kubelet.detail.endswith(": it has 1.18.0-0, 1.18.1-0, 1.18.2-0 (of 4)")
    nginx = checks["pin kubernetes.e2e_images.nginx.image: nginx:1.91"]
    assert (nginx.status, nginx.detail) == (
        "missing",
        f"{DOCKER_HUB} has no library/nginx:1.91 (HTTP 404, anonymous token)",
    )
    assert "kubernetes.e2e_images.nginx.mirror" in nginx.fix
    docker = checks["pins of kubernetes.docker.repo"]
    assert docker.status == "missing"
    assert f"{mirrors}/nowhere/repodata/repomd.xml: HTTP 404" in docker.detail
    assert "docker-ce-19.03.15, docker-ce-cli-19.03.15, containerd.io-1.4.3 unchecked" in (
        docker.detail
    )


def test_docker_hub_images_are_checked_at_the_registry_mirror_the_nodes_use(
    mirrors: str,
) -> None:
    lab = loopback_lab(mirrors)
    k8s = lab.kubernetes
    docker = dataclasses.replace(k8s.docker, registry_mirrors=(f"{mirrors}/",))
    lab = dataclasses.replace(lab, kubernetes=dataclasses.replace(k8s, docker=docker))
    nowhere = "http://127.0.0.1:9"  # Docker Hub itself must not be asked: the discard port

    def base_for(host: str) -> str:
        return nowhere if host == DOCKER_HUB else mirrors

    checks = pf.pin_checks(lab, HttpClient(), 5.0, base_for)
    (busybox,) = [c for c in checks if c.name.endswith(": busybox:1.28")]
    assert busybox.status == "ok"
    assert busybox.detail.startswith(f"{mirrors}: manifest list")
    assert not [p for _, p, _ in FakeMirrors.seen if ":9/" in p]


def test_preflight_without_network_answers_within_seconds_and_counts_the_pins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoHttp:
        def __init__(self) -> None:
            raise AssertionError("--no-network makes no request")

    monkeypatch.setattr("lab.adapters.netprobe.HttpClient", NoHttp)
    monkeypatch.setattr(pf, "libvirt_network_xmls", lambda: None)
    monkeypatch.setattr("lab.adapters.host.probe_host_facts", lambda: HostFacts(True, True, True))
    start = time.monotonic()
    checks = pf.gather(GUIDE, network=False, timeout=5.0)
    assert time.monotonic() - start < 5
    assert checks[-1] == Check(
        "network",
        "skipped",
        "--no-network: 11 URL(s) and registries, 19 pinned package(s) and image(s) unchecked",
    )


def test_a_repository_that_answers_nothing_is_one_line_not_one_per_pin() -> None:
    class Down:
        def request(self, *args: object) -> Any:
            raise OSError("connection refused")

    repo = RepoPins("kubernetes.repo", ("https://a/", "https://b/"), KUBE_REPO.pins)
    (check,) = check_repo_pins(repo, Down(), 1.0)
    assert check.name == "pins of kubernetes.repo"
    assert check.status == "missing"
    assert "https://a/: connection refused; https://b/: connection refused" in check.detail
