"""The machine handle over strict fakes of vagrant and libvirt: what `up`, `destroy` and the
SSH channels do, and that a failed `up` leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.adapters.protocols import LabObjects, RunningDomain
from lab.common.errors import LabStateError
from lab.hosts.machines import LabMachines, record_instance, ssh_config_doubts, sweep_orphans
from lab.hosts.parse import MachineState
from lab.model import instance
from lab.model.labfile import load_lab
from tests.fakes import FakeLibvirt, FakeVagrant

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
SSH_CONFIG = """Host node1
  HostName 192.168.121.10
  User vagrant
  Port 22
  IdentityFile /k1
Host node2
  HostName 192.168.121.11
  User vagrant
  Port 22
  IdentityFile /k2
"""


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NETLAB_STATE", str(tmp_path))
    return tmp_path


def test_up_refreshes_the_ssh_config_within_a_budget_for_every_node() -> None:
    vagrant = FakeVagrant(ssh_config=SSH_CONFIG)
    machines = LabMachines(CI, vagrant=vagrant, libvirt=FakeLibvirt())
    machines.up()
    assert vagrant.calls == [("up", "True"), ("ssh-config",)]
    assert vagrant.budgets == [CI.vm.boot_timeout_s + 120 * 2]
    channels = machines.channels()
    assert {n: c.target.hostname for n, c in channels.items()} == {
        "node1": "192.168.121.10",
        "node2": "192.168.121.11",
    }


def test_a_failed_up_sweeps_what_it_half_created(state: Path) -> None:
    vagrant = FakeVagrant()
    vagrant.fail_up = KeyboardInterrupt()
    half = LabObjects(domains=("netlab-ci-debian12_node1",), networks=("netlab-ci-debian12_priv",))
    libvirt = FakeLibvirt(half)
    (state / "ci-debian12" / ".vagrant").mkdir(parents=True)
    machines = LabMachines(CI, vagrant=vagrant, libvirt=libvirt)
    with pytest.raises(KeyboardInterrupt):
        machines.up()
    assert vagrant.calls == [("up", "True"), ("kill strays",)]
    assert libvirt.calls == [("sweep", "netlab-ci-debian12_")]
    assert not libvirt.held
    assert not (state / "ci-debian12" / ".vagrant").exists(), "vagrant's record is forgotten"


def test_destroy_asks_vagrant_first_then_sweeps_by_prefix(state: Path) -> None:
    (state / "ci-debian12" / ".vagrant").mkdir(parents=True)
    vagrant, libvirt = FakeVagrant(), FakeLibvirt()
    LabMachines(CI, vagrant=vagrant, libvirt=libvirt).destroy()
    assert vagrant.calls == [("destroy",), ("kill strays",)]
    assert libvirt.calls == [("sweep", "netlab-ci-debian12_")]


def test_a_sweep_keeps_an_instances_record_and_destroy_removes_it(state: Path) -> None:
    made = instance.derive_instance(CI, "ci-debian12-t1", [])
    record_instance(made, maker=4242)
    record = state / "ci-debian12-t1" / instance.RECORD
    machines = LabMachines(made, vagrant=FakeVagrant(), libvirt=FakeLibvirt())
    machines.sweep()
    assert instance.parse_record(record.read_text())["maker"] == 4242, "found again by name"
    machines.destroy()
    assert not record.exists(), "an instance is gone with its machines"


def test_a_lab_that_is_not_running_says_how_to_start_it() -> None:
    vagrant = FakeVagrant(
        states={
            "node1": MachineState("node1", "running", "libvirt"),
            "node2": MachineState("node2", "shutoff", "libvirt"),
        }
    )
    with pytest.raises(LabStateError, match=r"not running \(node2: shutoff\); run `make lab LAB"):
        LabMachines(CI, vagrant=vagrant, libvirt=FakeLibvirt()).expect_running()


def test_channels_handed_out_follow_a_new_ssh_config() -> None:
    vagrant = FakeVagrant(ssh_config=SSH_CONFIG)
    machines = LabMachines(CI, vagrant=vagrant, libvirt=FakeLibvirt())
    node2 = machines.channels()["node2"]
    vagrant.ssh_config = SSH_CONFIG.replace("192.168.121.11", "192.168.121.99")
    machines.refresh_ssh_config()
    assert node2.target.hostname == "192.168.121.99", "the same object, pointed at the new host"


def test_what_an_earlier_run_left_of_the_lab_is_swept_when_no_vagrant_record_owns_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a machine image taken while a lab ran: libvirt still defines its domains, the fresh
    # checkout has no .vagrant for them; they would block the box update and collide with `up`
    left = LabObjects(
        domains=("netlab-ci-debian12_node1", "netlab-ci-debian12_node2"),
        volumes=("default/netlab-ci-debian12_node1.img",),
    )
    libvirt = FakeLibvirt(left)
    assert sweep_orphans(CI, libvirt) == left
    assert libvirt.calls == [("list", "netlab-ci-debian12_"), ("sweep", "netlab-ci-debian12_")]
    assert "netlab-ci-debian12_node1, netlab-ci-debian12_node2" in caplog.text


def test_a_lab_this_checkout_knows_is_never_swept_as_an_orphan(state: Path) -> None:
    (state / "ci-debian12" / ".vagrant").mkdir(parents=True)
    libvirt = FakeLibvirt(LabObjects(domains=("netlab-ci-debian12_node1",)))
    assert not sweep_orphans(CI, libvirt)
    assert libvirt.calls == []


def test_no_leftovers_means_no_sweep() -> None:
    libvirt = FakeLibvirt()
    assert not sweep_orphans(CI, libvirt)
    assert libvirt.calls == [("list", "netlab-ci-debian12_")]


@pytest.mark.parametrize(
    ("box", "built", "then", "asked"),
    [
        (True, {"build"}, ["ensure"], ["list", "sweep"]),
        (False, {"images"}, [], []),
    ],
)
def test_only_bringing_a_lab_up_builds_and_swaps_the_box_and_sweeps_orphans(
    box: bool,
    built: set[str],
    then: list[str],
    asked: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a changed box/ must not stop `status`, `ssh`, `destroy` or attaching tests from reaching
    # the machines made from the old box (ensure_box refuses while they run); and those verbs
    # never remove a lab: from a second checkout (no vagrant record of it there) the first
    # checkout's running lab looked like an orphan, and `pytest e2e --lab-mode attach`
    # removed it
    from lab.adapters import imagebuild
    from lab.hosts import box as box_builder
    from lab.hosts import machines

    done: list[str] = []
    monkeypatch.setattr(machines.sandbox, "start", lambda: "ns")
    monkeypatch.setattr(machines.sandbox, "enter", lambda ns: done.append(f"enter {ns}"))
    monkeypatch.setattr(box_builder, "build_with_images", lambda key: done.append("build"))
    monkeypatch.setattr(box_builder, "ensure_box", lambda lab: done.append("ensure"))
    monkeypatch.setattr(imagebuild, "build", lambda: done.append("images"))
    running = FakeLibvirt(LabObjects(domains=("netlab-ci-debian12_node1",)))
    machines.prepare_host(CI, running, box=box)
    # the box (which builds the images it carries) before it is swapped in; the images alone
    # when the box stays
    assert set(done[: len(built)]) == built
    assert done[len(built) :] == [*then, "enter ns"]
    assert running.calls == [(call, "netlab-ci-debian12_") for call in asked]


def test_a_lab_libvirt_holds_without_a_record_here_is_named_as_made_elsewhere(
    state: Path,
) -> None:
    from lab.hosts.machines import held_elsewhere

    assert held_elsewhere(CI, LabObjects(networks=("netlab-ci-debian12_priv",))) == ""
    said = held_elsewhere(CI, LabObjects(domains=("netlab-ci-debian12_node1",)))
    assert said == (
        "libvirt holds its domains (netlab-ci-debian12_node1) with no vagrant record of them "
        f"under {state / 'ci-debian12'}: made from another checkout of this repository? Use "
        "that checkout, or set NETLAB_STATE to its .lab directory"
    )


UUIDS = {"node1": "11111111-aaaa", "node2": "22222222-bbbb"}


def _recorded(state: Path, ids: dict[str, str]) -> None:
    """What `vagrant up` leaves in this checkout: the domain UUID of every machine."""
    for node, uuid in ids.items():
        record = state / "ci-debian12" / ".vagrant" / "machines" / node / "libvirt" / "id"
        record.parent.mkdir(parents=True)
        record.write_text(uuid)


def test_attaching_trusts_the_cached_ssh_config_only_when_libvirt_runs_what_vagrant_made(
    state: Path,
) -> None:
    vagrant, libvirt = FakeVagrant(ssh_config=SSH_CONFIG), FakeLibvirt()
    machines = LabMachines(CI, vagrant=vagrant, libvirt=libvirt)
    assert machines.confirmed_ssh_targets() is None, "nothing cached yet"
    machines.refresh_ssh_config()  # as `up` leaves it
    _recorded(state, UUIDS)
    libvirt.running = {
        "netlab-ci-debian12_node1": RunningDomain(UUIDS["node1"], ("192.168.121.10",)),
        "netlab-ci-debian12_node2": RunningDomain(UUIDS["node2"], ("192.168.121.11",)),
    }
    asked = len(vagrant.calls)
    targets = machines.confirmed_ssh_targets()
    assert targets is not None
    assert targets["node2"].hostname == "192.168.121.11"
    assert len(vagrant.calls) == asked, "vagrant was not asked"
    # node2 rebooted onto another lease: the cache is stale, vagrant must be asked again
    libvirt.running["netlab-ci-debian12_node2"] = RunningDomain(UUIDS["node2"], ("192.168.121.7",))
    assert machines.confirmed_ssh_targets() is None


def test_every_reason_a_cached_ssh_config_may_be_stale_is_named_per_node() -> None:
    from lab.hosts.parse import parse_ssh_config

    targets = parse_ssh_config(SSH_CONFIG)
    ok = RunningDomain("u1", ("192.168.121.10", "10.0.0.1"))
    assert ssh_config_doubts(targets, {"node1": "u1"}, {"node1": ok}) == []
    assert ssh_config_doubts(
        {"node1": targets["node1"]},
        {"node1": "u1", "node2": "u2", "node3": "u3", "node4": ""},
        {"node1": None, "node2": ok},
    ) == [
        "node1: its domain is not running",
        "node2: not in the cached ssh-config",
        "node3: not in the cached ssh-config",
        "node4: not in the cached ssh-config",
    ]
    assert ssh_config_doubts(
        targets,
        {"node1": "", "node2": "u2"},
        {"node1": ok, "node2": RunningDomain("other", ("192.168.121.11",))},
    ) == [
        "node1: no vagrant record in this checkout",
        "node2: runs domain other, vagrant made u2",  # another checkout's lab, same addresses
    ]
    assert ssh_config_doubts(targets, {"node2": "u2"}, {"node2": RunningDomain("u2")}) == [
        "node2: cached address 192.168.121.11 is not among its leases (none)"
    ]
