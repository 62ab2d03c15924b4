"""The lab pytest plugin: `--lab`, lab ownership, artifacts, session fixtures.

One owner for the expensive resource (the pytest-xdist recipe): the controller process (or the
only process without xdist) attaches to a running lab, or brings it up and provisions it before
any worker starts, and destroys it after the workers are done. Workers never create or destroy
VMs; they attach to what the controller prepared (the cached ssh-config in .lab/<lab>/).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from e2e import report
from e2e.fleets import remove_fleets, remove_run
from e2e.suite import SUITE, Role, Shared, Suite, new_run_id, suite_of
from lab.common.errors import CommandFailed
from lab.common.redact import install_log_redaction
from lab.hosts.machines import LabMachines, held_elsewhere, new_instance, prepare_host
from lab.model import paths
from lab.model.config import Lab, LabError
from lab.model.labfile import load_named
from provision.run import run_provision

log = logging.getLogger(__name__)


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


def is_parallel_controller(config: pytest.Config) -> bool:
    """This process will start xdist workers: asked of the options, as xdist decides it (its
    `_is_distribution_mode`), since our pytest_configure runs before xdist's registers its
    `dsession` plugin (asking for that plugin here said "no" to every `-n 4` run, so no
    controller shared its agents and each worker started its own on every node)."""
    if is_worker(config) or config.option.collectonly:
        return False
    return getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """The suite session: the lab file read once in this process, the run id and artifacts
    folder (a worker takes them from its controller), the host made ready before xdist starts
    the workers (they are born inside the lab's network namespace)."""
    name = config.getoption("--lab")
    if not name:
        return
    install_log_redaction()  # pytest's log handlers (reports, JUnit) redact like everything else
    try:
        lab = load_named(name)
    except LabError as exc:  # every problem, as pytest's one usage error, not a traceback
        raise pytest.UsageError(str(exc)) from None
    if is_worker(config):
        instance = config.workerinput.get("netlab_instance")  # type: ignore[attr-defined]
        if instance:  # the controller made an instance of the lab for this run
            lab = load_named(instance)
        # only the controller answers Ctrl-C: it stops the workers, then removes the run's
        # pods; a worker that also took the signal would die mid-report (xdist's channel is
        # gone by then) and print a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        config.stash[SUITE] = Suite.of_worker(lab, config.workerinput)  # type: ignore[attr-defined]
        return
    if not config.option.collectonly:  # listing tests starts no libvirtd, builds no box
        # attaching never builds or swaps the box (the running lab keeps the one it was made
        # from): only a run that will make an instance of its own builds it (create, or auto
        # where this checkout has no record of the named lab); nothing of the named lab is
        # ever removed
        mode = config.getoption("--lab-mode")
        recorded = (paths.state_dir(lab.name) / ".vagrant").exists()
        prepare_host(lab, box=mode == "create" or (mode == "auto" and not recorded), sweep=False)
    run_id = new_run_id()
    artifacts = Path(
        config.getoption("--artifacts") or paths.REPO / ".artifacts" / lab.name / run_id
    )
    artifacts.mkdir(parents=True, exist_ok=True)
    parallel = is_parallel_controller(config)
    role: Role = "controller" if parallel else "main"
    config.stash[SUITE] = Suite(lab, run_id, artifacts.resolve(), role, worker=role)
    if not config.option.xmlpath:
        config.option.xmlpath = str(artifacts / "junit.xml")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: the controller hands each worker the run (its id, artifacts, shared sockets)."""
    suite = suite_of(node.config)
    if suite is not None:
        node.workerinput.update(suite.for_worker())


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The one owner of the lab in a run: attach to it or create it, then (a parallel run's
    controller) start the connections the workers share, before xdist starts them."""
    config = session.config
    suite = suite_of(config)
    if suite is None or suite.role == "worker" or config.option.collectonly:
        return  # collecting needs only the lab definition, never a running lab
    made = _attach_or_create(config, suite.lab, suite.run_id)
    if made is not None:
        suite.lab, suite.created = made, True
    if suite.role != "controller":
        return
    suite.shared = Shared(suite.lab)
    try:
        suite.hub, suite.forwards = suite.shared.start()
    except BaseException:  # pytest runs no sessionfinish when sessionstart raised
        suite.shared.close()
        if suite.created and not config.getoption("--lab-keep"):
            LabMachines(suite.lab).destroy()
        raise


def _attach_or_create(config: pytest.Config, lab: Lab, run_id: str) -> Lab | None:
    """Attach to the running lab (None), or bring up and provision an instance of it of its
    own (lab/model/instance.py), which it returns: a person's lab is never made, taken down
    or swept by a run."""
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
    if running:
        if not ready:  # running, yet its ssh-config failed a moment ago: ask again, loudly
            machines.refresh_ssh_config()
        print(f"\nattached to running lab {lab.name}")
        return None
    own = new_instance(lab, run_id)
    print(
        f"\ncreating {own.name}, an instance of lab {lab.name} for this run (up + provision; "
        f"private {own.network.private}, management {own.network.management})"
    )
    start = time.monotonic()
    machines = LabMachines(own)
    machines.prepare()
    try:
        machines.up()
        run_provision(machines)
    except BaseException:  # Ctrl-C too: sessionfinish does not run when sessionstart raises
        if not config.getoption("--lab-keep"):
            machines.destroy()
        raise
    print(f"lab {own.name} ready in {time.monotonic() - start:.0f}s")
    return own


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
    """The run's pods removed (every driver's fleet; after Ctrl-C every pod of the run), the
    shared connections closed, the heatmaps drawn, and a lab this run created destroyed. What
    could not be removed is one line each, with the command that removes it."""
    config = session.config
    suite = suite_of(config)
    if suite is None or suite.role == "worker" or config.option.collectonly:
        return
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    # the heatmaps are drawn on this host while the nodes remove the run's pods
    drawing = ThreadPoolExecutor(max_workers=1)
    heatmaps = None if interrupted else drawing.submit(report.render_matrices, suite.artifacts)
    try:
        left = remove_fleets(suite)
        if interrupted:
            left += remove_run(suite)
    except BaseException as exc:  # noqa: BLE001 (a second Ctrl-C, a lost node: said below)
        left = [f"the run's pods were not all removed ({type(exc).__name__}: {exc})"]
    finally:
        if suite.shared is not None:
            suite.shared.close()
    for line in left:
        print(f"\nFAILED: {line}; remove with: python -m lab sweep {suite.lab.name} --pods")
    if left and not interrupted:  # a leak fails the run (pytest returns session.exitstatus)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    drawing.shutdown(wait=True)
    for png in heatmaps.result() if heatmaps is not None else ():
        print(f"\nmatrix heatmap: {png}")
    if suite.created and not config.getoption("--lab-keep"):
        swept = LabMachines(suite.lab).destroy()
        print(f"\ndestroyed {suite.lab.name}, made for this run (leftovers swept: {swept})")
    elif suite.created:
        print(
            f"\nkept {suite.lab.name} (--lab-keep): remove it with `python -m lab destroy "
            f"{suite.lab.name}`"
        )


# --- fixtures ------------------------------------------------------------------------------


def _suite(config: pytest.Config) -> Suite:
    suite = suite_of(config)
    if suite is None:
        pytest.skip("needs a lab: pass --lab LAB (e.g. --lab ci-debian12) or set NETLAB_LAB")
    return suite


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config) -> Lab:
    return _suite(pytestconfig).lab


@pytest.fixture(scope="session")
def run_id(pytestconfig: pytest.Config) -> str:
    return _suite(pytestconfig).run_id


@pytest.fixture(scope="session")
def artifacts_dir(pytestconfig: pytest.Config) -> Path:
    return _suite(pytestconfig).artifacts


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
    suite = suite_of(request.config)
    if suite is not None:
        return suite.worker if suite.role == "worker" else "main"
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"
