"""Fixtures of the e2e suite: the workload drivers a lab supports (each test that takes `driver`
runs once per driver, its id saying which: `[cni]`, `[k8s]`, `[cri]`), a fleet of pods per node and
driver, per-test pods that are removed even when the test fails, and a diagnostics bundle for
every failed test. Everything is parametrized from the lab definition, never from live state."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from e2e import scenarios
from e2e.diagnostics import write_node_state
from e2e.drivers import drivers_for, make_driver, model_drivers, why_no_driver
from e2e.drivers.base import (
    CommandLog,
    Container,
    Driver,
    NodeRunner,
    Pod,
    PodRequest,
    node_python,
)
from e2e.drivers.cni import CniDriver
from e2e.drivers.cri import SHARED_FORWARDS, CriDriver, ForwardedRuntimes
from e2e.hub import ENV as hub_env
from e2e.hub import Hub
from e2e.session import SessionPool
from lab.common.redact import redact
from lab.hosts.machines import LabMachines
from lab.model import paths
from lab.model.config import Lab
from lab.model.labfile import load_lab

NEEDS_LAB = "needs a lab: pass --lab LAB (e.g. --lab ci-debian12) or set NETLAB_LAB"
LAB_FOR_COLLECTION = pytest.StashKey[Lab]()


def lab_of(config: pytest.Config) -> Lab | None:
    """The lab named by --lab, loaded once per process (collection and session end)."""
    name = config.getoption("--lab")
    if not name:
        return None
    if LAB_FOR_COLLECTION not in config.stash:
        config.stash[LAB_FOR_COLLECTION] = load_lab(paths.resolve_lab_path(name))
    return config.stash[LAB_FOR_COLLECTION]


def pytest_configure(config: pytest.Config) -> None:
    pods_per_node = config.getoption("--pods-per-node")
    lab = lab_of(config)
    if lab is not None:
        try:
            scenarios.fleet_slots(lab, pods_per_node)
            model_drivers(lab, config.getoption("--drivers"))
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    lab = lab_of(metafunc.config)
    if lab is None:
        no_lab = [pytest.param(None, marks=pytest.mark.skip(reason=NEEDS_LAB))]
        for arg in ("driver", "slot", "node_name", "node_pair"):
            if arg in metafunc.fixturenames:
                metafunc.parametrize(arg, no_lab)
        return
    chosen = any(
        m.args and m.args[0] == "driver" for m in metafunc.definition.iter_markers("parametrize")
    )
    if "driver" in metafunc.fixturenames and not chosen:  # a test may pin its driver
        chosen_drivers = model_drivers(lab, metafunc.config.getoption("--drivers"))
        metafunc.parametrize("driver", chosen_drivers, indirect=True, scope="session")
    if "slot" in metafunc.fixturenames:
        slots = scenarios.fleet_slots(lab, metafunc.config.getoption("--pods-per-node"))
        metafunc.parametrize("slot", slots, ids=[f"{n}-p{i}" for n, i in slots])
    if "node_name" in metafunc.fixturenames:
        metafunc.parametrize("node_name", sorted(lab.node_names))
    if "node_pair" in metafunc.fixturenames:
        names = sorted(lab.node_names)
        pairs = [(a, b) for a in names for b in names if a != b]
        metafunc.parametrize("node_pair", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])


OWN_PODS = ("make_pods", "make_cri_pods")  # fixtures of tests that make pods of their own


@pytest.hookimpl(trylast=True)  # after any reordering plugin: a stable sort keeps its order
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that make pods of their own are the longest: they go first, so that workers do
    not start them last, one after another, while the nodes idle (every worker sorts alike).
    Disruptive tests run only when asked for (`-m disruptive`), serially, as the nightly
    does; a plain `pytest e2e -n 4` reports them as skipped with that reason."""
    items.sort(key=lambda item: not any(f in OWN_PODS for f in getattr(item, "fixturenames", ())))
    if "disruptive" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(
        reason="disruptive: breaks the lab on purpose; run with "
        "`-m disruptive -n 0` (the nightly's serial pass)"
    )
    for item in items:
        if item.get_closest_marker("disruptive"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def command_log() -> CommandLog:
    return CommandLog()


@pytest.fixture(scope="session")
def node_runner(lab: Lab, machines: LabMachines, command_log: CommandLog) -> Iterator[NodeRunner]:
    """This process's way onto the nodes, shared by its drivers: serving agents, started at
    once in the background (while the fleet is made or awaited)."""
    runner = NodeRunner(machines.channels(), command_log, python=node_python(lab))
    runner.warm()
    yield runner
    runner.close()


class Drivers:
    """This process's workload drivers, one per name, made on first use and shared by every
    fixture that wants one (`driver`, `cri_driver`, `cni_driver`, the fleets): a CRI driver
    holds an SSH socket forward per node, which a second instance would open again. The
    first worker sweeps each driver's pods of earlier runs once."""

    def __init__(
        self, lab: Lab, runner: NodeRunner, run_id: str, log: CommandLog, sweeps: bool
    ) -> None:
        self.lab = lab
        self.runner = runner
        self.run_id = run_id
        self.log = log
        self.sweeps = sweeps
        self._made: dict[str, Driver[Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Driver[Any]:
        with self._lock:
            if name not in self._made:
                drv = make_driver(name, self.lab, self.runner, self.run_id, self.log)
                if self.sweeps:
                    drv.sweep(keep_prefix=f"nl-{self.run_id}-")
                self._made[name] = drv
            return self._made[name]

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, {}
        for drv in made.values():
            close_driver(drv)


@pytest.fixture(scope="session")
def drivers(
    lab: Lab, node_runner: NodeRunner, run_id: str, worker_tag: str, command_log: CommandLog
) -> Iterator[Drivers]:
    registry = Drivers(lab, node_runner, run_id, command_log, worker_tag in ("main", "gw0"))
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def driver(request: pytest.FixtureRequest, lab: Lab, drivers: Drivers) -> Driver[Any]:
    """One workload driver (the test's parameter), this process's only one of that name; a
    test that pins a driver this lab has not is skipped with what it needs."""
    skip_without_driver(request.param, lab)
    return drivers.get(request.param)


def skip_without_driver(name: str, lab: Lab) -> None:
    reason = why_no_driver(name, lab)
    if reason is not None:
        pytest.skip(reason)


def close_driver(drv: Driver[Any]) -> None:
    """What a driver holds open in this process (the CRI driver's socket forwards)."""
    close = getattr(drv, "close", None)
    if callable(close):
        close()


@pytest.fixture(scope="session")
def cri_driver(lab: Lab, drivers: Drivers) -> CriDriver:
    """The CRI driver, for the checks of the pod creation flow itself."""
    skip_without_driver("cri", lab)
    drv = drivers.get("cri")
    assert isinstance(drv, CriDriver)
    return drv


@pytest.fixture(scope="session")
def cni_driver(drivers: Drivers) -> CniDriver:
    """The CNI-direct driver, for the tests of the CNI contract itself."""
    drv = drivers.get("cni")
    assert isinstance(drv, CniDriver)
    return drv


@contextmanager
def locked(path: Path) -> Iterator[None]:
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fleet_file(artifacts: Path, driver: str) -> Path:
    return artifacts / f"fleet-{driver}.json"


Fleet = dict[tuple[str, int], Pod[Any]]
FLEET_READY_S = 900  # every fleet pod of a lab made or loaded (bounded per pod as well)


def fleet_drivers(items: Sequence[pytest.Item]) -> list[str]:
    """The drivers whose fleet a test of this process's collection uses, in first-use order."""
    names: list[str] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "fleet" not in getattr(item, "fixturenames", ()):
            continue
        name = callspec.params.get("driver")
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


class Fleets:
    """The run's shared pods of every driver the collected tests use: all of them started at
    once when the first test wants any (the CRI pods are made while the CNI-direct ones are,
    and while tests with pods of their own run), each under a file lock so that one worker
    makes them and the others load what it saved."""

    def __init__(
        self,
        drivers: Drivers,
        slots: Sequence[tuple[str, int]],
        artifacts: Path,
        record: Callable[[str, object], None],
    ) -> None:
        self.drivers = drivers
        self.slots = list(slots)
        self.artifacts = artifacts
        self.record = record
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fleet")
        self._futures: dict[str, Future[Fleet]] = {}
        self._lock = threading.Lock()

    def start(self, names: Sequence[str]) -> None:
        with self._lock:
            for name in names:
                if name not in self._futures:
                    self._futures[name] = self._pool.submit(self._load_or_make, name)

    def get(self, name: str) -> Fleet:
        self.start([name])
        try:
            return self._futures[name].result(timeout=FLEET_READY_S)
        except FutureTimeout:
            raise TimeoutError(
                f"the {name} fleet was not made (or loaded) within {FLEET_READY_S}s"
            ) from None

    def _load_or_make(self, name: str) -> Fleet:
        drv = self.drivers.get(name)
        run_id = self.drivers.run_id
        path = fleet_file(self.artifacts, name)
        with locked(self.artifacts / f"fleet-{name}.lock"):
            if path.exists():
                saved = json.loads(path.read_text())
                return {
                    s: drv.load_pod(saved[scenarios.slot_name(run_id, name, s)]) for s in self.slots
                }
            start = time.monotonic()
            pods = drv.create_pods(scenarios.fleet_requests(drv, run_id, self.slots))
            self.record(f"fleet-{name}-setup-s", round(time.monotonic() - start, 2))
            path.write_text(json.dumps({p.name: drv.dump_pod(p) for p in pods}))
            return dict(zip(self.slots, pods, strict=True))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def fleets(
    lab: Lab,
    drivers: Drivers,
    artifacts_dir: Path,
    pytestconfig: pytest.Config,
    record_testsuite_property: Callable[[str, object], None],
) -> Iterator[Fleets]:
    slots = scenarios.fleet_slots(lab, pytestconfig.getoption("--pods-per-node"))
    made = Fleets(drivers, slots, artifacts_dir, record_testsuite_property)
    yield made
    made.close()


@pytest.fixture(scope="session")
def fleet(driver: Driver[Any], fleets: Fleets, request: pytest.FixtureRequest) -> Fleet:
    """The run's shared pods of this driver: `--pods-per-node` on every node, each running the
    driver's echo server. Made once, by the first worker that needs any fleet (every driver's
    at once), used read-only by every test, removed by the controller at the end."""
    fleets.start(fleet_drivers(request.session.items))
    return fleets.get(driver.name)


HUB = pytest.StashKey[Hub]()
FORWARDS = pytest.StashKey[ForwardedRuntimes]()
MACHINES = pytest.StashKey[LabMachines]()  # the controller's SSH connections, one per node


def pytest_sessionstart(session: pytest.Session) -> None:
    """A parallel run's controller serves every node's agents to its workers (e2e/hub.py),
    and holds the SSH forwards of the nodes' containerd sockets for them: started after the
    lab plugin attached to (or made) the lab, before xdist starts the workers, which find
    both through the environment they inherit."""
    config = session.config
    lab = lab_of(config)
    parallel = config.pluginmanager.get_plugin("dsession") is not None
    if lab is None or hasattr(config, "workerinput") or not parallel or config.option.collectonly:
        return
    python = node_python(lab)
    if python is None:
        return
    machines = config.stash[MACHINES] = LabMachines(lab, log_tag="controller")
    channels = machines.channels()
    hub = Hub({node: SessionPool(ch.open_stream, python) for node, ch in channels.items()})
    config.stash[HUB] = hub
    try:
        os.environ[hub_env] = hub.start()
        if lab.runtime == "containerd":
            forwards = ForwardedRuntimes(channels)
            config.stash[FORWARDS] = forwards
            os.environ[SHARED_FORWARDS] = forwards.share()
    except BaseException:  # pytest runs no sessionfinish when sessionstart raised
        close_shared(config)
        raise


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) removes the shared pods of every driver, before
    the lab plugin destroys a lab it created."""
    config = session.config
    lab = lab_of(config)
    if hasattr(config, "workerinput") or lab is None or "NETLAB_ARTIFACTS" not in os.environ:
        return
    try:
        remove_fleets(session, lab, config.stash.get(MACHINES, None))
    finally:
        close_shared(config)


def close_shared(config: pytest.Config) -> None:
    """The controller's forwards and agent hub, closed and no longer announced."""
    if FORWARDS in config.stash:
        os.environ.pop(SHARED_FORWARDS, None)
        config.stash[FORWARDS].close()
    if HUB in config.stash:
        os.environ.pop(hub_env, None)
        config.stash[HUB].close()
    if MACHINES in config.stash:
        config.stash[MACHINES].close()


def remove_fleets(session: pytest.Session, lab: Lab, shared: LabMachines | None) -> None:
    """Every driver's fleet removed, over the controller's connections when it holds them
    (a parallel run: no new SSH handshake per node at the end of the run)."""
    artifacts = Path(os.environ["NETLAB_ARTIFACTS"])
    files = {name: fleet_file(artifacts, name) for name in drivers_for(lab)}
    if not any(f.exists() for f in files.values()):
        return
    machines = shared or LabMachines(lab, log_tag="controller")
    run_id = os.environ.get("NETLAB_RUN_ID", "")
    saved = {name: path for name, path in files.items() if path.exists()}
    try:
        with ThreadPoolExecutor(max_workers=len(saved)) as pool:  # every driver's at once
            futures = [
                pool.submit(delete_fleet, name, path, lab, machines, run_id)
                for name, path in saved.items()
            ]
            leaks = [f.result() for f in futures]
    finally:
        if machines is not shared:
            machines.close()
    for leak in filter(None, leaks):  # a leak fails the run (pytest returns session.exitstatus)
        print(f"\nFAILED: {leak}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def delete_fleet(name: str, path: Path, lab: Lab, machines: LabMachines, run_id: str) -> str:
    """Remove one driver's fleet; what the runtime still holds of the run ("" when nothing)."""
    drv = make_driver(name, lab, machines.channels(), run_id, CommandLog())
    try:
        drv.delete_pods([drv.load_pod(d) for d in json.loads(path.read_text()).values()])
        path.unlink()
        if isinstance(drv, CriDriver):  # the runtime's own word: nothing of the run left
            left = {n: found for n, found in drv.leftovers().items() if found}
            if left:
                return f"CRI objects of run {run_id} left on the nodes: {left}"
        return ""
    finally:
        close_driver(drv)


@pytest.fixture
def make_pods(
    driver: Driver[Any], run_id: str, worker_tag: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., list[Pod[Any]]]]:
    """Pods of the test's driver, named after the test; removed at teardown even when the test
    failed."""
    made: list[Pod[Any]] = []
    base = request.node.name.split("[")[0].removeprefix("test_")[:16].replace("_", "-")

    def make(*wanted: tuple[str, tuple[Container, ...]]) -> list[Pod[Any]]:
        requests = [
            PodRequest(f"nl-{run_id}-{worker_tag}-{driver.name}-{base}-{len(made) + i}", n, c)
            for i, (n, c) in enumerate(wanted)
        ]
        pods = driver.create_pods(requests)
        made.extend(pods)
        return pods

    yield make
    if made:
        driver.delete_pods(made)


@pytest.fixture
def make_cni_pod(
    cni_driver: CniDriver, run_id: str, worker_tag: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Pod[Any]]]:
    """CNI-direct pods for the contract tests, removed at teardown even when the test failed."""
    made: list[Pod[Any]] = []
    base = request.node.name.split("[")[0].removeprefix("test_")[:20].replace("_", "-")

    def make(node: str, containers: tuple[Container, ...] | None = None) -> Pod[Any]:
        name = f"nl-{run_id}-{worker_tag}-{base}-{len(made)}"
        chosen = cni_driver.fleet_containers() if containers is None else containers
        (pod,) = cni_driver.create_pods([PodRequest(name, node, chosen)])
        made.append(pod)
        return pod

    yield make
    if made:
        cni_driver.delete_pods(made)


# --- timing and diagnostics ------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.when == "setup":  # the suite's own cost, per phase, in the JUnit XML
        item.user_properties.append(("setup-s", round(report.duration, 3)))
    return report


REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.fixture(autouse=True)
def diagnostics(request: pytest.FixtureRequest, command_log: CommandLog) -> Iterator[None]:
    start = len(command_log.entries)
    if "lab" not in request.fixturenames:
        yield
        return
    call_start = time.monotonic()
    lab: Lab = request.getfixturevalue("lab")
    artifacts: Path = request.getfixturevalue("artifacts_dir")
    machines: LabMachines = request.getfixturevalue("machines")
    yield
    # the suite's own cost, split: time waiting on node commands vs everything else
    spent = time.monotonic() - call_start
    probes = min(command_log.seconds_since(start), spent)
    request.node.user_properties.append(("probes-s", round(probes, 3)))
    request.node.user_properties.append(("checks-s", round(spent - probes, 3)))
    tag = request.getfixturevalue("worker_tag")
    with (artifacts / f"commands-{tag}.tsv").open("a") as times:
        times.writelines(  # every node command's time: where the suite waits
            f"{request.node.nodeid}\t{line}\n" for line in command_log.timings_since(start)
        )
    reports = request.node.stash.get(REPORTS, {})
    if not any(r.failed for r in reports.values()):
        return
    bundle = artifacts / "failures" / request.node.nodeid.replace("/", "_").replace("::", "__")
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "commands.log").write_text(redact("\n".join(command_log.entries[start:])))
    for phase, rep in reports.items():
        if rep.failed:
            (bundle / f"{phase}-failure.txt").write_text(redact(rep.longreprtext))
    write_node_state(machines, bundle, prefix="node-")
    (bundle / "lab.json").write_text(json.dumps({"lab": lab.name, "source": lab.source}))
