"""Every CLI verb on a bad argument: one line, exit 2, no traceback. And the pieces behind
them: pinned downloads that fail fast offline, the host-capacity check of `up`."""

from __future__ import annotations

import hashlib
import io
import time
import urllib.error
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from app import cli
from lab.adapters import fetch
from lab.hosts.capacity import (
    HostResources,
    check_capacity,
    parse_cgroup_memory_room_mib,
    parse_meminfo_available_mib,
)
from lab.model.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "labs" / "guide-centos7.yaml"
CI = ROOT / "labs" / "ci-debian12.yaml"


@pytest.fixture(autouse=True)
def no_host_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verbs under test must fail before touching machines; host networks are not the
    point here."""
    monkeypatch.setattr(
        "lab.adapters.host.probe_host_networks", lambda: (IPv4Network("203.0.113.0/24"),)
    )

    def no_machines(*args: object, **kwargs: object) -> None:
        raise AssertionError("a verb reached the machines despite a bad argument")

    monkeypatch.setattr(cli, "machines_for", no_machines)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    return code, errors


def only_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a verb that exits 2."""
    code, errors = run(argv, capsys)
    assert code == 2
    (line,) = errors
    return line


def test_plan_for_an_unknown_node_names_the_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    code, errors = run(["plan", "guide-centos7", "--node", "nosuch"], capsys)
    assert (code, errors) == (
        2,
        [
            "error: lab guide-centos7 has no node 'nosuch'; its nodes: k8s-master, k8s-node1, "
            "k8s-node2"
        ],
    )


def test_ssh_to_an_unknown_node_fails_before_any_machine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, errors = run(["ssh", "ci-debian12", "node9"], capsys)
    assert (code, errors) == (
        2,
        ["error: lab ci-debian12 has no node 'node9'; its nodes: node1, node2"],
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["snapshot", "save", "ci-debian12"], "error: snapshot save needs a NAME"),
        (["box", "guide-centos7"], "error: lab guide-centos7 uses the published box centos/7"),
    ],
)
def test_a_verb_without_what_it_needs_says_so_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert only_error(argv, capsys).startswith(message)


def test_an_unknown_lab_name_lists_the_known_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETLAB_STATE", str(tmp_path / "state"))  # no instance recorded here
    line = only_error(["plan", "nosuch"], capsys)
    assert line.startswith("error: no lab 'nosuch': ")
    assert line.endswith(
        "known labs: ci-debian12, ci-debian12-3node, ci-debian12-routed-bgp, "
        "ci-debian12-routed-vxlan, ci-debian12-vxlan, guide-centos7, guide-centos7-global"
    )


def test_plan_with_an_unknown_manifest_checksum_offline_fails_fast_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NETLAB_CACHE", str(tmp_path / "cache"))
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(  # a manifest not vendored here: validate cannot check its pin
        GUIDE.read_text()
        .replace("manifest_sha256: adffe27e", "manifest_sha256: 00000000")
        .replace("version: v0.14.0", "version: v0.15.1")
        .replace(
            "https://raw.githubusercontent.com/flannel-io/flannel/v0.14.0/Documentation/",
            "http://127.0.0.1:9/",  # loopback, nothing listens: an offline host's answer
        )
    )
    start = time.monotonic()
    code, errors = run(["plan", str(lab_file)], capsys)
    assert time.monotonic() - start < 5
    assert code == 2
    (line,) = errors
    assert "cannot download http://127.0.0.1:9/kube-flannel.yml (Connection refused)" in line
    assert f"put the file at {tmp_path / 'cache' / 'downloads' / '00000000'}" in line
    assert "NETLAB_CACHE" in line


def test_render_into_a_state_directory_that_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("NETLAB_STATE", str(blocker / "state"))
    code, errors = run(["render", "ci-debian12"], capsys)
    assert (code, errors) == (
        2,
        [
            f"error: cannot write the lab's state under {blocker}/state/ci-debian12 (Not a "
            f"directory: {blocker}/state/ci-debian12); set NETLAB_STATE to a writable directory"
        ],
    )


def test_up_refuses_a_lab_the_host_cannot_hold_before_any_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        "lab.adapters.host.probe_host_resources", lambda: HostResources(2, 1500, "a test host")
    )
    code = cli.main(["up", "ci-debian12"])
    output = capsys.readouterr().err
    assert code == 2
    assert "this host cannot hold lab ci-debian12: 1 problem(s)" in output
    assert (
        "vm.memory_mib = 2048: the lab's 2 VMs need 2048 MiB together (node1 1024, node2 1024), "
        "but this host has 1500 MiB available (a test host)"
    ) in output


# ---------------------------------------------------------------------------------------------
# The capacity check (pure)


def test_capacity_names_each_demand_the_host_cannot_meet_with_the_figures() -> None:
    lab = load_lab(GUIDE)
    assert check_capacity(lab, HostResources(8, 16000)) == []
    assert [str(p) for p in check_capacity(lab, HostResources(1, 5000, "MemAvailable"))] == [
        "vm.cpus = 2: k8s-master, k8s-node1, k8s-node2 would each get 2 vCPUs, but this host "
        "has 1 CPU(s); lower it to at most 1",
        "vm.memory_mib = 6144: the lab's 3 VMs need 6144 MiB together (k8s-master 2048, "
        "k8s-node1 2048, k8s-node2 2048), but this host has 5000 MiB available (MemAvailable); "
        "lower the memory, free some on the host, or use a bigger host",
    ]
    assert check_capacity(lab, HostResources(4, None)) == [], "unknown memory is not judged"


def test_host_figures_parse_from_meminfo_and_cgroup_files() -> None:
    meminfo = "MemTotal:       24684084 kB\nMemFree:  1 kB\nMemAvailable:   20081116 kB\n"
    assert parse_meminfo_available_mib(meminfo) == 19610
    assert parse_meminfo_available_mib("MemTotal: 1 kB\n") is None
    assert parse_cgroup_memory_room_mib("4294967296\n", "1073741824\n") == 3072
    assert parse_cgroup_memory_room_mib("max\n", "1073741824\n") is None


# ---------------------------------------------------------------------------------------------
# Pinned downloads: a strict fake opener (no network), retries only for transient failures

BODY = b"kind: List\n"
SHA = hashlib.sha256(BODY).hexdigest()


class FakeOpener:
    """Answers each call with the next scripted outcome; a call past the script fails."""

    def __init__(self, *outcomes: bytes | BaseException) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []

    def __call__(self, url: str, timeout: float) -> Any:
        self.calls.append(url)
        assert self.outcomes, f"unexpected download of {url}"
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return io.BytesIO(outcome)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NETLAB_CACHE", str(tmp_path))
    return tmp_path / "downloads"


def test_offline_fails_at_once_saying_where_it_looked(cache: Path) -> None:
    opener = FakeOpener(urllib.error.URLError(OSError(-2, "Name or service not known")))
    with pytest.raises(fetch.FetchError) as info:
        fetch.fetch_pinned(
            "https://user:pw@example.org/m.yml", SHA, opener=opener, sleep=lambda s: None
        )
    assert len(opener.calls) == 1
    message = str(info.value)
    assert "(Name or service not known)" in message
    assert f"put the file at {cache / SHA}" in message
    assert "pw@" not in message, "a URL's credentials are redacted"


def test_a_missing_file_is_not_retried(cache: Path) -> None:
    opener = FakeOpener(urllib.error.HTTPError("u", 404, "Not Found", {}, None))  # type: ignore[arg-type]
    with pytest.raises(fetch.FetchError, match=r"\(HTTP 404 Not Found\)"):
        fetch.fetch_pinned("https://example.org/m.yml", SHA, opener=opener, sleep=lambda s: None)
    assert len(opener.calls) == 1


def test_a_transient_failure_is_retried_then_the_file_cached(cache: Path) -> None:
    opener = FakeOpener(
        urllib.error.HTTPError("u", 503, "Unavailable", {}, None),  # type: ignore[arg-type]
        urllib.error.URLError(TimeoutError("timed out")),
        BODY,
    )
    assert (
        fetch.fetch_pinned("https://example.org/m.yml", SHA, opener=opener, sleep=lambda s: None)
        == BODY
    )
    assert len(opener.calls) == 3
    assert (cache / SHA).read_bytes() == BODY
    assert fetch.fetch_pinned("https://example.org/m.yml", SHA, opener=FakeOpener()) == BODY


def test_a_download_that_is_not_what_was_pinned_is_refused(cache: Path) -> None:
    with pytest.raises(fetch.ChecksumMismatch, match="update the pin"):
        fetch.fetch_pinned("https://example.org/m.yml", "0" * 64, opener=FakeOpener(BODY))
    assert not (cache / ("0" * 64)).exists()


def test_the_nightly_without_the_test_tools_says_how_to_install_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make setup` installs what `make lab` needs; the nightly runs pytest with xdist
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(
        cli.importlib.util, "find_spec", lambda name: None if name == "xdist" else real(name)
    )
    monkeypatch.setattr(cli.nightly, "run_nightly", no_nightly)
    line = only_error(["nightly", "ci-debian12"], capsys)
    assert line.startswith("error: the nightly runs the suite, and xdist is not installed in ")
    assert line.endswith(
        "install the test tools with `scripts/setup-host --test` "
        "(or run `make nightly`, which installs them)"
    )


def no_nightly(*args: object, **kwargs: object) -> None:
    raise AssertionError("the nightly started without its test tools")


def test_a_plan_read_by_head_ends_quietly() -> None:
    """`python -m lab plan ci-debian12 | head -1`: exit 0, nothing on stderr (the reader went
    away: BrokenPipeError is an OSError, so it must be caught before the OSError handler).
    The pipe is made a page small, so the plan (13 kB) cannot all fit before the reader goes."""
    import fcntl
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, 1031, 4096)  # F_SETPIPE_SZ
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "plan", "ci-debian12"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        first = reader.readline()
    assert proc.stderr is not None
    errors = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert first.startswith("# node1 ")
    assert errors == ""
