"""Fixtures of the e2e suite: the workload driver, a fleet of pods per node, per-test pods that
are removed even when the test fails, and a diagnostics bundle for every failed test."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from e2e.diagnostics import write_node_state
from e2e.drivers.base import Container, Pod
from e2e.drivers.cni import CniDriver, CommandLog, echo_server
from lab import paths
from lab.config import Lab
from lab.labfile import load_lab
from lab.machines import LabMachines
from lab.redact import redact

NEEDS_LAB = "needs a lab: pass --lab LAB (e.g. --lab ci-debian12) or set NETLAB_LAB"


def fleet_slots(lab: Lab, pods_per_node: int) -> list[tuple[str, int]]:
    """(node, index) of every fleet pod, from the lab definition: sorted, never live state."""
    return sorted((node, i) for node in lab.node_names for i in range(pods_per_node))


def slot_id(slot: tuple[str, int]) -> str:
    return f"{slot[0]}-p{slot[1]}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    name = metafunc.config.getoption("--lab")
    if not name:
        no_lab = [pytest.param(None, marks=pytest.mark.skip(reason=NEEDS_LAB))]
        for arg in ("slot", "node_name", "node_pair"):
            if arg in metafunc.fixturenames:
                metafunc.parametrize(arg, no_lab)
        return
    lab = load_lab(paths.resolve_lab_path(name))
    if "slot" in metafunc.fixturenames:
        slots = fleet_slots(lab, metafunc.config.getoption("--pods-per-node"))
        metafunc.parametrize("slot", slots, ids=[slot_id(s) for s in slots])
    if "node_name" in metafunc.fixturenames:
        metafunc.parametrize("node_name", sorted(lab.node_names))
    if "node_pair" in metafunc.fixturenames:
        names = sorted(lab.node_names)
        pairs = [(a, b) for a in names for b in names if a != b]
        metafunc.parametrize("node_pair", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Disruptive tests run only when asked for (`-m disruptive`), serially, as the nightly
    does; a plain `pytest e2e -n 4` reports them as skipped with that reason."""
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
def driver(
    lab: Lab, machines: LabMachines, run_id: str, worker_tag: str, command_log: CommandLog
) -> CniDriver:
    drv = CniDriver(lab, machines.channels(), command_log)
    if worker_tag in ("main", "gw0"):
        drv.sweep(keep_prefix=f"nl-{run_id}-")  # leftovers of earlier runs, by name label
    return drv


FLEET = "fleet.json"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pod_to_json(pod: Pod) -> dict[str, object]:
    return {**dataclasses.asdict(pod), "ip": str(pod.ip)}


def pod_from_json(data: dict[str, Any]) -> Pod:
    containers = tuple(
        Container(c["name"], tuple(c["argv"]), c["image"]) for c in data["containers"]
    )
    return Pod(data["name"], data["node"], IPv4Address(data["ip"]), containers, data["details"])


@pytest.fixture(scope="session")
def fleet(
    lab: Lab, driver: CniDriver, run_id: str, artifacts_dir: Path, pytestconfig: pytest.Config
) -> dict[tuple[str, int], Pod]:
    """The run's shared pods: `--pods-per-node` on every node, each running an echo server.
    Made once by the first worker that needs them (under a file lock), used read-only by every
    test, removed by the controller at the end of the session."""
    slots = fleet_slots(lab, pytestconfig.getoption("--pods-per-node"))
    path = artifacts_dir / FLEET
    with locked(artifacts_dir / "fleet.lock"):
        if path.exists():
            saved = json.loads(path.read_text())
            return {(n, i): pod_from_json(saved[slot_id((n, i))]) for n, i in slots}
        pods: dict[tuple[str, int], Pod] = {}
        try:
            with ThreadPoolExecutor(max_workers=len(slots)) as pool:
                made = pool.map(
                    lambda s: driver.create_pod(
                        f"nl-{run_id}-{slot_id(s)}", s[0], (echo_server(),)
                    ),
                    slots,
                )
                pods.update(zip(slots, made, strict=True))
        finally:
            path.write_text(json.dumps({slot_id(s): pod_to_json(p) for s, p in pods.items()}))
        return pods


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) removes the shared pods, before the lab plugin
    destroys a lab it created."""
    config = session.config
    name = config.getoption("--lab")
    if hasattr(config, "workerinput") or not name or "NETLAB_ARTIFACTS" not in os.environ:
        return
    path = Path(os.environ["NETLAB_ARTIFACTS"]) / FLEET
    if not path.exists():
        return
    lab = load_lab(paths.resolve_lab_path(name))
    rt = LabMachines(lab, log_tag="controller")
    driver = CniDriver(lab, rt.channels())
    for data in json.loads(path.read_text()).values():
        driver.delete_pod(pod_from_json(data))
    path.unlink()
    rt.close()


@pytest.fixture
def make_pod(
    driver: CniDriver, run_id: str, worker_tag: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Pod]]:
    """Pods named after the test; removed at teardown even when the test failed."""
    made: list[Pod] = []
    base = request.node.name.split("[")[0].removeprefix("test_")[:20].replace("_", "-")

    def make(node: str, containers: tuple[Container, ...] = ()) -> Pod:
        name = f"nl-{run_id}-{worker_tag}-{base}-{len(made)}"
        pod = driver.create_pod(name, node, containers or (echo_server(),))
        made.append(pod)
        return pod

    yield make
    for pod in made:
        driver.delete_pod(pod)


# --- diagnostics bundle for failed tests ---------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.fixture(autouse=True)
def diagnostics(request: pytest.FixtureRequest, command_log: CommandLog) -> Iterator[None]:
    start = len(command_log.entries)
    if "lab" not in request.fixturenames:
        yield
        return
    lab: Lab = request.getfixturevalue("lab")
    artifacts: Path = request.getfixturevalue("artifacts_dir")
    machines: LabMachines = request.getfixturevalue("machines")
    yield
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
