"""OCI images as data (pure): layer entries, deterministic layer tars, the digest math, image
config / manifest / index JSON and the OCI image-layout archive that `ctr images import` reads.

Everything here is bytes in, bytes out: the same entries give the same layer digest, the same
image config, manifest and archive, on any machine (fixed mtimes, owners and member order,
gzip without a timestamp). Reading .deb files and writing the archive is the adapter's job
(lab/adapters/imagebuild.py).

References: OCI image spec v1.0 (image-layout.md, manifest.md, config.md, image-index.md,
layer.md); containerd's importer names an image after the index annotation
`io.containerd.image.name` (else `org.opencontainers.image.ref.name`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
# Every member of every layer gets this mtime (2023-06-10, Debian 12's release day): a layer's
# digest depends on its content only.
EPOCH = 1686355200
# Debian 12 is merged-/usr: /bin, /sbin and /lib* are symlinks into /usr. Packages still
# ship some files under the old paths (libc6: /lib64/ld-linux-x86-64.so.2); they are moved.
MERGED_USR_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

Kind = Literal["dir", "file", "symlink", "hardlink"]


class ImageError(Exception):
    """Layer contents that cannot be merged, or an image description that is not valid."""


@dataclass(frozen=True)
class Entry:
    """One member of a layer: `path` relative to the root, without a leading './' or '/'.
    `link` is a symlink's target as written, or a hard link's target path."""

    path: str
    kind: Kind
    mode: int
    data: bytes = b""
    link: str = ""

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/") or ".." in self.path.split("/"):
            raise ImageError(f"layer entry path {self.path!r} must be relative, without '..'")


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, "dir", mode)


def file(path: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(path, "file", mode, data.encode() if isinstance(data, str) else data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, "symlink", 0o777, link=target)


# --- digests and JSON ---------------------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """The one serialization of every JSON blob: sorted keys, no spaces (stable digests)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


# --- layer entries ------------------------------------------------------------------------


def member_path(name: str) -> str | None:
    """A tar member name as a layer path: './usr/bin/x' -> 'usr/bin/x', with merged-/usr
    ('./lib64/ld.so' -> 'usr/lib64/ld.so'); the root itself -> None."""
    path = name.strip("/")
    while path.startswith("./"):
        path = path[2:]
    path = path.strip("/")
    if path in ("", "."):
        return None
    top, _, rest = path.partition("/")
    if top in MERGED_USR_DIRS:
        return f"usr/{top}/{rest}" if rest else f"usr/{top}"
    return path


def dropped(path: str, drop: Sequence[str]) -> bool:
    """True when `path` is one of the `drop` prefixes or lies below one (docs, man pages)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in drop)


def entries_from_tar(data: bytes, drop: Sequence[str] = ()) -> list[Entry]:
    """The members of an uncompressed tar (a .deb's `dpkg-deb --fsys-tarfile`) as entries,
    merged-/usr applied, the `drop` prefixes left out. Owners and mtimes are not kept."""
    entries: list[Entry] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            path = member_path(member.name)
            if path is None or dropped(path, drop):
                continue
            mode = member.mode & 0o7777
            if member.isdir():
                entries.append(Entry(path, "dir", mode))
            elif member.isreg():
                stream = tar.extractfile(member)
                entries.append(Entry(path, "file", mode, stream.read() if stream else b""))
            elif member.issym():
                entries.append(Entry(path, "symlink", 0o777, link=member.linkname))
            elif member.islnk():
                target = member_path(member.linkname)
                if target is None or dropped(target, drop):
                    raise ImageError(f"hard link {path} -> {member.linkname}: target dropped")
                entries.append(Entry(path, "hardlink", mode, link=target))
            else:
                raise ImageError(f"{member.name}: device or fifo members are not supported")
    return entries


def _sort_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def merge_entries(groups: Iterable[Iterable[Entry]]) -> list[Entry]:
    """One layer from several packages' entries: a directory listed by many packages once (the
    first mode wins), the same file twice only if identical; parents before children. Missing
    parent directories are added (0755)."""
    merged: dict[str, Entry] = {}
    for group in groups:
        for entry in group:
            seen = merged.get(entry.path)
            if seen is None:
                merged[entry.path] = entry
            elif seen.kind == "dir" and entry.kind == "dir":
                continue
            elif seen != entry:
                raise ImageError(
                    f"{entry.path}: two different {seen.kind}/{entry.kind} entries in one layer"
                )
    for path in list(merged):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in merged:
                merged[parent] = directory(parent)
            elif merged[parent].kind != "dir":
                raise ImageError(f"{path}: its parent {parent} is a {merged[parent].kind}")
    return [merged[p] for p in sorted(merged, key=_sort_key)]


def layer_tar(entries: Sequence[Entry]) -> bytes:
    """A deterministic uncompressed layer tar: root-owned, every mtime EPOCH, PAX format."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path + ("/" if entry.kind == "dir" else ""))
            info.mode = entry.mode
            info.mtime = EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "file":
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.link
                tar.addfile(info)
            else:
                info.type = tarfile.LNKTYPE
                info.linkname = entry.link
                tar.addfile(info)
    return out.getvalue()


def gzip_layer(tar: bytes, level: int = 6) -> bytes:
    """gzip without a timestamp or file name, so equal tars give equal blobs."""
    return gzip.compress(tar, compresslevel=level, mtime=0)


# --- image config, manifest, index ----------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A built layer: its uncompressed tar's digest (the config's diff_id) and the blob."""

    diff_id: str
    blob: Blob
    created_by: str


def build_layer(entries: Sequence[Entry], created_by: str) -> Layer:
    tar = layer_tar(entries)
    return Layer(sha256_digest(tar), Blob(MEDIA_LAYER_GZIP, gzip_layer(tar)), created_by)


def render_config(
    layers: Sequence[Layer],
    *,
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    working_dir: str = "/",
    labels: Mapping[str, str] | None = None,
    architecture: str = "amd64",
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Env": [f"{k}={v}" for k, v in (env or {}).items()],
        "WorkingDir": working_dir,
    }
    if entrypoint:
        config["Entrypoint"] = list(entrypoint)
    if cmd:
        config["Cmd"] = list(cmd)
    if labels:
        config["Labels"] = dict(labels)
    return {
        "architecture": architecture,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": layer.created_by} for layer in layers],
    }


def render_manifest(config: Blob, layers: Sequence[Layer]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
    }


@dataclass(frozen=True)
class Image:
    """A built image: its full reference, config and manifest blobs and layers."""

    ref: str
    config: Blob
    manifest: Blob
    layers: tuple[Layer, ...]


def build_image(ref: str, layers: Sequence[Layer], config: Mapping[str, Any]) -> Image:
    config_blob = Blob(MEDIA_CONFIG, canonical_json(config))
    manifest = Blob(MEDIA_MANIFEST, canonical_json(render_manifest(config_blob, layers)))
    return Image(ref, config_blob, manifest, tuple(layers))


def ref_tag(ref: str) -> str:
    """'netlab.invalid/pause:abc' -> 'abc' (the part after the last ':' past the last '/')."""
    name = ref.rsplit("/", 1)[-1]
    if ":" not in name:
        raise ImageError(f"image reference {ref!r} has no tag")
    return name.rsplit(":", 1)[1]


def render_index(images: Sequence[Image], architecture: str = "amd64") -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            image.manifest.descriptor(
                platform={"architecture": architecture, "os": "linux"},
                annotations={
                    ANNOTATION_CONTAINERD_NAME: image.ref,
                    ANNOTATION_REF_NAME: ref_tag(image.ref),
                },
            )
            for image in images
        ],
    }


def layout_members(images: Sequence[Image]) -> list[tuple[str, bytes]]:
    """The files of an OCI image layout holding `images`, each blob once (layers shared by
    several images are stored and imported once): oci-layout, index.json, blobs/sha256/*."""
    blobs: dict[str, bytes] = {}
    for image in images:
        for blob in (image.manifest, image.config, *(layer.blob for layer in image.layers)):
            blobs.setdefault(blob.digest, blob.data)
    members = [
        ("oci-layout", canonical_json(OCI_LAYOUT)),
        ("index.json", canonical_json(render_index(images))),
    ]
    members += [
        (f"blobs/sha256/{digest.split(':', 1)[1]}", data) for digest, data in sorted(blobs.items())
    ]
    return members


def archive_tar(members: Sequence[tuple[str, bytes]]) -> bytes:
    """The layout as one deterministic tar (the file `ctr images import` takes)."""
    dirs = sorted({name.rsplit("/", 1)[0] for name, _ in members if "/" in name} | {"blobs"})
    entries = [directory(d) for d in dirs] + [file(name, data) for name, data in members]
    return layer_tar(sorted(entries, key=lambda e: _sort_key(e.path)))
