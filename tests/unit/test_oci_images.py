"""Container images as data: OCI blobs, digests, layer tars, the image layout, the image specs,
and how the builder reads apt's answers and .deb files (pure; no apt, no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import random
import tarfile

import pytest

from lab.runtime import images, oci

# --- digests, JSON, blobs ----------------------------------------------------------------


def test_digest_is_sha256_of_the_exact_bytes() -> None:
    assert oci.sha256_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    blob = oci.Blob(oci.MEDIA_CONFIG, b"{}")
    assert blob.descriptor() == {
        "mediaType": oci.MEDIA_CONFIG,
        "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
        "size": 2,
    }


def test_canonical_json_sorts_keys_and_has_no_spaces() -> None:
    assert oci.canonical_json({"b": 1, "a": [1, "x"]}) == b'{"a":[1,"x"],"b":1}'


# --- layer entries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("./usr/bin/socat", "usr/bin/socat"),
        ("./bin/sh", "usr/bin/sh"),
        ("./lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"),
        ("./lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6"),
        ("./sbin/", "usr/sbin"),
        ("./libexec/x", "libexec/x"),  # not a merged directory
        ("./etc/passwd", "etc/passwd"),
        ("./", None),
        (".", None),
        ("/", None),
        ("", None),
        ("/./usr/bin/x", "usr/bin/x"),  # a leading slash before the dot
        ("./usr/share/", "usr/share"),  # a directory's trailing slash
        ("./etc/X", "etc/X"),
        ("X/", "X"),
        (".//etc/passwd", "etc/passwd"),  # a slash left after the dot
        ("./ etc", " etc"),  # spaces are part of a name
    ],
)
def test_member_paths_follow_merged_usr(name: str, path: str | None) -> None:
    assert oci.member_path(name) == path


def test_entry_paths_must_be_relative_without_dotdot() -> None:
    with pytest.raises(oci.ImageError, match="relative"):
        oci.file("/etc/passwd", "x")
    with pytest.raises(oci.ImageError, match="relative"):
        oci.file("etc/../../x", "x")


def _tar(members: list[tuple[str, str, bytes | str]]) -> bytes:
    """A tar like dpkg-deb --fsys-tarfile prints: (name, kind, data or link target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.mtime = 1000, 1000, 1234567
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "file":
                payload = data.encode() if isinstance(data, str) else data
                info.size, info.mode = len(payload), 0o4755
                tar.addfile(info, io.BytesIO(payload))
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
                tar.addfile(info)
    return out.getvalue()


DEB_TREE = _tar(
    [
        ("./", "dir", ""),
        ("./bin/", "dir", ""),
        ("./bin/dash", "file", "ELF"),
        ("./bin/sh", "sym", "dash"),
        ("./usr/share/doc/dash/copyright", "file", "GPL"),
        ("./usr/share/man/man1/dash.1.gz", "file", "man"),
        ("./usr/bin/dash2", "hard", "./bin/dash"),
    ]
)


def test_entries_from_a_deb_tree_drop_docs_map_paths_and_keep_modes() -> None:
    entries = oci.entries_from_tar(DEB_TREE, ("usr/share/doc", "usr/share/man"))
    assert entries == [
        oci.Entry("usr/bin", "dir", 0o755),
        oci.Entry("usr/bin/dash", "file", 0o4755, b"ELF"),
        oci.Entry("usr/bin/sh", "symlink", 0o777, link="dash"),
        oci.Entry("usr/bin/dash2", "hardlink", 0o644, link="usr/bin/dash"),
    ]


def test_a_hard_link_to_a_dropped_file_is_an_error() -> None:
    tree = _tar([("./usr/share/doc/a", "file", "x"), ("./usr/bin/a", "hard", "./usr/share/doc/a")])
    with pytest.raises(oci.ImageError, match="target dropped"):
        oci.entries_from_tar(tree, ("usr/share/doc",))


def test_merge_keeps_one_directory_adds_parents_and_sorts_parents_first() -> None:
    merged = oci.merge_entries(
        [
            [oci.file("usr/bin/b", "1"), oci.directory("usr/bin", 0o755)],
            [oci.directory("usr/bin", 0o700), oci.file("usr/bin-x/c", "2")],
        ]
    )
    assert [e.path for e in merged] == ["usr", "usr/bin", "usr/bin/b", "usr/bin-x", "usr/bin-x/c"]
    assert merged[1].mode == 0o755  # first mode wins


def test_merge_accepts_the_same_file_twice_but_not_two_different_ones() -> None:
    same = oci.merge_entries([[oci.file("etc/a", "x")], [oci.file("etc/a", "x")]])
    assert [e.path for e in same] == ["etc", "etc/a"]
    with pytest.raises(oci.ImageError, match="etc/a: two different file/file"):
        oci.merge_entries([[oci.file("etc/a", "x")], [oci.file("etc/a", "y")]])


def test_merge_refuses_a_file_below_a_symlink() -> None:
    with pytest.raises(oci.ImageError, match="its parent bin is a symlink"):
        oci.merge_entries([[oci.symlink("bin", "usr/bin"), oci.file("bin/x", "1")]])


def test_layer_tar_is_deterministic_root_owned_and_fixed_time() -> None:
    entries = oci.merge_entries([[oci.file("etc/a", "x", 0o600), oci.symlink("bin", "usr/bin")]])
    first, second = oci.layer_tar(entries), oci.layer_tar(list(entries))
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar}
    assert set(members) == {"bin", "etc", "etc/a"}
    assert members["etc/a"].mode == 0o600
    assert members["bin"].issym()
    assert members["bin"].linkname == "usr/bin"
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, oci.EPOCH)}


def test_gzip_layer_has_no_timestamp() -> None:
    assert oci.gzip_layer(b"abc") == oci.gzip_layer(b"abc")
    assert oci.gzip_layer(b"abc")[4:8] == b"\0\0\0\0"  # MTIME field of the gzip header


# --- config, manifest, index, layout ----------------------------------------------------------


def _layers() -> list[oci.Layer]:
    bottom = oci.build_layer([oci.file("a", "1")], "layer a")
    top = oci.build_layer([oci.file("b", "2")], "layer b")
    return [bottom, top]


def test_a_layers_diff_id_is_the_digest_of_its_uncompressed_tar() -> None:
    layer = oci.build_layer([oci.file("a", "1")], "layer a")
    assert layer.diff_id == oci.sha256_digest(oci.layer_tar([oci.file("a", "1")]))
    assert layer.blob.digest == oci.sha256_digest(layer.blob.data)
    assert layer.blob.media_type == oci.MEDIA_LAYER_GZIP


def test_config_lists_diff_ids_bottom_first_with_command_and_env() -> None:
    layers = _layers()
    config = oci.render_config(
        layers, entrypoint=("/pause",), cmd=("-P",), env={"PATH": "/usr/bin"}
    )
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    assert config["config"] == {
        "Env": ["PATH=/usr/bin"],
        "WorkingDir": "/",
        "Entrypoint": ["/pause"],
        "Cmd": ["-P"],
    }
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert [h["created_by"] for h in config["history"]] == ["layer a", "layer b"]


def test_manifest_points_at_config_and_layers_by_digest_and_size() -> None:
    layers = _layers()
    image = oci.build_image("netlab.invalid/x:1", layers, oci.render_config(layers))
    manifest = json.loads(image.manifest.data)
    assert manifest["schemaVersion"] == 2
    assert manifest["config"] == image.config.descriptor()
    assert manifest["layers"] == [layer.blob.descriptor() for layer in layers]


def test_index_names_each_image_for_containerd_and_by_tag() -> None:
    layers = _layers()
    image = oci.build_image("netlab.invalid/echo:abc", layers, oci.render_config(layers))
    (entry,) = oci.render_index([image])["manifests"]
    assert entry["digest"] == image.manifest.digest
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert entry["annotations"] == {
        "io.containerd.image.name": "netlab.invalid/echo:abc",
        "org.opencontainers.image.ref.name": "abc",
    }


def test_ref_tag_needs_a_tag() -> None:
    assert oci.ref_tag("localhost:5000/a/b:t1") == "t1"
    with pytest.raises(oci.ImageError, match="no tag"):
        oci.ref_tag("localhost:5000/a/b")


def test_layout_stores_shared_layers_once_and_archives_deterministically() -> None:
    bottom, top = _layers()
    small = oci.build_image("netlab.invalid/s:1", [bottom], oci.render_config([bottom]))
    big = oci.build_image("netlab.invalid/b:1", [bottom, top], oci.render_config([bottom, top]))
    members = oci.layout_members([small, big])
    names = [name for name, _ in members]
    assert names[:2] == ["oci-layout", "index.json"]
    blobs = {name.rsplit("/", 1)[1]: data for name, data in members if name.startswith("blobs/")}
    # 2 manifests + 2 configs + 2 layers, `bottom` once although both images use it
    assert len(blobs) == 6
    assert all(hashlib.sha256(data).hexdigest() == name for name, data in blobs.items())
    archive = oci.archive_tar(members)
    assert archive == oci.archive_tar(oci.layout_members([small, big]))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        listed = tar.getnames()
    assert listed[:2] == ["blobs", "blobs/sha256"]
    assert json.loads(dict(members)["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}


# --- the lab's images ---------------------------------------------------------------------------


def test_the_lab_image_specs_are_valid_and_chain_from_pause() -> None:
    assert images.validate_specs(images.LAYERS, images.IMAGES) == []
    chains = {
        i.name: [layer.name for layer in images.chain(images.LAYERS, i.top_layer)]
        for i in images.IMAGES
    }
    assert chains == {
        "pause": ["pause"],
        "echo": ["pause", "base", "socat"],
        "client": ["pause", "base", "socat", "tools"],
    }


def test_spec_problems_are_all_listed() -> None:
    layers = (
        images.LayerSpec("a", "missing", ("x",)),
        images.LayerSpec("b", "c", ("y",)),
        images.LayerSpec("c", "b", ("z",)),
        images.LayerSpec("empty", None, ()),
    )
    problems = images.validate_specs(layers, (images.ImageSpec("Bad Name", "nope"),))
    assert problems == [
        "layer a: parent 'missing' is not a layer",
        "layer empty: no packages and no files",
        "image Bad Name: layer 'nope' is not a layer",
        "image 'Bad Name': use lowercase letters, digits and . _ -",
    ]
    cyclic = images.validate_specs(layers[1:3], ())
    assert cyclic == [
        "layer b: its parents form a cycle through b",
        "layer c: its parents form a cycle through c",
    ]


def test_echo_image_answers_with_the_peer_address() -> None:
    echo = next(i for i in images.IMAGES if i.name == "echo")
    assert echo.cmd == ("socat", "TCP-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR")
    assert images.echo_server_args(9000)[1] == "TCP-LISTEN:9000,fork,reuseaddr"
    with pytest.raises(ValueError, match="not a TCP port"):
        images.echo_server_args(0)


def test_image_refs_use_the_never_resolving_registry_and_the_key() -> None:
    assert images.image_ref("pause", "0123456789abcdef") == "netlab.invalid/pause:0123456789ab"


def test_an_archive_holds_every_image_by_name_with_the_keys_tag() -> None:
    assert images.image_refs("0123456789abcdef") == (
        ("client", "netlab.invalid/client:0123456789ab"),
        ("echo", "netlab.invalid/echo:0123456789ab"),
        ("pause", "netlab.invalid/pause:0123456789ab"),
    )


def test_inputs_key_changes_with_any_source_and_ignores_order() -> None:
    base = {"lab/runtime/images.py": b"a", "lab/runtime/oci.py": b"b"}
    assert images.inputs_key(base) == images.inputs_key(dict(reversed(list(base.items()))))
    assert images.inputs_key(base) != images.inputs_key({**base, "lab/runtime/oci.py": b"c"})
    assert images.inputs_key(base) != images.inputs_key(
        {"lab/runtime/images.py": b"a", "lab/oci.pyb": b""}
    )


# --- apt ---------------------------------------------------------------------------------------

# `apt-get -s install catatonit socat` with a private, empty status (Debian 12, recorded)
SIMULATED = """\
NOTE: This is only a simulation!
Reading package lists...
The following NEW packages will be installed:
  catatonit gcc-12-base libc6 libgcc-s1 media-types
Inst media-types (10.0.0 Debian:12.15/oldstable [all])
Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])
Inst libgcc-s1 (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64]) []
Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
Inst iputils-ping (3:20221126-1+deb12u1 Debian-Security:12/oldstable-security [amd64])
Inst libstdc++6:amd64 [12.2.0-13] (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])
Conf media-types (10.0.0 Debian:12.15/oldstable [all])
Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
"""


def test_simulated_install_lists_every_package_with_version_and_arch() -> None:
    found = images.parse_simulated_install(SIMULATED)
    assert sorted(found) == [
        "gcc-12-base",
        "iputils-ping",
        "libc6",
        "libgcc-s1",
        "libstdc++6",
        "media-types",
    ]
    assert found["media-types"] == images.Package("media-types", "10.0.0", "all")
    assert found["libstdc++6"].version == "12.2.0-14+deb12u1"
    ping = found["iputils-ping"]
    assert ping.deb_filename == "iputils-ping_3%3a20221126-1+deb12u1_amd64.deb"
    assert ping.pin == "iputils-ping=3:20221126-1+deb12u1"


SHOWN = """\
Package: dpkg
Version: 1.21.23
Architecture: amd64
Essential: yes
Multi-Arch: foreign
Depends: tar (>= 1.28-1)
Description: Debian package management system
 This package provides the low-level infrastructure
 for handling the installation of .deb packages.

Package: debconf
Version: 1.5.82
Architecture: all
Provides: debconf-2.0
Pre-Depends: perl-base (>= 5.20.1-3~)
"""


def test_stanzas_are_parsed_with_continuation_lines() -> None:
    dpkg, debconf = images.parse_stanzas(SHOWN)
    assert dpkg["Version"] == "1.21.23"
    assert (
        dpkg["Description"].splitlines()[1] == "This package provides the low-level infrastructure"
    )
    assert debconf["Provides"] == "debconf-2.0"


def test_pretend_status_declares_packages_installed_without_their_dependencies() -> None:
    status = images.render_pretend_status(images.parse_stanzas(SHOWN))
    assert status == (
        "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.23\n"
        "Multi-Arch: foreign\n\n"
        "Package: debconf\nStatus: install ok installed\nArchitecture: all\nVersion: 1.5.82\n"
        "Provides: debconf-2.0\n"
    )
    assert "Depends" not in status


def test_private_apt_options_and_sources() -> None:
    options = images.apt_options("/w")
    settings = dict(o.split("=", 1) for o in options[1::2])
    assert options[0::2] == ("-o",) * len(settings)
    assert settings["Dir::State::status"] == "/w/state/status"
    assert settings["Dir::Etc::SourceList"] == "/w/sources.list"
    assert settings["APT::Install-Recommends"] == "false"
    sources = images.render_sources("http://m/debian", "http://m/sec", "bookworm", "/k.gpg")
    assert sources == (
        "deb [signed-by=/k.gpg] http://m/debian bookworm main\n"
        "deb [signed-by=/k.gpg] http://m/sec bookworm-security main\n"
    )
    assert images.render_sources("http://m/debian", "", "bookworm", "/k.gpg").count("\n") == 1


def test_each_layer_gets_the_packages_its_parent_chain_lacks() -> None:
    p = {
        n: images.Package(n, "1", "amd64")
        for n in ("catatonit", "libc6", "dash", "socat", "libssl3")
    }
    layers = (
        images.LayerSpec("pause", None, ("catatonit",)),
        images.LayerSpec("base", "pause", ("libc6", "dash")),
        images.LayerSpec("socat", "base", ("socat",)),
    )
    closures = {
        "pause": {"catatonit": p["catatonit"]},
        "base": {n: p[n] for n in ("catatonit", "libc6", "dash")},
        "socat": {n: p[n] for n in ("catatonit", "libc6", "dash", "socat", "libssl3")},
    }
    assert images.layer_packages(closures, layers) == {
        "pause": (p["catatonit"],),
        "base": (p["dash"], p["libc6"]),
        "socat": (p["libssl3"], p["socat"]),
    }


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def test_deb_data_tar_is_read_from_the_ar_archive() -> None:
    deb = _ar(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", b"odd"),  # odd length: padded to 2 bytes
            ("data.tar.xz", lzma.compress(DEB_TREE)),
        ]
    )
    assert images.deb_data_tar(deb) == DEB_TREE
    with pytest.raises(ValueError, match="only xz, gz or uncompressed"):
        images.deb_data_tar(_ar([("data.tar.zst", b"x")]))
    with pytest.raises(ValueError, match="no ar archive header"):
        images.deb_data_tar(b"PK\x03\x04")
    with pytest.raises(ValueError, match=r"no data\.tar member"):
        images.deb_data_tar(_ar([("debian-binary", b"2.0\n")]))


def test_every_private_apt_option_by_its_name_in_apt_conf() -> None:
    # apt.conf(5)'s names: apt must read and write nothing of the host's own state
    assert images.apt_options("/w") == (
        "-o", "Dir::State=/w/state",
        "-o", "Dir::State::status=/w/state/status",
        "-o", "Dir::Cache=/w/cache",
        "-o", "Dir::Etc::SourceList=/w/sources.list",
        "-o", "Dir::Etc::SourceParts=/w/empty",
        "-o", "Dir::Etc::Parts=/w/empty",
        "-o", "Dir::Etc::Preferences=/w/empty/preferences",
        "-o", "Dir::Etc::PreferencesParts=/w/empty",
        "-o", "APT::Architecture=amd64",
        "-o", "APT::Architectures=amd64",
        "-o", "APT::Install-Recommends=false",
        "-o", "APT::Install-Suggests=false",
        "-o", "APT::Sandbox::User=root",
        "-o", "Acquire::Languages=none",
    )  # fmt: skip


def test_stanzas_split_on_blank_lines_and_continue_only_a_field_already_open() -> None:
    text = (
        " orphan continuation\n"  # before any field: dropped
        "Package: a\nDepends: b:any (>= 1:2.0)\n\tsecond line\n"
        "\n"
        " another orphan\n"  # a new stanza starts with no field open
        "Package: c\nnot a field\n"
    )
    assert images.parse_stanzas(text) == [
        {"Package": "a", "Depends": "b:any (>= 1:2.0)\nsecond line"},
        {"Package": "c"},
    ]
    assert images.parse_stanzas("Key:x\nXX continued\n") == [{"Key": "x"}]


def test_a_stanza_without_an_architecture_is_declared_for_the_images_own() -> None:
    assert images.render_pretend_status([{"Package": "p", "Version": "1"}]) == (
        "Package: p\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n"
    )


def test_two_layers_of_one_name_are_named_as_such() -> None:
    layer = images.LayerSpec("base", None, ("libc6",))
    assert images.validate_specs((layer, layer), ()) == ["two layers share a name"]


def test_only_an_uncompressed_tar_is_read() -> None:
    compressed = gzip.compress(_tar([("./usr/bin/a", "file", "x")]))
    with pytest.raises(tarfile.ReadError):
        oci.entries_from_tar(compressed)


def test_a_fifo_member_is_refused_by_its_name() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        fifo = tarfile.TarInfo("./run/initctl")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
    with pytest.raises(oci.ImageError, match=r"^\./run/initctl: device or fifo members are not"):
        oci.entries_from_tar(out.getvalue())


def test_a_file_where_another_package_has_a_directory_is_refused() -> None:
    with pytest.raises(oci.ImageError, match=r"^etc: two different dir/file entries in one layer$"):
        oci.merge_entries([[oci.directory("etc", 0o755)], [oci.file("etc", "x")]])
    with pytest.raises(oci.ImageError, match=r"^etc: two different file/dir entries in one layer$"):
        oci.merge_entries([[oci.file("etc", "x")], [oci.directory("etc", 0o755)]])


# --- an OCI image layout to the letter (image-spec v1: index, manifest, config, blobs) ---


def test_a_layout_is_the_oci_layout_file_the_index_and_each_blob_once_by_its_digest() -> None:
    layer = oci.build_layer([oci.file("hello", "hi\n")], "netlab: hello")
    config = oci.render_config(
        [layer], entrypoint=("/hello",), env={"PATH": "/bin"}, labels={"org.example": "x"}
    )
    assert config == {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin"],
            "WorkingDir": "/",
            "Entrypoint": ["/hello"],
            "Labels": {"org.example": "x"},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "netlab: hello"}],
    }
    one = oci.build_image("netlab.invalid/one:0123", [layer], config)
    two = oci.build_image("netlab.invalid/two:4567", [layer], config)  # the same layer, once
    config_blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    assert one.config == oci.Blob("application/vnd.oci.image.config.v1+json", config_blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(config_blob).hexdigest(),
            "size": len(config_blob),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer.blob.digest,
                "size": len(layer.blob.data),
            }
        ],
    }
    assert one.manifest.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert json.loads(one.manifest.data) == manifest
    members = dict(oci.layout_members([one, two]))
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}

    def entry(image: oci.Image, tag: str) -> dict[str, object]:
        return {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + hashlib.sha256(image.manifest.data).hexdigest(),
            "size": len(image.manifest.data),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": image.ref,
                "org.opencontainers.image.ref.name": tag,
            },
        }

    assert json.loads(members["index.json"]) == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(one, "0123"), entry(two, "4567")],
    }
    blobs = {one.manifest.data, two.manifest.data, config_blob, layer.blob.data}
    assert sorted(name for name in members if name.startswith("blobs/")) == sorted(
        f"blobs/sha256/{hashlib.sha256(b).hexdigest()}" for b in blobs
    )
    assert all(members[f"blobs/sha256/{hashlib.sha256(b).hexdigest()}"] == b for b in blobs)


@pytest.mark.parametrize(
    ("ref", "tag"),
    [
        ("netlab.invalid/pause:abc", "abc"),
        ("localhost:5000/team/echo:v1", "v1"),  # a registry port is no tag
        ("echo:1:2", "2"),
        ("a/b/c:t", "t"),
    ],
)
def test_a_references_tag_is_after_the_last_colon_past_the_last_slash(ref: str, tag: str) -> None:
    assert oci.ref_tag(ref) == tag


def test_a_reference_without_a_tag_is_refused() -> None:
    with pytest.raises(oci.ImageError, match=r"^image reference 'localhost:5000/echo' has no tag$"):
        oci.ref_tag("localhost:5000/echo")
    # a colon before the last slash is no tag either
    with pytest.raises(oci.ImageError, match=r"^image reference 'a/b:c/echo' has no tag$"):
        oci.ref_tag("a/b:c/echo")


def test_every_data_member_form_and_gnu_ar_names_are_read_exactly() -> None:
    tree = b"abc"  # odd: padded with a newline that is no part of the member
    assert images.deb_data_tar(_ar([("data.tar", tree), ("zz", b"")])) == tree
    assert images.deb_data_tar(_ar([("data.tar", b"")])) == b""  # a header at the very end
    assert images.deb_data_tar(_ar([("data.tar.gz/", gzip.compress(tree))])) == tree
    assert images.deb_data_tar(_ar([("debian-binary/", b"2.0\n"), ("data.tar/", tree)])) == tree
    with pytest.raises(ValueError, match=r"^no data\.tar member in the \.deb$"):
        images.deb_data_tar(_ar([("data.tarX", b"x")]))  # no data member of any known name
    with pytest.raises(ValueError, match=r"^not a \.deb \(no ar archive header\)$"):
        images.deb_data_tar(b"")


def test_the_inputs_key_is_the_sha256_of_each_name_and_content_nul_terminated_by_name() -> None:
    expected = hashlib.sha256(b"a.py\x001\x00b.py\x002\x00").hexdigest()
    assert images.inputs_key({"b.py": b"2", "a.py": b"1"}) == expected


def test_a_layer_tar_is_root_owned_at_the_epoch_and_reads_back_as_written() -> None:
    entries = [
        oci.directory("usr/bin", 0o755),
        oci.file("usr/bin/dash", "ELF", 0o4755),
        oci.symlink("usr/bin/sh", "dash"),
        oci.Entry("usr/bin/dash2", "hardlink", 0o644, link="usr/bin/dash"),
    ]
    data = oci.layer_tar(entries)
    assert oci.entries_from_tar(data) == entries
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
            (0, 0, "root", "root", oci.EPOCH)
        }
        dash = tar.extractfile("usr/bin/dash")
        assert dash is not None
        assert dash.read() == b"ELF"


def test_layers_are_compressed_reproducibly_at_level_6_without_a_timestamp() -> None:
    # text whose deflate output differs from level to level (6 and 7 included)
    rand = random.Random(7)
    words = [
        "".join(rand.choice("abcdefgh") for _ in range(rand.randint(2, 9))) for _ in range(300)
    ]
    tar = oci.layer_tar([oci.file("a", " ".join(rand.choice(words) for _ in range(20000)))])
    assert oci.gzip_layer(tar) == gzip.compress(tar, compresslevel=6, mtime=0)
    assert oci.gzip_layer(tar) != gzip.compress(tar, compresslevel=7, mtime=0)
    assert oci.gzip_layer(tar, 1) == gzip.compress(tar, compresslevel=1, mtime=0)


def test_canonical_json_is_sorted_compact_and_utf8() -> None:
    assert oci.canonical_json({"é": "ü", "a": [1, 2]}) == '{"a":[1,2],"é":"ü"}'.encode()


def test_the_plain_echo_server_is_socat_telling_the_peer_on_any_tcp_port() -> None:
    assert images.echo_server_args(1) == (
        "socat",
        "TCP-LISTEN:1,fork,reuseaddr",
        "SYSTEM:echo $SOCAT_PEERADDR",
    )
    assert images.echo_server_args(65535)[1] == "TCP-LISTEN:65535,fork,reuseaddr"
    with pytest.raises(ValueError, match="not a TCP port"):
        images.echo_server_args(65536)


def test_a_symlink_entry_has_mode_0777() -> None:
    assert oci.symlink("usr/bin/sh", "dash") == oci.Entry(
        "usr/bin/sh", "symlink", 0o777, link="dash"
    )


def test_directories_and_files_default_to_0755_and_0644() -> None:
    assert oci.directory("etc") == oci.Entry("etc", "dir", 0o755)
    assert oci.file("etc/hostname", "x") == oci.Entry("etc/hostname", "file", 0o644, b"x")


def test_an_image_not_in_the_set_is_named_with_the_archive_and_what_it_holds() -> None:
    built = images.ImageSet("/c/images.tar", (("pause", "p:1"), ("echo", "e:1")))
    assert built.ref("echo") == "e:1"
    with pytest.raises(KeyError) as missing:
        built.ref("client")
    assert missing.value.args == ("no image 'client' in /c/images.tar; images: ['echo', 'pause']",)
