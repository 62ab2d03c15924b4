"""Build the lab's container images (lab/runtime/images.py) from Debian packages, offline
(the Debian mirror only), into one OCI image-layout archive for `ctr -n k8s.io images import`.

Cached like the box: under NETLAB_CACHE/images/<inputs key>/, where the key hashes the files
that define the images; downloaded .debs are kept in NETLAB_CACHE/images/debs between builds.
A private apt (its own lists, status and sources under a temporary directory) resolves the
packages; the host's apt state is not touched. Needs apt-get and apt-cache (any Debian or
Ubuntu host) and the Debian archive keyring; .debs are unpacked in Python, no root needed.

    python -m lab.adapters.imagebuild      # build (or reuse) and print the archive path
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.adapters.local import run
from lab.common import waits
from lab.common.errors import CommandFailed
from lab.model import paths
from lab.runtime import images, oci

log = logging.getLogger(__name__)

ARCHIVE = "netlab-images.oci.tar"
MANIFEST = "images.json"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# The files whose content defines the images: a change in any of them means new images.
SOURCES = (
    paths.REPO / "lab" / "runtime" / "images.py",
    paths.REPO / "lab" / "runtime" / "oci.py",
    Path(__file__),
)
APT_TIMEOUT_S = 300


@dataclass(frozen=True)
class BuiltImages:
    """The archive and what is in it: image name -> full reference (tagged with the key)."""

    archive: Path
    key: str
    refs: dict[str, str]
    size_bytes: int
    build_seconds: float

    def ref(self, name: str) -> str:
        return self.refs[name]

    def image_set(self) -> images.ImageSet:
        return images.ImageSet(str(self.archive), tuple(sorted(self.refs.items())))


def planned(key: str | None = None) -> images.ImageSet:
    """Where the archive for the current inputs is (or will be) and its references, without
    building: what a dry run (`python -m lab plan`) shows."""
    key = key or inputs_key()
    return images.ImageSet(str(images_dir(key) / ARCHIVE), images.image_refs(key))


def inputs_key() -> str:
    return images.inputs_key(
        {p.relative_to(paths.REPO).as_posix(): p.read_bytes() for p in SOURCES}
    )


def images_dir(key: str) -> Path:
    return paths.cache_root() / "images" / key[:16]


def mirrors() -> tuple[str, str]:
    """The Debian mirrors, from the same variables as box/build.sh."""
    mirror = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
    security = os.environ.get("DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
    return mirror, security


class PrivateApt:
    """apt-get/apt-cache with their own state under `root` (see images.apt_options)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("state/lists/partial", "cache/archives/partial", "empty"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "state" / "status").write_text("")
        mirror, security = mirrors()
        (root / "sources.list").write_text(
            images.render_sources(mirror, security, images.SUITE, KEYRING)
        )
        self.options = images.apt_options(str(root))

    def _run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        argv = (tool, *self.options, *args)
        return run(argv, timeout=APT_TIMEOUT_S, cwd=str(cwd) if cwd else None).stdout

    def update(self) -> None:
        def update_once() -> None:
            out = self._run("apt-get", "-q", "update")
            lists = self.root / "state" / "lists"
            if not any(lists.glob("*_Packages*")):  # apt-get says "W: Failed to fetch", exit 0
                raise CommandFailed(
                    f"apt-get update ({', '.join(mirrors())})",
                    0,
                    out,
                    "no package list fetched: does this process reach the mirror? (set "
                    "DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR to one it reaches)",
                )

        waits.retry_call(waits.PACKAGE_MIRROR, update_once, on=(CommandFailed,))

    def pretend_installed(self, names: Sequence[str]) -> None:
        """Declare `names` installed (at the mirror's version) in the private status file."""
        shown = images.parse_stanzas(self._run("apt-cache", "show", "--no-all-versions", *names))
        (self.root / "state" / "status").write_text(images.render_pretend_status(shown))

    def closure(self, names: Sequence[str]) -> dict[str, images.Package]:
        return images.parse_simulated_install(self._run("apt-get", "-s", "install", *names))

    def download(self, packages: Sequence[images.Package], into: Path) -> None:
        missing = [p for p in packages if not (into / p.deb_filename).is_file()]
        if not missing:
            return
        into.mkdir(parents=True, exist_ok=True)
        pins = [p.pin for p in missing]
        waits.retry_call(
            waits.DOWNLOAD,
            lambda: self._run("apt-get", "-q", "download", *pins, cwd=into),
            on=(CommandFailed,),
        )
        absent = [p.deb_filename for p in missing if not (into / p.deb_filename).is_file()]
        if absent:
            raise FileNotFoundError(f"apt-get download did not write {', '.join(absent)} in {into}")


def deb_entries(deb: Path) -> list[oci.Entry]:
    return oci.entries_from_tar(images.deb_data_tar(deb.read_bytes()), images.DROP_PATHS)


def resolve_layers(apt: PrivateApt) -> dict[str, tuple[images.Package, ...]]:
    closures: dict[str, dict[str, images.Package]] = {}
    for layer in images.LAYERS:
        roots = [name for spec in images.chain(images.LAYERS, layer.name) for name in spec.packages]
        closures[layer.name] = apt.closure(roots)
        missing = set(layer.packages) - set(closures[layer.name])
        if missing:
            raise RuntimeError(f"layer {layer.name}: apt would not install {sorted(missing)}")
    return images.layer_packages(closures, images.LAYERS)


def build_archive(
    key: str, debs: Path, work: Path
) -> tuple[bytes, dict[str, str], dict[str, object]]:
    problems = images.validate_specs(images.LAYERS, images.IMAGES)
    if problems:
        raise oci.ImageError("; ".join(problems))
    apt = PrivateApt(work / "apt")
    apt.update()
    apt.pretend_installed(images.PRETEND_INSTALLED)
    own = resolve_layers(apt)
    apt.download([pkg for pkgs in own.values() for pkg in pkgs], debs)
    built: dict[str, oci.Layer] = {}
    for spec in images.LAYERS:
        groups = [deb_entries(debs / pkg.deb_filename) for pkg in own[spec.name]]
        entries = oci.merge_entries([spec.files, *groups])
        names = " ".join(pkg.name for pkg in own[spec.name])
        built[spec.name] = oci.build_layer(entries, f"netlab layer {spec.name}: {names}".strip())
    refs: dict[str, str] = {}
    out: list[oci.Image] = []
    for image in images.IMAGES:
        layers = [built[spec.name] for spec in images.chain(images.LAYERS, image.top_layer)]
        config = oci.render_config(
            layers,
            entrypoint=image.entrypoint,
            cmd=image.cmd,
            env=dict(image.env),
            labels=dict(image.labels),
        )
        ref = images.image_ref(image.name, key)
        refs[image.name] = ref
        out.append(oci.build_image(ref, layers, config))
    report = {
        "layers": {
            name: {
                "packages": [pkg.pin for pkg in own[name]],
                "compressed_bytes": layer.blob.size,
                "digest": layer.blob.digest,
            }
            for name, layer in built.items()
        },
        "images": {image.ref: sum(layer.blob.size for layer in image.layers) for image in out},
    }
    return oci.archive_tar(oci.layout_members(out)), refs, report


def build(key: str | None = None) -> BuiltImages:
    """Build the images unless an archive for these inputs exists; return where it is."""
    key = key or inputs_key()
    target_dir = images_dir(key)
    archive, manifest = target_dir / ARCHIVE, target_dir / MANIFEST
    if archive.is_file() and manifest.is_file():
        meta = json.loads(manifest.read_text())
        return BuiltImages(archive, key, meta["refs"], archive.stat().st_size, meta["seconds"])
    start = time.monotonic()
    log.info("building container images from Debian packages (inputs %s)", key[:12])
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="netlab-images-") as tmp:
        data, refs, report = build_archive(key, paths.cache_root() / "images" / "debs", Path(tmp))
    seconds = round(time.monotonic() - start, 1)
    # the archive appears complete or not at all; the manifest last marks it finished
    partial = archive.with_name(f".{ARCHIVE}.{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, archive)
    manifest.write_text(
        json.dumps({"refs": refs, "seconds": seconds, **report}, indent=2, sort_keys=True) + "\n"
    )
    log.info("images built in %.0fs: %s (%d bytes)", seconds, archive, len(data))
    return BuiltImages(archive, key, refs, len(data), seconds)


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    built = build()
    print(
        json.dumps(
            {
                "archive": str(built.archive),
                "refs": built.refs,
                "bytes": built.size_bytes,
                "build_seconds": built.build_seconds,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
