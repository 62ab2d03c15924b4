"""The pins a lab names, checked where its nodes will get them (pure: the requests are made by
an adapter passed in, lab.adapters.netprobe.HttpClient, or a test's loopback server).

- Each pinned rpm in its repository's metadata: `repodata/repomd.xml` names the primary
  metadata (`primary.xml.gz`, `.bz2`, `.xz` or plain), which lists every package's name, arch,
  version and release. The first URL of the repository (baseurl, then its alternatives) whose
  metadata answers is the one checked, as yum's failover would use it.
- Each pinned image tag in its registry: a manifest HEAD with the registry v2 API, accepting
  manifest lists and OCI indexes; where the registry answers 401 with a Bearer challenge, the
  anonymous token flow (a token from the challenge's realm for `repository:NAME:pull`), then
  the HEAD again with it. The token is never shown.

Each pin is one Check line (ok, or missing with what the repository or registry has and the
field to change)."""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import lzma
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from lab.hosts.hostcheck import DOCKER_HUB, DOCKER_HUB_NAMES, Check, pulled_images, registry_of
from lab.model.config import Lab

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
MAX_METADATA_BYTES = 64 * 1024 * 1024
MAX_TOKEN_BYTES = 64 * 1024
NODE_ARCHES = ("x86_64", "noarch")
# what a node's Docker accepts: manifest lists and OCI indexes first (multi-arch tags), then
# single manifests, then schema 1 (old tags on old registries)
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
)
# the images kubeadm 1.18 pulls besides its own four (cmd/kubeadm/app/constants: PauseVersion,
# DefaultEtcdVersion, CoreDNSVersion of v1.18)
KUBEADM_ADDONS = {"1.18": (("pause", "3.2"), ("etcd", "3.4.3-0"), ("coredns", "1.6.7"))}
KUBEADM_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


# --- what the lab pins ---------------------------------------------------------------------


@dataclass(frozen=True)
class RpmPin:
    field: str  # where the lab pins it
    name: str
    version: str
    release: str = ""  # "": any release (yum's NAME-VERSION)

    @property
    def spec(self) -> str:
        return f"{self.name}-{self.version}" + (f"-{self.release}" if self.release else "")


@dataclass(frozen=True)
class RepoPins:
    field: str  # the repository's field
    urls: tuple[str, ...]  # baseurl, then the alternatives, in yum's order
    pins: tuple[RpmPin, ...]


def _version_release(field: str, name: str, pinned: str) -> RpmPin:
    version, _, release = pinned.partition("-")
    return RpmPin(field, name, version, release)


def repo_pins(lab: Lab) -> tuple[RepoPins, ...]:
    """Every rpm the lab pins, by the repository it comes from (the vault has no pin)."""
    k8s = lab.kubernetes
    if k8s is None:
        return ()
    release = f"{k8s.version}-{k8s.package_release}"
    kubernetes = RepoPins(
        "kubernetes.repo",
        (k8s.repo.baseurl, *k8s.repo.alternatives),
        (
            *(
                _version_release("kubernetes.version", name, release)
                for name in ("kubelet", "kubeadm", "kubectl")
            ),
            _version_release(
                "kubernetes.cni_package_version", "kubernetes-cni", k8s.cni_package_version
            ),
            _version_release("kubernetes.cri_tools_version", "cri-tools", k8s.cri_tools_version),
        ),
    )
    docker = k8s.docker
    engine = (
        RpmPin("kubernetes.docker.version", "docker-ce", docker.version),
        RpmPin("kubernetes.docker.version", "docker-ce-cli", docker.version),
        RpmPin("kubernetes.docker.containerd_version", "containerd.io", docker.containerd_version),
    )
    repo = docker.repo
    return kubernetes, RepoPins(
        "kubernetes.docker.repo", (repo.baseurl, *repo.alternatives), engine
    )


@dataclass(frozen=True)
class ImagePin:
    field: str
    reference: str  # as a node pulls it
    registry: str  # the registry host (Docker Hub: registry-1.docker.io)
    repository: str  # the path in the registry (Docker Hub's official images under library/)
    tag: str


def parse_image_reference(field: str, reference: str) -> ImagePin:
    """`nginx:1.19` -> Docker Hub, library/nginx, 1.19; `quay.io/coreos/flannel:v0.14.0` ->
    quay.io, coreos/flannel, v0.14.0 (no tag: latest)."""
    registry = registry_of(reference)
    first, _, rest = reference.partition("/")
    named = registry != DOCKER_HUB or first in DOCKER_HUB_NAMES
    path = rest if named and rest else reference
    name, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if registry == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    return ImagePin(field, reference, registry, name, tag or "latest")


def kubeadm_images(version: str, repository: str) -> tuple[str, ...]:
    """The images `kubeadm config images pull` pulls: its four components at vVERSION and, for
    the versions known here, the pause, etcd and coredns images of that release."""
    minor = ".".join(version.split(".")[:2])
    components = tuple(f"{repository}/{c}:v{version}" for c in KUBEADM_COMPONENTS)
    return components + tuple(f"{repository}/{n}:{t}" for n, t in KUBEADM_ADDONS.get(minor, ()))


def image_pins(lab: Lab) -> tuple[ImagePin, ...]:
    """Every image a node pulls, as it pulls it (a mirror replaces its image)."""
    pins = [
        parse_image_reference(field, image)
        for field, image in pulled_images(lab)
        if field != "kubernetes.image_repository"
    ]
    if lab.kubernetes is not None:
        k8s = lab.kubernetes
        pins += [
            parse_image_reference("kubernetes.image_repository", image)
            for image in kubeadm_images(k8s.version, k8s.image_repository)
        ]
    return tuple(pins)


def pin_count(lab: Lab) -> int:
    return sum(len(r.pins) for r in repo_pins(lab)) + len(image_pins(lab))


# --- repository metadata -------------------------------------------------------------------


@dataclass(frozen=True)
class RpmPackage:
    name: str
    arch: str
    version: str
    release: str


def parse_repomd(xml: bytes) -> str:
    """`repodata/repomd.xml` -> the location of the primary metadata (relative to the repo)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"repomd.xml is not XML ({exc})") from None
    for data in root.iter(f"{REPO_NS}data"):
        if data.get("type") == "primary":
            location = data.find(f"{REPO_NS}location")
            href = location.get("href") if location is not None else None
            if href:
                return href
    raise ValueError("repomd.xml names no primary metadata (no <data type='primary'>)")


def decompress(href: str, data: bytes) -> bytes:
    """The primary metadata's bytes, by its file name's compression."""
    try:
        if href.endswith(".gz"):
            return gzip.decompress(data)
        if href.endswith(".bz2"):
            return bz2.decompress(data)
        if href.endswith(".xz"):
            return lzma.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise ValueError(f"{href}: cannot decompress ({exc})") from None
    if href.endswith(".xml"):
        return data
    raise ValueError(f"{href}: a compression this check cannot read (gz, bz2, xz or plain)")


def parse_primary(xml: bytes) -> tuple[RpmPackage, ...]:
    """primary.xml -> every package's name, arch, version and release."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"primary.xml is not XML ({exc})") from None
    packages = []
    for package in root.iter(f"{COMMON_NS}package"):
        version = package.find(f"{COMMON_NS}version")
        name = package.findtext(f"{COMMON_NS}name")
        if version is None or not name:
            raise ValueError("primary.xml: a <package> without a name or a version")
        packages.append(
            RpmPackage(
                name.strip(),
                (package.findtext(f"{COMMON_NS}arch") or "").strip(),
                version.get("ver", ""),
                version.get("rel", ""),
            )
        )
    return tuple(packages)


def _nearest(pin: RpmPin, packages: tuple[RpmPackage, ...]) -> str:
    """What the repository has of the package: the same minor version first, at most six."""
    have = sorted(
        {f"{p.version}-{p.release}" for p in packages if p.name == pin.name},
        key=lambda v: [int(n) if n.isdigit() else 0 for n in re.split(r"[.-]", v)],
    )
    if not have:
        return f"no {pin.name} at all"
    minor = ".".join(pin.version.split(".")[:2]) + "."
    close = [v for v in have if v.startswith(minor)] or have
    more = f" (of {len(have)})" if len(close) > 6 or len(close) < len(have) else ""
    return f"it has {', '.join(close[-6:])}{more}"


def judge_rpm_pin(
    repo: RepoPins, pin: RpmPin, packages: tuple[RpmPackage, ...], where: str
) -> Check:
    name = f"pin {pin.field}: {pin.spec}"
    found = any(
        p.name == pin.name
        and p.arch in NODE_ARCHES
        and p.version == pin.version
        and (not pin.release or p.release == pin.release)
        for p in packages
    )
    if found:
        return Check(name, "ok", f"in {where}")
    return Check(
        name,
        "missing",
        f"not in {where}: {_nearest(pin, packages)}",
        f"pin a version the repository carries ({pin.field}), or list a copy that has "
        f"{pin.spec} under {repo.field}.alternatives",
    )


# --- registry answers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    realm: str
    service: str = ""
    scope: str = ""


_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^\s,]+)')


def parse_bearer_challenge(header: str) -> Challenge | None:
    """`WWW-Authenticate: Bearer realm="...",service="...",scope="..."` (None: not a Bearer
    challenge, e.g. Basic, which wants credentials)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = {(m[1] or m[3]).lower(): m[2] if m[1] else m[4] for m in _PARAM.finditer(rest)}
    if not params.get("realm", "").startswith(("https://", "http://")):
        return None
    return Challenge(params["realm"], params.get("service", ""), params.get("scope", ""))


def token_url(challenge: Challenge, repository: str) -> str:
    query = {"scope": f"repository:{repository}:pull"}
    if challenge.service:
        query = {"service": challenge.service, **query}
    sep = "&" if "?" in challenge.realm else "?"
    return f"{challenge.realm}{sep}{urlencode(query)}"


def parse_token(body: bytes) -> str:
    """The token endpoint's JSON: `token` (Docker's) or `access_token` (OAuth2's)."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise ValueError("the token endpoint did not answer JSON") from None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise ValueError("the token endpoint answered no token")
    return token


MANIFEST_KINDS = {
    "application/vnd.docker.distribution.manifest.list.v2+json": "manifest list",
    "application/vnd.oci.image.index.v1+json": "OCI index",
    "application/vnd.docker.distribution.manifest.v2+json": "manifest",
    "application/vnd.oci.image.manifest.v1+json": "OCI manifest",
    "application/vnd.docker.distribution.manifest.v1+prettyjws": "schema 1 manifest",
}


# --- the checks, given an HTTP client ------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    url: str = ""  # where it came from after redirects ("" : the URL asked)


class Http(Protocol):
    """One HTTP request, its body read up to `limit` bytes; OSError when none is answered."""

    def request(
        self, method: str, url: str, headers: Mapping[str, str], timeout: float, limit: int
    ) -> Answer: ...


def _get(http: Http, url: str, timeout: float) -> bytes:
    answer = http.request("GET", url, {}, timeout, MAX_METADATA_BYTES)
    if answer.status != 200:
        raise ValueError(f"{url}: HTTP {answer.status}")
    return answer.body


def read_repository(http: Http, base: str, timeout: float) -> tuple[str, tuple[RpmPackage, ...]]:
    """(the primary metadata's URL, its packages) of the repository at `base`."""
    base = base.rstrip("/") + "/"
    href = parse_repomd(_get(http, base + "repodata/repomd.xml", timeout))
    url = base + href
    return url, parse_primary(decompress(href, _get(http, url, timeout)))


def check_repo_pins(repo: RepoPins, http: Http, timeout: float) -> list[Check]:
    """Each pin of `repo`, in the first of its URLs whose metadata can be read."""
    reasons = []
    for url in repo.urls:
        try:
            primary, packages = read_repository(http, url, timeout)
        except (OSError, ValueError) as exc:
            reasons.append(f"{url}: {exc}" if url not in str(exc) else str(exc))
            continue
        return [judge_rpm_pin(repo, pin, packages, primary) for pin in repo.pins]
    return [
        Check(
            f"pins of {repo.field}",
            "missing",
            f"cannot read the repository's metadata ({'; '.join(reasons)}); "
            f"{', '.join(p.spec for p in repo.pins)} unchecked",
            f"point {repo.field} at a mirror whose repodata/repomd.xml answers",
        )
    ]


def registry_base(host: str) -> str:
    return f"https://{host}"


def check_image_pin(
    pin: ImagePin,
    http: Http,
    timeout: float,
    base_for: Callable[[str], str] = registry_base,
    via: str = "",
) -> Check:
    """The pinned tag's manifest, HEAD at the registry (`via`: a registry mirror in front of
    Docker Hub, as the nodes' Docker uses it)."""
    name = f"pin {pin.field}: {pin.reference}"
    base = (via or base_for(pin.registry)).rstrip("/")
    where = via.rstrip("/") or pin.registry
    url = f"{base}/v2/{pin.repository}/manifests/{pin.tag}"
    fix = (
        f"pick a tag {where} has for {pin.repository}, or give the image a mirror that has it "
        f"({pin.field.rsplit('.', 1)[0]}.mirror or the registry_mirrors)"
    )
    headers = {"Accept": MANIFEST_ACCEPT}
    try:
        answer = http.request("HEAD", url, headers, timeout, 0)
        how = ""
        if answer.status == 401:
            challenge = parse_bearer_challenge(answer.headers.get("www-authenticate", ""))
            if challenge is None:
                return Check(
                    name,
                    "warn",
                    f"{where} wants credentials for {pin.repository}; not checked",
                    "the nodes pull anonymously: use a registry or mirror that allows it",
                )
            token = parse_token(
                http.request(
                    "GET", token_url(challenge, pin.repository), {}, timeout, MAX_TOKEN_BYTES
                ).body
            )
            again = answer.url or url
            answer = http.request(
                "HEAD", again, {**headers, "Authorization": f"Bearer {token}"}, timeout, 0
            )
            how = ", anonymous token"
    except (OSError, ValueError) as exc:
        return Check(name, "missing", f"{url}: {exc}", fix)
    if answer.status == 200:
        kind = answer.headers.get("content-type", "").split(";")[0].strip()
        digest = answer.headers.get("docker-content-digest", "")
        shown = MANIFEST_KINDS.get(kind, kind or "a manifest")
        return Check(name, "ok", f"{where}: {shown}{f' {digest}' if digest else ''}{how}")
    if answer.status in (401, 403, 404):
        return Check(
            name,
            "missing",
            f"{where} has no {pin.repository}:{pin.tag} (HTTP {answer.status}{how})",
            fix,
        )
    if answer.status == 429:
        return Check(name, "warn", f"{where}: rate limited (HTTP 429); not checked", fix)
    return Check(name, "warn", f"{where}: HTTP {answer.status} for {url}", fix)


def pin_jobs(
    lab: Lab, http: Http, timeout: float, base_for: Callable[[str], str] = registry_base
) -> Iterator[Callable[[], list[Check]]]:
    """One job per repository and per image (each makes its own requests; run them side by
    side): the rpm pins first, then the images."""
    for repo in repo_pins(lab):
        yield functools.partial(check_repo_pins, repo, http, timeout)
    k8s = lab.kubernetes
    mirror = k8s.docker.registry_mirrors[0] if k8s and k8s.docker.registry_mirrors else ""
    for pin in image_pins(lab):
        via = mirror if pin.registry == DOCKER_HUB else ""
        yield functools.partial(_one_image, pin, http, timeout, base_for, via)


def _one_image(
    pin: ImagePin, http: Http, timeout: float, base_for: Callable[[str], str], via: str
) -> list[Check]:
    return [check_image_pin(pin, http, timeout, base_for, via)]
