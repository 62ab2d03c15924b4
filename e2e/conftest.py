"""Fixtures of the e2e suite: the workload drivers a lab supports (each test that takes `driver`
runs once per driver, its id saying which: `[cni]`, `[k8s]`, `[cri]`), a fleet of pods per node and
driver (e2e/fleets.py), per-test pods that are removed even when the test fails, and a
diagnostics bundle for every failed test. Everything is parametrized from the lab definition
(the suite session's, e2e/suite.py), never from live state. The lab's lifecycle in a run (attach
or create, the controller's shared connections, the fleets' removal, destroy) is the lab
plugin's (app/pytest_plugin.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import scenarios
from e2e.diagnostics import write_node_state
from e2e.drivers import model_drivers, why_no_driver
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
from e2e.drivers.cri import CriDriver
from e2e.fleets import Drivers, Fleet, Fleets, fleet_drivers, run_layout
from e2e.suite import Suite, suite_lab, suite_of
from lab.common.redact import redact
from lab.hosts.machines import LabMachines
from lab.model.config import Lab

NEEDS_LAB = "needs a lab: pass --lab LAB (e.g. --lab ci-debian12) or set NETLAB_LAB"


def pytest_configure(config: pytest.Config) -> None:
    lab = suite_lab(config)
    if lab is not None:
        try:
            slots = scenarios.fleet_slots(lab, config.getoption("--pods-per-node"))
            model_drivers(lab, config.getoption("--drivers"))
            run_layout(lab, slots)  # the run's Services fit the lab's service CIDR and ports
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config) -> Suite:
    """This process's suite session (the lab, the run id, the artifacts folder)."""
    made = suite_of(pytestconfig)
    if made is None:
        pytest.skip(NEEDS_LAB)
    return made


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    lab = suite_lab(metafunc.config)
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


def run_first(item: pytest.Item) -> int:
    """0: a test that makes pods of its own; 1: one marked `long`; 2: the others."""
    if any(f in OWN_PODS for f in getattr(item, "fixturenames", ())):
        return 0
    return 1 if item.get_closest_marker("long") else 2


@pytest.hookimpl(trylast=True)  # after any reordering plugin: a stable sort keeps its order
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that make pods of their own are the longest: they go first (they need no fleet:
    they run while it is made), then the fleet's tests marked `long`, so that workers do not
    start them last, one after another, while the nodes idle (every worker sorts alike).
    Disruptive tests run only when asked for (`-m disruptive`), serially, as the nightly
    does; a plain `pytest e2e -n 4` reports them as skipped with that reason."""
    items.sort(key=run_first)
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
def node_runner(
    suite: Suite, machines: LabMachines, command_log: CommandLog
) -> Iterator[NodeRunner]:
    """This process's way onto the nodes, shared by its drivers: serving agents (the
    controller's, through its hub, in a parallel run), started at once in the background
    (while the fleet is made or awaited)."""
    python = node_python(suite.lab)
    runner = NodeRunner(machines.channels(), command_log, python=python, hub=suite.hub)
    runner.warm()
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def drivers(suite: Suite, node_runner: NodeRunner, command_log: CommandLog) -> Iterator[Drivers]:
    first = suite.worker in ("main", "gw0")  # sweeps each driver's pods of earlier runs
    registry = Drivers(
        suite.lab, node_runner, suite.run_id, command_log, first, forwards=suite.forwards
    )
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


@pytest.fixture(scope="session")
def fleets(
    lab: Lab,
    drivers: Drivers,
    artifacts_dir: Path,
    pytestconfig: pytest.Config,
    record_testsuite_property: Callable[[str, object], None],
) -> Iterator[Fleets]:
    slots = scenarios.fleet_slots(lab, pytestconfig.getoption("--pods-per-node"))
    layout = run_layout(lab, slots)
    made = Fleets(drivers, slots, artifacts_dir, record_testsuite_property, layout)
    yield made
    made.close()


@pytest.fixture(scope="session")
def fleet(driver: Driver[Any], fleets: Fleets, request: pytest.FixtureRequest) -> Fleet:
    """The run's shared pods of this driver: `--pods-per-node` on every node, each running the
    driver's echo server. Made once, by the first worker that needs any fleet (every driver's
    at once), used read-only by every test, removed by the controller at the end."""
    fleets.start(fleet_drivers(request.session.items))
    return fleets.get(driver.name)


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
