"""The suite's shared pods (e2e/conftest.py Fleets): every driver's fleet started at once, made
by exactly one process of a parallel run under a file lock and loaded by the others, and a
failure to make them reported to the test that waits, not hidden."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from e2e import conftest
from e2e.drivers.base import Container, Pod, PodRequest

SLOTS = [("node1", 0), ("node2", 0)]


@dataclass
class PodMaker:
    """A driver that makes pods as fast as a dict (records every request, can fail)."""

    name: str
    made: list[str] = field(default_factory=list)
    fail: bool = False
    protocols: tuple[str, ...] = ("tcp",)  # no readiness probes: the first cells are

    def fleet_containers(self, index: int = 0) -> tuple[Container, ...]:
        return (Container("echo", ("echo-server",)),)

    def create_pods(self, requests: Sequence[PodRequest]) -> list[Pod[None]]:
        if self.fail:
            raise RuntimeError(f"{self.name}: 1 of 2 pod(s) did not start")
        self.made += [r.name for r in requests]
        return [
            Pod(r.name, r.node, IPv4Address("10.244.0.2"), r.containers, None) for r in requests
        ]

    def dump_pod(self, pod: Pod[None]) -> dict[str, Any]:
        return {"name": pod.name, "node": pod.node}

    def load_pod(self, data: dict[str, Any]) -> Pod[None]:
        return Pod(data["name"], data["node"], IPv4Address("10.244.0.2"), (), None)


class Registry:
    """conftest.Drivers' interface: one PodMaker per name (shared between "processes" here)."""

    def __init__(self, makers: dict[str, PodMaker]) -> None:
        self.makers = makers
        self.run_id = "r1"

    def get(self, name: str) -> PodMaker:
        return self.makers[name]


def fleets(makers: dict[str, PodMaker], artifacts: Path) -> conftest.Fleets:
    recorded: list[tuple[str, object]] = []
    made = conftest.Fleets(Registry(makers), SLOTS, artifacts, lambda k, v: recorded.append((k, v)))  # type: ignore[arg-type]
    return made


def test_every_fleet_is_made_once_and_the_other_processes_load_it(tmp_path: Path) -> None:
    makers = {"cni": PodMaker("cni"), "cri": PodMaker("cri")}
    workers = [fleets(makers, tmp_path) for _ in range(4)]
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def worker(f: conftest.Fleets) -> None:
        f.start(["cni", "cri"])  # the first test of any kind starts every fleet
        got = {name: f.get(name) for name in ("cri", "cni")}
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker, args=(f,)) for f in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for f in workers:
        f.close()
    assert makers["cni"].made == ["nl-r1-cni-node1-p0", "nl-r1-cni-node2-p0"]
    assert makers["cri"].made == ["nl-r1-cri-node1-p0", "nl-r1-cri-node2-p0"]
    assert len(results) == 4
    for got in results:
        assert {s: p.name for s, p in got["cri"].items()} == {
            ("node1", 0): "nl-r1-cri-node1-p0",
            ("node2", 0): "nl-r1-cri-node2-p0",
        }
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fleet-cni.json", "fleet-cni.lock", "fleet-cri.json", "fleet-cri.lock",
    ]  # fmt: skip


def test_a_fleet_that_could_not_be_made_fails_the_waiting_test_and_the_next_process_retries(
    tmp_path: Path,
) -> None:
    maker = PodMaker("cri", fail=True)
    first, second = fleets({"cri": maker}, tmp_path), fleets({"cri": maker}, tmp_path)
    with pytest.raises(RuntimeError, match="cri: 1 of 2 pod"):
        first.get("cri")
    maker.fail = False
    assert [p.name for p in second.get("cri").values()] == [
        "nl-r1-cri-node1-p0",
        "nl-r1-cri-node2-p0",
    ]
    first.close()
    second.close()


def item(params: dict[str, Any] | None, fixtures: Sequence[str]) -> Any:
    callspec = SimpleNamespace(params=params) if params is not None else None
    return SimpleNamespace(callspec=callspec, fixturenames=list(fixtures))


def test_the_fleets_a_collection_uses_in_first_use_order() -> None:
    items = [
        item({"driver": "cni"}, ["lab", "make_pods"]),  # pods of its own: no fleet
        item(None, ["lab", "fleet"]),  # not parametrized: no driver to tell
        item({"driver": "cri"}, ["fleet", "driver"]),
        item({"driver": "cni", "slot": ("node1", 0)}, ["fleet", "driver"]),
        item({"driver": "cri"}, ["fleet", "driver"]),
    ]
    assert conftest.fleet_drivers(items) == ["cri", "cni"]  # type: ignore[arg-type]
