"""The lab pytest plugin: `--lab`, lab ownership, artifacts, session fixtures.

One owner for the expensive resource (the pytest-xdist recipe): the controller process (or the
only process without xdist) attaches to a running lab, or brings it up and provisions it before
any worker starts, and destroys it after the workers are done. Workers never create or destroy
VMs; they attach to what the controller prepared (the cached ssh-config in .lab/<lab>/).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e import report
from lab.common.errors import CommandFailed
from lab.common.redact import install_log_redaction
from lab.hosts.machines import LabMachines, held_elsewhere, prepare_host
from lab.model import paths
from lab.model.config import Lab, LabError
from lab.model.labfile import load_lab
from provision.run import run_provision

log = logging.getLogger(__name__)

LAB_KEY = pytest.StashKey[Lab]()
CREATED_KEY = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab", "k8s-netlab")
    group.addoption(
        "--lab",
        default=os.environ.get("NETLAB_LAB"),
        help="lab name (labs/NAME.yaml) or path; enables the e2e suite",
    )
    group.addoption(
        "--lab-mode",
        choices=("auto", "attach", "create"),
        default="auto",
        help="attach: use the running lab (`make lab`); create: bring it up and "
        "provision it before the tests, destroy it after; auto: attach if it is "
        "running, else create (default)",
    )
    group.addoption(
        "--lab-keep", action="store_true", help="with create: keep the lab after the run"
    )
    group.addoption(
        "--artifacts",
        default=None,
        help="where reports and failure bundles go (default .artifacts/LAB/RUN)",
    )
    group.addoption(
        "--pods-per-node",
        type=int,
        default=2,
        help="pods per node in the connectivity matrix (default 2)",
    )
    group.addoption(
        "--drivers",
        default="lab",
        help="which pods the network-model tests run on: lab (default: the lab's own, "
        "Kubernetes' or else the runtime's or else CNI-direct), all, or names (cni,cri,k8s)",
    )


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def new_run_id() -> str:
    return "r" + secrets.token_hex(3)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--lab")
    if not name:
        return
    install_log_redaction()  # pytest's log handlers (reports, JUnit) redact like everything else
    try:
        lab = load_lab(paths.resolve_lab_path(name))
    except LabError as exc:  # every problem, as pytest's one usage error, not a traceback
        raise pytest.UsageError(str(exc)) from None
    config.stash[LAB_KEY] = lab
    if is_worker(config):
        return  # workers inherit the namespace, run id and artifacts dir from the controller
    if not config.option.collectonly:  # listing tests starts no libvirtd, builds no box
        # before xdist starts workers: they are born inside the lab namespace. Attaching
        # never builds or swaps the box (the running lab keeps the one it was made from)
        prepare_host(lab, box=config.getoption("--lab-mode") != "attach")
    run_id = os.environ.setdefault("NETLAB_RUN_ID", new_run_id())
    artifacts = Path(
        config.getoption("--artifacts") or paths.REPO / ".artifacts" / lab.name / run_id
    )
    artifacts.mkdir(parents=True, exist_ok=True)
    os.environ["NETLAB_ARTIFACTS"] = str(artifacts.resolve())
    if not config.option.xmlpath:
        config.option.xmlpath = str(artifacts / "junit.xml")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if LAB_KEY not in config.stash or is_worker(config) or config.option.collectonly:
        return  # collecting needs only the lab definition, never a running lab
    lab = config.stash[LAB_KEY]
    machines = LabMachines(lab)
    mode = config.getoption("--lab-mode")
    # the cached ssh-config when libvirt confirms it; else one vagrant call when the lab runs
    # (every node's ssh-config); its states only when not
    ready = machines.confirmed_ssh_targets() is not None or _ssh_config_refreshed(machines)
    states = {} if ready else _states(machines)
    running = ready or (bool(states) and all(s == "running" for s in states.values()))
    if mode == "attach" and not running:
        created = any(s != "not_created" for s in states.values())
        elsewhere = "" if created else held_elsewhere(lab, machines.leftovers())
        raise pytest.UsageError(
            f"--lab-mode=attach but lab {lab.name} is not running here; "
            + (elsewhere or f"run `make lab LAB={lab.name}` first")
        )
    if not running and any(s != "not_created" for s in states.values()):
        # a lab the user has (halted, paused, half up) is theirs: never created, never destroyed
        shown = ", ".join(f"{n}: {s}" for n, s in sorted(states.items()))
        raise pytest.UsageError(
            f"lab {lab.name} exists but is not running ({shown}); start it with "
            f"`make lab LAB={lab.name}` or remove it with `make destroy LAB={lab.name}`"
        )
    config.stash[CREATED_KEY] = False
    if running:
        if not ready:  # running, yet its ssh-config failed a moment ago: ask again, loudly
            machines.refresh_ssh_config()
        print(f"\nattached to running lab {lab.name}")
        return
    print(f"\ncreating lab {lab.name} for this run (up + provision)")
    start = time.monotonic()
    machines.prepare()
    config.stash[CREATED_KEY] = True
    try:
        machines.up()
        run_provision(machines)
    except BaseException:  # Ctrl-C too: sessionfinish does not run when sessionstart raises
        if not config.getoption("--lab-keep"):
            machines.destroy()
        raise
    print(f"lab {lab.name} ready in {time.monotonic() - start:.0f}s")


def _ssh_config_refreshed(machines: LabMachines) -> bool:
    """True when vagrant gave an ssh-config for every node (it does only for running
    machines), now cached for the workers; False when it could not."""
    try:
        targets = machines.refresh_ssh_config()
    except CommandFailed:
        return False
    return all(name in targets for name in machines.lab.node_names)


def _states(machines: LabMachines) -> dict[str, str]:
    """Each machine's vagrant state; empty when vagrant knows none."""
    try:
        return {name: m.state for name, m in machines.states().items()}
    except CommandFailed:
        return {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if LAB_KEY not in config.stash or is_worker(config):
        return
    artifacts = Path(os.environ["NETLAB_ARTIFACTS"])
    for png in report.render_matrices(artifacts):
        print(f"\nmatrix heatmap: {png}")
    if config.stash.get(CREATED_KEY, False) and not config.getoption("--lab-keep"):
        swept = LabMachines(config.stash[LAB_KEY]).destroy()
        print(f"\ndestroyed the lab created for this run (leftovers swept: {swept})")


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config) -> Lab:
    if LAB_KEY not in pytestconfig.stash:
        pytest.skip("needs a lab: pass --lab LAB (e.g. --lab ci-debian12) or set NETLAB_LAB")
    return pytestconfig.stash[LAB_KEY]


@pytest.fixture(scope="session")
def run_id(lab: Lab) -> str:
    return os.environ["NETLAB_RUN_ID"]


@pytest.fixture(scope="session")
def artifacts_dir(lab: Lab) -> Path:
    return Path(os.environ["NETLAB_ARTIFACTS"])


@pytest.fixture(scope="session")
def machines(lab: Lab, worker_tag: str) -> Iterator[LabMachines]:
    """The running lab, attach-only: SSH channels from the controller's cached ssh-config."""
    handle = LabMachines(lab, log_tag=worker_tag)
    handle.expect_ssh_config()
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def reprovision(machines: LabMachines) -> Callable[[], int]:
    """Provision the running lab again, as a person heals a node by hand; returns how many
    commands that took (0: nothing was missing)."""

    def run() -> int:
        return sum(r.commands for r in run_provision(machines))

    return run


@pytest.fixture(scope="session")
def worker_tag(request: pytest.FixtureRequest) -> str:
    """gw0, gw1, ... under xdist; `main` otherwise."""
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"
