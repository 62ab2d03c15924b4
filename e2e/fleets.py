"""The run's workload drivers and shared pods: one driver of each kind per suite process
(`Drivers`), the fleets of pods every network-model test reads (`Fleets`: made once, by the
first worker that needs any, under a file lock; the others load what it saved), and their
removal at the end of the run by the controller (`remove_fleets`), which says what it could not
remove and how to remove it."""

from __future__ import annotations

import fcntl
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from e2e import cluster_services, scenarios, services
from e2e.drivers import drivers_for, make_driver, service_drivers, service_plane
from e2e.drivers.base import CommandLog, Driver, NodeRunner, Pod, PodRequest, Probe
from e2e.drivers.cri import CriDriver
from e2e.probes import Proto
from e2e.suite import Suite
from lab.common import waits
from lab.hosts.machines import LabMachines
from lab.model.config import Lab


class Drivers:
    """This process's workload drivers, one per name, made on first use and shared by every
    fixture that wants one (`driver`, `cri_driver`, `cni_driver`, the fleets): a CRI driver
    holds an SSH socket forward per node, which a second instance would open again. The
    first worker sweeps each driver's pods of earlier runs once."""

    def __init__(
        self,
        lab: Lab,
        runner: NodeRunner,
        run_id: str,
        log: CommandLog,
        sweeps: bool,
        forwards: str = "",
    ) -> None:
        self.lab = lab
        self.runner = runner
        self.run_id = run_id
        self.log = log
        self.sweeps = sweeps
        self.forwards = forwards  # the controller's containerd forwards, in a worker
        self._made: dict[str, Driver[Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Driver[Any]:
        with self._lock:
            if name not in self._made:
                drv = make_driver(name, self.lab, self.runner, self.run_id, self.log, self.forwards)
                if self.sweeps:
                    drv.sweep(keep_prefix=f"nl-{self.run_id}-")
                self._made[name] = drv
            return self._made[name]

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, {}
        for drv in made.values():
            close_driver(drv)


def close_driver(drv: Driver[Any]) -> None:
    """What a driver holds open in this process (the CRI driver's socket forwards)."""
    close = getattr(drv, "close", None)
    if callable(close):
        close()


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
        layout: services.Layout | None = None,
    ) -> None:
        self.drivers = drivers
        self.slots = list(slots)
        self.layout = layout  # the run's Services (a `services` section, or Kubernetes)
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
        layout = self.layout
        plane = service_plane(name, drv.lab) if layout is not None else None
        with locked(self.artifacts / f"fleet-{name}.lock"):
            if path.exists():
                saved = json.loads(path.read_text())
                return {
                    s: drv.load_pod(saved[scenarios.slot_name(run_id, name, s)]) for s in self.slots
                }
            start = time.monotonic()
            requests = scenarios.fleet_requests(drv, run_id, self.slots)
            if plane == "cluster":  # labelled for the cluster's Services to select
                requests = cluster_services.prepare_fleet(drv, requests, self.slots)
            if layout is not None and plane == "rules":  # the cluster DNS's pod, with the fleet
                dns = (services.dns_container(drv, layout),)
                node = services.dns_pod_node(drv.lab.node_names)
                requests.append(PodRequest(services.dns_pod_name(run_id, name), node, dns))
            pods = drv.create_pods(requests)
            path.write_text(json.dumps({p.name: drv.dump_pod(p) for p in pods}))
            fleet = dict(zip(self.slots, pods[: len(self.slots)], strict=True))
            wait_for_echo_servers(drv, list(fleet.values()))
            self.record(f"fleet-{name}-setup-s", round(time.monotonic() - start, 2))
            if layout is not None and plane is not None:
                start = time.monotonic()
                if plane == "cluster":
                    cluster_services.publish(drv, layout, fleet)
                else:
                    publish_services(drv, layout, fleet, pods[-1], self.artifacts)
                self.record(f"services-{name}-setup-s", round(time.monotonic() - start, 2))
            return fleet

    def services(self, name: str) -> services.DriverServices:
        """The driver's Services as the run's state holds them (after its fleet is made); a
        driver whose Services are its cluster's: as the layout places them over its fleet."""
        fleet = self.get(name)
        layout = self.layout
        if layout is None:
            raise ValueError("this run has no Services (its lab has no services section)")
        if service_plane(name, self.drivers.get(name).lab) == "cluster":
            return services.driver_services(layout, name, fleet, None)
        with services.locked_state(self.artifacts) as state:
            made = services.services_from_state(layout, state)
        return next(d for d in made if d.driver == name)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


ECHO_READY = waits.Policy("every fleet pod's echo server answers TCP and UDP", 120, 1)


def wait_for_echo_servers(drv: Driver[Any], pods: Sequence[Pod[Any]]) -> None:
    """A started container is not yet a listening server: the UDP half (a Python) takes its
    time under TCG. Each pod asked from its own node over every protocol its driver answers
    with more than TCP (where TCP alone is answered, the first cells are the readiness)."""
    if set(drv.protocols) <= {"tcp"}:
        return
    cells = [
        Probe(f"ready {p.name}/{proto}", p.node, p, proto=cast(Proto, proto))
        for p in pods
        for proto in drv.protocols
    ]
    waits.wait_until(
        ECHO_READY,
        lambda: drv.observe(cells),
        lambda seen: all(obs.reachable for obs in seen.values()),
    )


DNS_READY = waits.Policy("the cluster DNS pod answers on UDP 53", timeout_s=120, interval_s=1)


def publish_services(
    drv: Driver[Any],
    layout: services.Layout,
    fleet: Fleet,
    dns_pod: Pod[Any],
    artifacts: Path,
) -> None:
    """The driver's Services added to the run's state and every node programmed with the
    whole set (under the state's lock: one sync at a time, as kube-proxy's); then its DNS
    pod awaited (a pod that started is not yet a server that listens)."""
    mine = services.driver_services(layout, drv.name, fleet, dns_pod.ip)
    with services.locked_state(artifacts) as state:
        state[drv.name] = services.state_entry(mine)
        every = services.node_services(services.services_from_state(layout, state), layout)
        services.program(drv.runner, drv.lab, every)
    name = layout.fqdn(services.DNS_NAMESPACE, services.DNS_NAME)
    node = sorted(drv.lab.node_names)[0]
    probe = Probe(
        "dns-ready", node, dns_pod, str(dns_pod.ip), services.DNS_PORT, proto="dns", name=name
    )
    waits.wait_until(
        DNS_READY,
        lambda: drv.observe([probe])["dns-ready"],
        lambda obs: obs.answer.startswith(f"{name} A "),
    )


def run_layout(lab: Lab, slots: Sequence[tuple[str, int]]) -> services.Layout | None:
    """The run's Services (a lab with a `services` section, or with Kubernetes: its cluster's
    service CIDR), from the lab definition."""
    found = cluster_services.lab_services(lab)
    if found is None:
        return None
    return services.allot(found, service_drivers(lab), slots)


def remove_fleets(suite: Suite) -> list[str]:
    """Every driver's fleet removed, over the controller's connections when it holds them
    (a parallel run: no new SSH handshake per node at the end of the run). Returns what the
    runtime still holds of the run, or could not be removed ([] when nothing)."""
    lab, artifacts = suite.lab, suite.artifacts
    files = {name: fleet_file(artifacts, name) for name in drivers_for(lab)}
    saved = {name: path for name, path in files.items() if path.exists()}
    if not saved:
        return []
    shared = suite.shared.machines if suite.shared is not None else None
    machines = shared or LabMachines(lab, log_tag="controller")
    try:
        # every driver's fleet and the Service rules at once (pods and rules do not depend on
        # each other: a rule left without its pod only points at a removed address meanwhile)
        with ThreadPoolExecutor(max_workers=len(saved) + 1) as pool:
            futures = {
                name: pool.submit(delete_fleet, name, path, lab, machines, suite.run_id)
                for name, path in saved.items()
            }
            rules = services.state_file(artifacts)
            unprogrammed = pool.submit(remove_services, lab, machines) if rules.exists() else None
            leaks = []
            for name, future in futures.items():
                try:
                    leaks.append(future.result())
                except Exception as exc:  # noqa: BLE001 (said, with the command that removes it)
                    leaks.append(f"the {name} fleet was not removed ({type(exc).__name__}: {exc})")
            if unprogrammed is not None:
                leaks += unprogrammed.result()
                rules.unlink()
        for name in saved:  # the cluster's Services over a fleet that was made
            if service_plane(name, lab) == "cluster":
                runner = NodeRunner(machines.channels())
                leaks += cluster_services.remove(
                    lab, runner, suite.run_id, services.namespace(name)
                )
    finally:
        if machines is not shared:
            machines.close()
    return [leak for leak in leaks if leak]


def remove_services(lab: Lab, machines: LabMachines) -> list[str]:
    """The kube-proxy-shaped rules gone from every node; what any table still holds."""
    runner = NodeRunner(machines.channels())
    left = runner.on_each_node(
        {n: None for n in lab.node_names}, lambda n, _: services.unprogram_node(runner, n)
    )
    return [
        f"Service rules left on {text} (remove: `python -m lab sweep {lab.name} --pods`)"
        for text in left.values()
        if text
    ]


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


def remove_run(suite: Suite) -> list[str]:
    """Every pod of the run, on every driver the lab supports (after Ctrl-C: the tests' own
    pods as well as the fleets); what is left, per driver."""
    machines = suite.shared.machines if suite.shared is not None else LabMachines(suite.lab)
    left = []
    try:
        for name in drivers_for(suite.lab):
            drv = make_driver(name, suite.lab, machines.channels(), suite.run_id, CommandLog())
            try:
                still = drv.remove_run(suite.run_id)
                left += [f"{name} pod {pod} of run {suite.run_id}" for pod in still]
            finally:
                close_driver(drv)
        if suite.lab.services is not None:
            left += remove_services(suite.lab, machines)
    finally:
        if suite.shared is None:
            machines.close()
    return left


def sweep_pods(machines: LabMachines) -> list[str]:
    """Every pod the suite left on a running lab, of any run, on every driver it supports
    (`python -m lab sweep LAB --pods`: after an interrupted run that could not clean up)."""
    gone = []
    for name in drivers_for(machines.lab):
        drv = make_driver(name, machines.lab, machines.channels(), "sweep", CommandLog())
        try:
            gone += [f"{name}:{pod}" for pod in drv.sweep(keep_prefix="")]
        finally:
            close_driver(drv)
    if machines.lab.services is not None:
        left = remove_services(machines.lab, machines)
        if left:
            raise RuntimeError("; ".join(left))
        gone.append("the kube-proxy-shaped Service rules (if any)")
    return gone
