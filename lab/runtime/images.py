"""The lab's container images, as data (pure): which Debian 12 packages make each layer, what
each image runs, their references, and the input key their cache is named by.

Built offline from Debian packages only (lab/adapters/imagebuild.py): apt resolves each
layer's packages (recommends off; the tools that only maintainer scripts need are declared
installed, so neither they nor their dependencies come in), each .deb's files are unpacked
without running its scripts, docs and man pages dropped. Layers form a chain, so the images
share them and one archive holds all three:

    pause   catatonit (static; `catatonit -P` is a pause process)        -> image `pause`
    base    + libc, dash (/bin/sh), /etc/passwd, merged-/usr links
    socat   + socat                                                      -> image `echo`
    tools   + iproute2 (`ip`), ping, python3 (with its stdlib), busybox  -> image `client`
              (busybox's applets the scenarios call: readlink, sleep, timeout, ...)

`echo` answers every TCP connection on its port with the peer address it saw (`socat
TCP-LISTEN:PORT,fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR'`); `client` sleeps
(`catatonit -P`) and runs probes through ExecSync.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lab.runtime import oci

REGISTRY = "netlab.invalid"  # .invalid never resolves: a missing image cannot be pulled
SUITE = "bookworm"
ARCHITECTURE = "amd64"
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ECHO_PORT = 8080

# Needed only by maintainer scripts (which never run here): apt is told they are installed.
PRETEND_INSTALLED = ("dpkg", "debconf", "perl-base", "tar", "debianutils", "init-system-helpers")
# Not needed in a container: documentation, translations, bug-report and lintian hooks, glibc's
# iconv modules (UTF-8 and Latin-1 are built in; ~9 MiB), pydoc's topic texts.
DROP_PATHS = (
    "usr/lib/x86_64-linux-gnu/gconv",
    "usr/lib/python3.11/pydoc_data",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/bash-completion",
    "usr/share/zsh",
)

BASE_FILES = (
    oci.symlink("bin", "usr/bin"),
    oci.symlink("sbin", "usr/sbin"),
    oci.symlink("lib", "usr/lib"),
    oci.symlink("lib64", "usr/lib64"),
    oci.directory("dev"),
    oci.directory("etc"),
    oci.directory("proc", 0o555),
    oci.directory("root", 0o700),
    oci.directory("run"),
    oci.directory("sys", 0o555),
    oci.directory("tmp", 0o1777),
    oci.directory("var"),
    oci.directory("var/tmp", 0o1777),
    oci.file(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    ),
    oci.file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    oci.file("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"),
)


@dataclass(frozen=True)
class LayerSpec:
    name: str
    parent: str | None
    packages: tuple[str, ...]
    files: tuple[oci.Entry, ...] = ()


@dataclass(frozen=True)
class ImageSpec:
    name: str
    top_layer: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = (("PATH", PATH_ENV),)
    labels: tuple[tuple[str, str], ...] = field(default=())


def echo_server_args(port: int = ECHO_PORT) -> tuple[str, ...]:
    """The echo image's command for another port (a CRI container's `args`)."""
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not a TCP port")
    return ("socat", f"TCP-LISTEN:{port},fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR")


# busybox ships without its applet links (its postinst never runs here): the ones the suite's
# scenarios run in a client container (`readlink /proc/self/ns/net`, `timeout 5 socat ...`,
# the guide's busybox loop `sleep 1`), and a few a person debugging a pod reaches for
BUSYBOX_APPLETS = ("cat", "ls", "ps", "readlink", "sleep", "timeout", "wget")
TOOLS_FILES = tuple(oci.symlink(f"usr/bin/{applet}", "busybox") for applet in BUSYBOX_APPLETS)

LAYERS = (
    LayerSpec("pause", None, ("catatonit",)),
    LayerSpec("base", "pause", ("libc6", "dash"), BASE_FILES),
    LayerSpec("socat", "base", ("socat",)),
    LayerSpec(
        "tools",
        "socat",
        ("iproute2", "iputils-ping", "python3-minimal", "libpython3.11-stdlib", "busybox"),
        TOOLS_FILES,
    ),
)
IMAGES = (
    ImageSpec("pause", "pause", entrypoint=("/usr/bin/catatonit", "-P")),
    ImageSpec("echo", "socat", cmd=echo_server_args()),
    ImageSpec("client", "tools", cmd=("catatonit", "-P")),
)


def validate_specs(layers: Sequence[LayerSpec], images: Sequence[ImageSpec]) -> list[str]:
    """Problems with the image descriptions (never raises): unknown parents, cycles, names."""
    problems: list[str] = []
    by_name = {layer.name: layer for layer in layers}
    if len(by_name) != len(layers):
        problems.append("two layers share a name")
    for layer in layers:
        if layer.parent is not None and layer.parent not in by_name:
            problems.append(f"layer {layer.name}: parent {layer.parent!r} is not a layer")
        if not layer.packages and not layer.files:
            problems.append(f"layer {layer.name}: no packages and no files")
    for image in images:
        if image.top_layer not in by_name:
            problems.append(f"image {image.name}: layer {image.top_layer!r} is not a layer")
        if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*", image.name):
            problems.append(f"image {image.name!r}: use lowercase letters, digits and . _ -")
    if not problems:
        for layer in layers:
            try:
                chain(layers, layer.name)
            except ValueError as exc:
                problems.append(str(exc))
    return problems


def chain(layers: Sequence[LayerSpec], top: str) -> tuple[LayerSpec, ...]:
    """The layers of an image whose top layer is `top`, bottom first."""
    by_name = {layer.name: layer for layer in layers}
    out: list[LayerSpec] = []
    name: str | None = top
    while name is not None:
        if any(layer.name == name for layer in out):
            raise ValueError(f"layer {top}: its parents form a cycle through {name}")
        out.append(by_name[name])
        name = by_name[name].parent
    return tuple(reversed(out))


@dataclass(frozen=True)
class ImageSet:
    """The built images as provisioning and the drivers need them: the archive (a local path)
    and each image's reference."""

    archive: str
    refs: tuple[tuple[str, str], ...]

    def ref(self, name: str) -> str:
        found = dict(self.refs)
        if name not in found:
            raise KeyError(f"no image {name!r} in {self.archive}; images: {sorted(found)}")
        return found[name]


def image_refs(key: str) -> tuple[tuple[str, str], ...]:
    """(name, reference) of every image, sorted: what an archive built with `key` holds."""
    return tuple(sorted((image.name, image_ref(image.name, key)) for image in IMAGES))


def image_ref(name: str, key: str) -> str:
    """An image's reference: the name in the lab's registry, tagged with the inputs key."""
    return f"{REGISTRY}/{name}:{key[:12]}"


def inputs_key(sources: Mapping[str, bytes]) -> str:
    """sha256 over the files that define the images (this module, lab/runtime/oci.py, the builder),
    by name: a changed package list, command or builder means new images with a new tag."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name] + b"\0")
    return digest.hexdigest()


# --- apt: what the builder asks and how it reads the answers ---------------------------------


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs (`apt-cache show`, a dpkg status file) as dicts; continuation lines
    are joined to their field with newlines."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, ""
        elif line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            last = name.strip()
            current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def render_pretend_status(stanzas: Iterable[Mapping[str, str]]) -> str:
    """A dpkg status file declaring the given packages installed (their version and Provides,
    no dependencies), so apt neither installs them nor anything only they need."""
    out = []
    for stanza in stanzas:
        lines = [
            f"Package: {stanza['Package']}",
            "Status: install ok installed",
            f"Architecture: {stanza.get('Architecture', ARCHITECTURE)}",
            f"Version: {stanza['Version']}",
        ]
        if "Multi-Arch" in stanza:
            lines.append(f"Multi-Arch: {stanza['Multi-Arch']}")
        if "Provides" in stanza:
            lines.append(f"Provides: {stanza['Provides']}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


INST_LINE = re.compile(
    r"^Inst (?P<name>[a-z0-9][a-z0-9+.-]*)(?::\S+)? (?:\[[^]]*\] )?"
    r"\((?P<version>\S+) [^[]*\[(?P<arch>[a-z0-9-]+)\]\)"
)


@dataclass(frozen=True, order=True)
class Package:
    name: str
    version: str
    arch: str

    @property
    def deb_filename(self) -> str:
        """The file `apt-get download` writes (an epoch's ':' is written '%3a')."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"

    @property
    def pin(self) -> str:
        return f"{self.name}={self.version}"


def parse_simulated_install(text: str) -> dict[str, Package]:
    """`apt-get -s install ...` output -> every package it would install, by name
    ('Inst name (version release [arch])' lines)."""
    found: dict[str, Package] = {}
    for line in text.splitlines():
        match = INST_LINE.match(line)
        if match:
            found[match["name"]] = Package(match["name"], match["version"], match["arch"])
    return found


def render_sources(mirror: str, security_mirror: str, suite: str, keyring: str) -> str:
    """The private apt's sources.list (the same mirrors as box/build.sh)."""
    lines = [f"deb [signed-by={keyring}] {mirror} {suite} main"]
    if security_mirror:
        lines.append(f"deb [signed-by={keyring}] {security_mirror} {suite}-security main")
    return "\n".join(lines) + "\n"


def apt_options(root: str) -> tuple[str, ...]:
    """apt options for a private apt under `root` (lists, cache, status, sources): the host's
    own apt state and configuration are neither read nor changed."""
    settings = {
        "Dir::State": f"{root}/state",
        "Dir::State::status": f"{root}/state/status",
        "Dir::Cache": f"{root}/cache",
        "Dir::Etc::SourceList": f"{root}/sources.list",
        "Dir::Etc::SourceParts": f"{root}/empty",
        "Dir::Etc::Parts": f"{root}/empty",
        "Dir::Etc::Preferences": f"{root}/empty/preferences",
        "Dir::Etc::PreferencesParts": f"{root}/empty",
        "APT::Architecture": ARCHITECTURE,
        "APT::Architectures": ARCHITECTURE,
        "APT::Install-Recommends": "false",
        "APT::Install-Suggests": "false",
        "APT::Sandbox::User": "root",
        "Acquire::Languages": "none",
    }
    return tuple(arg for key, value in settings.items() for arg in ("-o", f"{key}={value}"))


def layer_packages(
    closures: Mapping[str, Mapping[str, Package]], layers: Sequence[LayerSpec]
) -> dict[str, tuple[Package, ...]]:
    """Each layer's own packages, sorted: its chain's closure minus its parent chain's.
    `closures[name]` is what apt installs for the packages of the chain ending at `name`."""
    own: dict[str, tuple[Package, ...]] = {}
    for layer in layers:
        below = closures[layer.parent] if layer.parent is not None else {}
        own[layer.name] = tuple(
            sorted(pkg for name, pkg in closures[layer.name].items() if name not in below)
        )
    return own


def deb_data_tar(deb: bytes) -> bytes:
    """The uncompressed file tree (data.tar) of a .deb: an `ar` archive whose members are
    debian-binary, control.tar.* and data.tar.{xz,gz} (what `dpkg-deb --fsys-tarfile` prints)."""
    if not deb.startswith(b"!<arch>\n"):
        raise ValueError("not a .deb (no ar archive header)")
    offset = 8
    while offset + 60 <= len(deb):
        header = deb[offset : offset + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        body = deb[offset + 60 : offset + 60 + size]
        if name == "data.tar":
            return body
        if name == "data.tar.xz":
            return lzma.decompress(body)
        if name == "data.tar.gz":
            return gzip.decompress(body)
        if name.startswith("data.tar."):
            raise ValueError(f"{name}: only xz, gz or uncompressed data members are supported")
        offset += 60 + size + (size % 2)  # members are 2-byte aligned
    raise ValueError("no data.tar member in the .deb")
