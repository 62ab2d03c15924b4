"""containerd 1.6's config.toml and CNI network for the CRI runtime (pure; golden files)."""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from lab.runtime import containerd

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "containerd"
PAUSE = "netlab.invalid/pause:0123456789ab"
VM = containerd.ContainerdConfig(sandbox_image=PAUSE)
HOST_TEST = containerd.ContainerdConfig(
    sandbox_image=PAUSE,
    root="/tmp/nl-cri/root",
    state="/tmp/nl-cri/state",
    address="/tmp/nl-cri/containerd.sock",
    cni_conf_dir="/tmp/nl-cri/net.d",
    runc_root="/tmp/nl-cri/runc",
    restrict_oom_score_adj=True,
    log_level="debug",
)


def golden(name: str, actual: str) -> None:
    """Compare with tests/golden/containerd/NAME; NETLAB_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        path.write_text(actual)
    assert path.exists(), f"missing golden {path}; run with NETLAB_UPDATE_GOLDEN=1 once"
    assert actual == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize(("name", "config"), [("vm", VM), ("host-test", HOST_TEST)])
def test_config_golden(name: str, config: containerd.ContainerdConfig) -> None:
    golden(f"config.{name}.toml", containerd.render_config(config))


def test_config_is_toml_with_the_cri_settings_the_lab_relies_on() -> None:
    doc = tomllib.loads(containerd.render_config(HOST_TEST))
    assert doc["version"] == 2
    assert doc["grpc"]["address"] == "/tmp/nl-cri/containerd.sock"
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == PAUSE
    assert cri["restrict_oom_score_adj"] is True
    assert cri["cni"] == {
        "bin_dir": "/usr/lib/cni",
        "conf_dir": "/tmp/nl-cri/net.d",
        "max_conf_num": 1,
    }
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {
        "BinaryName": "runc",
        "Root": "/tmp/nl-cri/runc",
        "SystemdCgroup": False,
    }
    assert "io.containerd.snapshotter.v1.btrfs" in doc["disabled_plugins"]


def test_the_shim_calls_the_oci_runtime_given() -> None:
    config = dataclasses.replace(VM, runtime_binary="crun")
    runc = tomllib.loads(containerd.render_config(config))["plugins"]["io.containerd.grpc.v1.cri"][
        "containerd"
    ]["runtimes"]["runc"]
    assert runc["options"]["BinaryName"] == "crun"
    assert runc["runtime_type"] == "io.containerd.runc.v2"


def test_default_runc_root_is_left_to_the_shim() -> None:
    runc = tomllib.loads(containerd.render_config(VM))["plugins"]["io.containerd.grpc.v1.cri"][
        "containerd"
    ]["runtimes"]["runc"]
    assert "Root" not in runc["options"]


def test_every_config_problem_is_listed_with_its_fix() -> None:
    bad = dataclasses.replace(
        VM,
        sandbox_image="pause",
        root="var/lib/containerd",
        snapshotter="zfs",
        runc_root="runc",
        log_level="loud",
        runtime_binary="crun; reboot",
    )
    assert containerd.validate_config(bad) == [
        "containerd root = 'var/lib/containerd': must be an absolute path",
        "containerd runtime_binary = 'crun; reboot': give a command name on PATH or an "
        "absolute path, e.g. 'runc' or 'crun'",
        "containerd runc_root = 'runc': must be an absolute path",
        "containerd snapshotter = 'zfs': use one of overlayfs, native",
        "containerd sandbox_image = 'pause': give a full reference with a registry and a tag, "
        "e.g. 'netlab.invalid/pause:0123abcd'",
        "containerd log_level = 'loud': use info or debug",
    ]
    with pytest.raises(ValueError, match="snapshotter"):
        containerd.render_config(bad)


def test_strings_are_quoted_for_toml() -> None:
    odd = dataclasses.replace(VM, root='/tmp/a "b"\\c')
    assert tomllib.loads(containerd.render_config(odd))["root"] == '/tmp/a "b"\\c'


def test_bridge_conflist_golden() -> None:
    conflist = containerd.render_bridge_conflist(
        "netlab-cri", "nlcri0", IPv4Network("10.88.7.0/24"), "/tmp/nl-cri/ipam"
    )
    golden("bridge.conflist", containerd.render_conflist_text(conflist))
    ipam = conflist["plugins"][0]["ipam"]
    assert ipam["ranges"] == [[{"subnet": "10.88.7.0/24", "gateway": "10.88.7.1"}]]
    assert json.loads(containerd.render_conflist_text(conflist)) == conflist


def test_ctr_commands() -> None:
    assert containerd.import_argv("/run/c.sock", "/x/images.tar") == (
        "ctr",
        "--address",
        "/run/c.sock",
        "--namespace",
        "k8s.io",
        "images",
        "import",
        "--snapshotter",
        "overlayfs",
        "/x/images.tar",
    )


def test_containerd_enters_only_the_network_namespace() -> None:
    assert containerd.containerd_argv("/w/config.toml", "nl-cri-1") == (
        "nsenter",
        "--net=/run/netns/nl-cri-1",
        "containerd",
        "--config",
        "/w/config.toml",
    )
    assert containerd.containerd_argv("/w/config.toml") == (
        "containerd",
        "--config",
        "/w/config.toml",
    )


STATUS = "Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n"


def test_capabilities_are_read_from_proc_status() -> None:
    # this CI's microVM: every capability but CAP_SYS_RESOURCE (24)
    assert not containerd.has_capability(STATUS, containerd.CAP_SYS_RESOURCE)
    assert containerd.has_capability(STATUS, 12)  # CAP_NET_ADMIN
    with pytest.raises(ValueError, match="no CapEff"):
        containerd.has_capability("Name:\tx\n", 24)


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
301 27 0:80 / /tmp/w/root/io.containerd.runtime.v2.task/k8s.io/ab/rootfs rw - overlay overlay rw
302 27 0:81 / /tmp/w/state/io.containerd.grpc.v1.cri/sandboxes/ab/shm rw - tmpfs shm rw
303 27 0:82 / /tmp/w/root rw - tmpfs tmpfs rw
304 27 0:83 / /tmp/w/root2 rw - tmpfs tmpfs rw
305 27 0:84 / /tmp/w/root/with\\040space rw - tmpfs tmpfs rw
"""


def test_mounts_below_a_root_deepest_first() -> None:
    assert containerd.mounts_below(MOUNTINFO, "/tmp/w/root") == [
        "/tmp/w/root/io.containerd.runtime.v2.task/k8s.io/ab/rootfs",
        "/tmp/w/root/with space",
        "/tmp/w/root",
    ]


def test_only_the_shims_of_our_containerd_are_found() -> None:
    cmdlines = {
        40: "/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0-id\0ab"
        "\0-address\0/tmp/w/c.sock\0",
        41: "/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0-address\0/run/other.sock\0",
        42: "/usr/bin/sleep\0-address\0/tmp/w/c.sock\0",
        43: "",
    }
    assert containerd.shim_pids(cmdlines, "/tmp/w/c.sock") == [40]
