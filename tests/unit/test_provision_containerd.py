"""The containerd step from the raw text its probes print on a Debian 12 node (systemd 252,
coreutils 9.1, containerd 1.6.20's ctr) to facts and plans; the file-streaming command model."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from lab.common.commands import Command, Output, render_probe, render_shown
from lab.model.labfile import load_lab
from provision.containerd import (
    LOGIN_GID,
    ContainerdFacts,
    containerd_step,
    mount_unit_name,
    render_containerd_dropin,
    render_runtime_unit,
)
from provision.model import Step
from tests.fakes import TEST_IMAGES

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "ci-debian12.yaml")
NODE = LAB.node("node1")
IMAGES = TEST_IMAGES


def step() -> Step[ContainerdFacts]:
    """The step, built in the test (mutmut's workers fork after import: a step built at
    import keeps the original code in its lambdas)."""
    return containerd_step(IMAGES)


# /proc/self/status lines as root prints them in the box's VM (all 41 capabilities) and in a
# microVM host without CAP_SYS_RESOURCE (bit 24 clear)
STATUS_ROOT = "Name:\tcat\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n"
STATUS_NO_SYS_RESOURCE = "Name:\tcat\nCapEff:\t000001fffeffffff\n"
# `ctr -n k8s.io images list --quiet` after Debian's containerd ran the box's first boot
CTR_LIST_EMPTY = ""
CTR_LIST_OURS = (
    "netlab.invalid/client:0123456789ab\nnetlab.invalid/echo:0123456789ab\n"
    "netlab.invalid/pause:0123456789ab\n"
    "sha256:5d1b2e1c0f4c6d3a9f0a7b1b0d0e8b4f2a1c3e5d7f9b1a3c5e7f9a1b3c5d7e9f\n"
)


def outputs(
    config: tuple[int, str] = (1, ""),
    mtime: tuple[int, str] = (1, ""),
    active: tuple[int, str] = (0, "active\n"),
    started: tuple[int, str] = (0, "@1764529000\n"),
    images: tuple[int, str] = (0, CTR_LIST_EMPTY),
    gid: tuple[int, str] = (0, "1000\n"),
    status: tuple[int, str] = (0, STATUS_ROOT),
    oci: tuple[int, str] = (0, "/usr/bin/crun\n"),  # `command -v crun`
    unit: tuple[int, str] = (1, ""),
    dropin: tuple[int, str] = (1, ""),
    findmnt: tuple[int, str] = (1, ""),  # `findmnt -n -o OPTIONS` of no mount point
) -> list[Output]:
    probes = (config, mtime, active, started, images, gid, status, oci, unit, dropin, findmnt)
    return [Output(c, t) for c, t in probes]


def parse_containerd(outputs: list[Output]) -> ContainerdFacts:
    return step().read_positional(LAB, NODE, outputs)


# findmnt 2.38 (Debian 12) on the read-only bind mount of crun the step makes
FINDMNT_RO = "ro,relatime,errors=remount-ro\n"


def unit() -> str:
    return render_runtime_unit("/usr/bin/crun", "/usr/local/libexec/netlab/crun")


def dropin() -> str:
    return render_containerd_dropin("/usr/local/libexec/netlab/crun")


def test_the_probe_reads_eleven_things_in_one_round_trip() -> None:
    probes = step().commands(LAB, NODE)
    assert len(probes) == 11
    assert probes[7].argv == ("sh", "-c", "command -v crun")  # the lab's oci_runtime
    assert probes[8].argv == ("cat", "/etc/systemd/system/usr-local-libexec-netlab-crun.mount")
    assert probes[10].argv == ("findmnt", "-n", "-o", "OPTIONS", "/usr/local/libexec/netlab/crun")
    assert "--timestamp=unix" in probes[3].argv
    assert probes[5] == LOGIN_GID
    render_probe(probes)  # none takes stdin


def test_the_login_group_is_the_sudo_users_even_when_the_round_trip_runs_as_root() -> None:
    """The applier runs a probe round trip under one sudo, where `id -g` alone says root's
    group: the command asks for SUDO_USER's (run here, as sudo would leave the environment)."""
    import grp
    import os
    import pwd
    import subprocess

    nobody = pwd.getpwnam("nobody")
    env = {**os.environ, "SUDO_USER": "nobody"}
    as_sudo = subprocess.run(LOGIN_GID.argv, env=env, capture_output=True, text=True, check=True)
    assert int(as_sudo.stdout) == nobody.pw_gid
    env.pop("SUDO_USER")
    plain = subprocess.run(LOGIN_GID.argv, env=env, capture_output=True, text=True, check=True)
    assert int(plain.stdout) == os.getgid()
    assert grp.getgrgid(nobody.pw_gid)


def test_a_node_without_the_images_needs_config_restart_wait_and_the_import() -> None:
    # recorded on a node of a box that did not carry the images yet
    facts = parse_containerd(outputs())
    assert facts.config is None
    assert facts.active
    assert facts.started_at == 1764529000
    assert facts.login_gid == 1000
    assert facts.can_lower_oom_score_adj
    plan = step().plan(LAB, NODE, facts)
    assert [c.argv[:2] for c in plan] == [
        ("install", "-D"),
        ("install", "-D"),
        ("systemctl", "daemon-reload"),
        ("install", "-D"),
        ("systemctl", "restart"),
        ("timeout", "60"),
        ("ctr", "--address"),
    ]
    assert plan[-1].stdin_file == IMAGES.archive
    assert plan[-1].stdin is None
    assert render_shown(plan[-1]).endswith(
        "images import --snapshotter overlayfs - < "
        "/cache/images/0123456789abcdef/netlab-images.oci.tar"
    )


def test_the_dry_run_finds_the_images_in_the_netlab_box_and_imports_them_on_any_other() -> None:
    assert LAB.vm.box_build == "debian12"
    planned = step().plan(LAB, NODE, step().fresh(LAB, NODE))
    assert planned, "config, restart, wait"
    assert not [c for c in planned if "import" in c.argv]
    other = replace(LAB, vm=replace(LAB.vm, box_build="", box_version="1.0"))
    planned = step().plan(other, NODE, step().fresh(other, NODE))
    assert planned[-1].stdin_file == IMAGES.archive


def provisioned(**changed: tuple[int, str]) -> list[Output]:
    config = step().plan(LAB, NODE, parse_containerd(outputs()))[3].stdin
    assert config is not None
    done = {
        "config": (0, config),
        "mtime": (0, "1764530100\n"),
        "started": (0, "@1764530105\n"),
        "images": (0, CTR_LIST_OURS),
        "unit": (0, unit()),
        "dropin": (0, dropin()),
        "findmnt": (0, FINDMNT_RO),
    }
    return outputs(**{**done, **changed})


def test_a_provisioned_node_as_its_probes_print_it_plans_nothing() -> None:
    assert step().plan(LAB, NODE, parse_containerd(provisioned())) == ()


def test_the_runtime_runs_from_a_read_only_mount_that_containerd_requires() -> None:
    """No clone of the runtime per call: the shim calls crun through its read-only bind mount,
    with the variable that says so in containerd's (and so the shim's) environment."""
    plan = step().plan(LAB, NODE, parse_containerd(outputs()))
    assert plan[0].argv[-1] == "/etc/systemd/system/usr-local-libexec-netlab-crun.mount"
    assert "What=/usr/bin/crun\nWhere=/usr/local/libexec/netlab/crun\n" in unit()
    assert "Options=bind,ro\n" in unit()
    assert plan[1].argv[-1] == "/etc/systemd/system/containerd.service.d/netlab-oci-runtime.conf"
    assert plan[1].stdin == dropin()
    assert "RequiresMountsFor=/usr/local/libexec/netlab/crun\n" in dropin()
    assert "Environment=_LIBCONTAINER_CLONED_BINARY=1\n" in dropin()
    assert '  BinaryName = "/usr/local/libexec/netlab/crun"\n' in (plan[3].stdin or "")


@pytest.mark.parametrize(
    "findmnt",
    [(1, ""), (0, "rw,relatime,errors=remount-ro\n")],
    ids=["not-mounted", "mounted-read-write"],
)
def test_a_runtime_mount_gone_or_writable_restarts_containerd_which_mounts_it(
    findmnt: tuple[int, str],
) -> None:
    plan = step().plan(LAB, NODE, parse_containerd(provisioned(findmnt=findmnt)))
    assert [c.argv[:2] for c in plan] == [("systemctl", "restart"), ("timeout", "60")]


@pytest.mark.parametrize(
    ("path", "unit"),
    [
        ("/usr/local/libexec/netlab/crun", "usr-local-libexec-netlab-crun.mount"),
        # as this box's systemd 252 named a CNI netns mount in its journal
        (
            "/run/netns/cni-a3fe91a3-e7c6-0dd7-474b-5615e4554337",
            "run-netns-cni\\x2da3fe91a3\\x2de7c6\\x2d0dd7\\x2d474b\\x2d5615e4554337.mount",
        ),
        ("/srv//a b/.hidden/", "srv-a\\x20b-.hidden.mount"),
        ("/.hidden", "\\x2ehidden.mount"),
        ("/opt/ü", "opt-\\xc3\\xbc.mount"),
    ],
)
def test_the_mount_unit_is_named_as_systemd_escape_names_it(path: str, unit: str) -> None:
    assert mount_unit_name(path) == unit


def test_the_config_names_the_labs_oci_runtime_and_a_node_without_it_is_an_error() -> None:
    plan = step().plan(LAB, NODE, parse_containerd(outputs()))
    assert "What=/usr/bin/crun\n" in (plan[0].stdin or "")  # where `command -v crun` found it
    with pytest.raises(ValueError, match="oci_runtime crun is not installed") as err:
        step().plan(LAB, NODE, parse_containerd(outputs(oci=(1, ""))))
    assert str(err.value) == (
        "node1: oci_runtime crun is not installed (its box predates it); rebuild the lab "
        "from the current box: `make destroy lab LAB=ci-debian12`"
    )


def test_containerd_down_reads_as_not_active_with_no_images() -> None:
    facts = parse_containerd(
        outputs(active=(3, "inactive\n"), started=(0, "\n"), images=(1, "ctr: connection refused"))
    )
    assert (facts.active, facts.started_at, facts.images) == (False, None, ())


def test_without_cap_sys_resource_the_config_restricts_oom_score_adj() -> None:
    facts = parse_containerd(outputs(status=(0, STATUS_NO_SYS_RESOURCE)))
    assert not facts.can_lower_oom_score_adj
    config = step().plan(LAB, NODE, facts)[3].stdin or ""
    assert "restrict_oom_score_adj = true" in config


def test_an_unreadable_login_group_is_an_error_not_root() -> None:
    facts = parse_containerd(outputs(gid=(1, "")))
    with pytest.raises(ValueError, match="login user's group"):
        step().plan(LAB, NODE, facts)


def test_a_streamed_file_is_shown_never_inlined_and_cannot_be_probed() -> None:
    streamed = Command(("ctr", "images", "import", "-"), stdin_file="/tmp/a.tar")
    assert render_shown(streamed) == "sudo -n ctr images import - < /tmp/a.tar"
    with pytest.raises(ValueError, match="cannot take stdin"):
        render_probe([streamed])
    with pytest.raises(ValueError, match="not both"):
        Command(("cat",), stdin="x", stdin_file="/tmp/a.tar")


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="needs systemd-escape here")
@pytest.mark.parametrize(
    "path", ["/usr/local/libexec/netlab/runc", "/a-b/c.d/_e:f", "/.x/y.", "/tmp/crun.kRkkNB"]
)
def test_the_mount_unit_name_is_what_this_hosts_systemd_escape_prints(path: str) -> None:
    argv = ["systemd-escape", "--path", "--suffix=mount", path]
    escaped = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()
    assert mount_unit_name(path) == escaped


def test_each_containerd_fact_reads_only_a_successful_answer() -> None:
    facts = step().facts(LAB, NODE)

    def parsed(name: str, code: int, stdout: str) -> object:
        return facts[name].parse(Output(code, stdout))

    # root's capabilities: read only from a status that was printed; unknown means allowed
    assert parsed("can_lower_oom_score_adj", 0, STATUS_NO_SYS_RESOURCE) is False
    assert parsed("can_lower_oom_score_adj", 1, STATUS_NO_SYS_RESOURCE) is True
    assert parsed("can_lower_oom_score_adj", 0, "Name:\tcat\n") is True
    # a number is read as it is printed (only the timestamp's "@" is taken off)
    assert parsed("config_mtime", 0, "1764529000\n") == 1764529000
    assert parsed("config_mtime", 0, "X1764529000\n") is None
    assert parsed("config_mtime", 1, "1764529000\n") is None
    assert parsed("started_at", 0, "@1764529000\n") == 1764529000
    # `command -v` that failed has found nothing, whatever it printed
    assert parsed("oci_runtime", 0, "/usr/bin/crun\n") == "/usr/bin/crun"
    assert parsed("oci_runtime", 1, "/usr/bin/crun\n") is None
    assert parsed("oci_runtime", 0, " \n") is None


def test_the_step_reads_each_containerd_fact_with_its_command() -> None:
    facts = step().facts(LAB, NODE)
    where = "/usr/local/libexec/netlab/crun"
    assert {k: (f.name, render_shown(f.command)) for k, f in facts.items()} == {
        "config": ("file /etc/containerd/config.toml", "sudo -n cat /etc/containerd/config.toml"),
        "config_mtime": ("containerd config mtime", "stat -c %Y /etc/containerd/config.toml"),
        "active": ("containerd active", "systemctl is-active containerd"),
        "started_at": (
            "containerd active since",
            "systemctl show containerd --property=ActiveEnterTimestamp --timestamp=unix --value",
        ),
        "images": (
            "CRI images",
            "sudo -n ctr --address /run/containerd/containerd.sock --namespace k8s.io images "
            "list --quiet",
        ),
        "login_gid": ("login user's group", "sh -c 'id -g \"${SUDO_USER:-$(id -un)}\"'"),
        "can_lower_oom_score_adj": ("root has CAP_SYS_RESOURCE", "sudo -n cat /proc/self/status"),
        "oci_runtime": ("crun on PATH", "sh -c 'command -v crun'"),
        "runtime_unit": (
            "file /etc/systemd/system/usr-local-libexec-netlab-crun.mount",
            "sudo -n cat /etc/systemd/system/usr-local-libexec-netlab-crun.mount",
        ),
        "runtime_dropin": (
            "file /etc/systemd/system/containerd.service.d/netlab-oci-runtime.conf",
            "sudo -n cat /etc/systemd/system/containerd.service.d/netlab-oci-runtime.conf",
        ),
        "runtime_read_only": (f"{where} mounted read-only", f"findmnt -n -o OPTIONS {where}"),
    }


def test_a_config_written_the_second_containerd_started_is_not_stale() -> None:
    """The step writes the config, then restarts containerd: both often fall in the same
    second, and the next run must plan nothing; a config newer by a second restarts it."""
    same = provisioned(mtime=(0, "1764530105\n"), started=(0, "@1764530105\n"))
    assert step().plan(LAB, NODE, parse_containerd(same)) == ()
    newer = provisioned(mtime=(0, "1764530106\n"), started=(0, "@1764530105\n"))
    assert [c.argv[:2] for c in step().plan(LAB, NODE, parse_containerd(newer))] == [
        ("systemctl", "restart"),
        ("timeout", "60"),
    ]


def test_the_unprivileged_probes_are_exactly_these_commands_without_sudo() -> None:
    facts = step().facts(LAB, NODE)
    where = "/usr/local/libexec/netlab/crun"
    expected = {
        "config_mtime": Command(("stat", "-c", "%Y", "/etc/containerd/config.toml"), sudo=False),
        "started_at": Command(
            (
                *("systemctl", "show", "containerd", "--property=ActiveEnterTimestamp"),
                *("--timestamp=unix", "--value"),
            ),
            sudo=False,
        ),
        "oci_runtime": Command(("sh", "-c", "command -v crun"), sudo=False),
        "runtime_read_only": Command(("findmnt", "-n", "-o", "OPTIONS", where), sudo=False),
    }
    assert {k: facts[k].command for k in expected} == expected


def test_only_the_timestamps_at_sign_is_taken_off() -> None:
    facts = step().facts(LAB, NODE)
    assert facts["started_at"].parse(Output(0, "@1764529000\n")) == 1764529000
    assert facts["started_at"].parse(Output(0, "X1764529000\n")) is None
    assert facts["started_at"].parse(Output(0, "n/a\n")) is None


def test_the_ci_lab_provisions_in_one_phase_every_step_on_both_nodes() -> None:
    from provision.steps import phases, steps_for

    grouped = [
        ([n.name for n in nodes], [s.key for s in steps])
        for nodes, steps in phases(LAB, steps_for(LAB, images=IMAGES))
    ]
    assert grouped == [
        (
            ["node1", "node2"],
            [
                *("tools-on-box", "bridge-nf", "ip-forward", "swap", "hostname"),
                *("cni-config", "pod-routes", "containerd", "tools-needed"),
            ],
        )
    ]


def test_the_steps_plan_names_the_node_it_plans_for_when_it_cannot_go_on() -> None:
    fresh = step().fresh(LAB, NODE)
    with pytest.raises(ValueError, match=r"^node1: cannot read the login user's group"):
        step().plan(LAB, NODE, replace(fresh, login_gid=None))


def test_a_fresh_node_of_a_box_we_did_not_build_has_no_images_yet() -> None:
    ours = step().fresh(LAB, NODE)
    assert ours.images == tuple(ref for _, ref in IMAGES.refs) != ()
    other_box = replace(LAB, vm=replace(LAB.vm, box_build=""))
    assert step().fresh(other_box, other_box.node("node1")).images == ()
