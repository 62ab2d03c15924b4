"""`vagrant up` followed per node (lab/hosts/vagrant_up.py), fed with a real `vagrant up` of
ci-debian12 recorded on this machine (tests/data/vagrant/up-ci-debian12.txt: vagrant 2.3.4,
vagrant-libvirt 0.11.2; the checkout's path replaced by /home/ci/k8s-netlab), and the vagrant
adapter's failure: the whole output in its log, the error naming the log with a clean tail."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from rich.console import Console

from app.live import NodeLines
from lab.adapters.vagrant import BoundedVagrant
from lab.common.errors import CommandFailed
from lab.hosts.vagrant_up import (
    NodeLine,
    UpEvent,
    fold_up,
    parse_up_line,
    render_up_line,
    start_lines,
    without_progress,
)

RECORDED = Path(__file__).resolve().parents[1] / "data" / "vagrant" / "up-ci-debian12.txt"


def phases(text: str) -> dict[str, list[str]]:
    """node -> the phases a person sees, in order (a repeated phase shows once)."""
    lines = start_lines(["node1", "node2"], 0.0)
    seen: dict[str, list[str]] = {"node1": [], "node2": []}
    for t, raw in enumerate(text.splitlines()):
        event = parse_up_line(raw)
        if event is None:
            continue
        lines, changed = fold_up(lines, event, float(t))
        if changed:
            line = lines[event.node]
            seen[event.node].append(f"{line.phase} ({line.detail})" if line.detail else line.phase)
    return seen


def test_a_recorded_vagrant_up_is_one_short_list_of_phases_per_node() -> None:
    seen = phases(RECORDED.read_text())
    assert seen["node1"] == [
        "uploading the box into libvirt",
        "creating its disk",
        "defining its domain",
        "starting",
        "waiting for its IP address",
        "booting",
        "booting (ssh 192.168.130.124:22)",
        "configuring its networks",
        "up",
    ]
    assert seen["node2"] == [
        "creating its disk",  # node1 uploaded the box for both
        "defining its domain",
        "starting",
        "waiting for its IP address",
        "booting",
        "booting (ssh 192.168.130.240:22)",
        "configuring its networks",
        "up",
    ]


def test_the_domain_settings_dump_and_the_progress_meter_are_no_phase() -> None:
    text = RECORDED.read_text()
    assert "==> node1:  -- Cpus:              1" in text, "the recording has the dump"
    for line in text.splitlines():
        if " -- " in line or "Progress:" in line or "box-metadata" in line:
            assert parse_up_line(line) is None, line
    assert parse_up_line("    node1: SSH username: vagrant") is None


def test_a_phase_starts_a_line_and_the_end_freezes_its_seconds() -> None:
    lines = start_lines(["node1"], 100.0)
    lines, changed = fold_up(lines, UpEvent("node1", "booting"), 110.0)
    assert changed
    assert render_up_line(lines["node1"], 123.4) == "node1  booting  23.4s"
    lines, _ = fold_up(lines, UpEvent("node1", "", done=True), 130.0)
    assert render_up_line(lines["node1"], 999.0, width=7) == "node1    up  30.0s"
    after, changed = fold_up(lines, UpEvent("node1", "halting"), 140.0)
    assert not changed, "a node that is up stays up for this display"
    assert after == lines


def test_a_node_the_lab_did_not_list_joins_the_lines() -> None:
    lines, changed = fold_up({}, UpEvent("extra", "starting"), 5.0)
    assert changed
    assert lines["extra"] == NodeLine("extra", "starting", 5.0)
    assert render_up_line(lines["extra"], 6.0, seconds=False) == "extra  starting"


def test_an_errors_tail_has_no_progress_meter() -> None:
    text = "==> node1: Uploading\n\n\x1b[KProgress: 0%\n\x1b[KProgress: 9%\n\x1b[K==> node1: done\n"
    assert without_progress(text) == "==> node1: Uploading\n\n==> node1: done\n"


def test_off_a_terminal_each_phase_change_is_one_line_and_nothing_of_the_dump() -> None:
    buf = io.StringIO()
    lines = NodeLines(["node1", "node2"], Console(file=buf, width=120), "ci-debian12 up")
    lines("==> node1: Starting domain.")  # outside `with`: nothing shown (other verbs)
    with lines:
        for raw in RECORDED.read_text().splitlines():
            lines(raw)
    shown = buf.getvalue().splitlines()
    assert len(shown) == 17, shown
    assert shown[-1].endswith("ci-debian12 up node2  up")
    assert not [s for s in shown if "Cpus" in s or "Progress" in s or "Feature" in s]


FAKE_VAGRANT = """#!/bin/sh
cat {recorded}
echo "The box 'netlab/debian12' could not be found." >&2
exit 1
"""


@pytest.fixture
def fake_vagrant(tmp_path: Path) -> Path:
    exe = tmp_path / "vagrant"
    exe.write_text(FAKE_VAGRANT.format(recorded=RECORDED))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_a_failed_vagrant_names_its_log_which_holds_everything(
    fake_vagrant: Path, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "vagrant.log"
    seen: list[str] = []
    v = BoundedVagrant("ci-debian12", log, seen.append)
    v._vagrant_exe = str(fake_vagrant)  # python-vagrant's own cache of the executable
    with pytest.raises(CommandFailed) as failed:
        v.up_all()
    message = str(failed.value)
    assert f"its whole output: {log}" in message
    assert "could not be found" in message
    assert "Progress:" not in message
    assert "==> node2: Configuring and enabling network interfaces..." in message
    whole = log.read_text()
    assert "Progress: 0%" in whole
    assert "could not be found" in whole
    assert len(seen) == len(RECORDED.read_text().splitlines()), "every line reaches on_line"
