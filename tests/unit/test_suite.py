"""The suite's session (e2e/suite.py): the lab file is read once per pytest process, the
controller hands its workers the run through xdist's workerinput, never the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2e.suite import Suite
from lab.model.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]


def test_the_lab_file_is_read_once_per_pytest_process(tmp_path: Path) -> None:
    """Collection (xdist collects in one process with --collect-only) and every hook and
    fixture that needs the lab: one read. A worker reads it once too, in its own process."""
    env = {**os.environ, "NETLAB_READS_DIR": str(tmp_path)}
    env.pop("NETLAB_LAB", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "e2e",
            "--collect-only",
            "-q",
            "-n",
            "0",
            "--lab",
            "ci-debian12",
            "-p",
            "tests.unit.read_counter",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    reads = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("reads-*.json"))]
    assert reads == [["ci-debian12.yaml"]]


def test_a_worker_is_handed_the_run_not_the_environment() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    controller = Suite(lab, "r123456", Path("/a/r123456"), "controller", worker="controller")
    controller.hub, controller.forwards = "/tmp/nl-hub-x", "/tmp/nl-cri-y"
    handed = controller.for_worker()
    assert all(isinstance(v, str) for v in handed.values()), "execnet carries plain values"
    worker = Suite.of_worker(lab, {**handed, "workerid": "gw1"})
    assert (worker.run_id, worker.artifacts, worker.hub, worker.forwards, worker.worker) == (
        "r123456",
        Path("/a/r123456"),
        "/tmp/nl-hub-x",
        "/tmp/nl-cri-y",
        "gw1",
    )
    assert worker.role == "worker"
    assert worker.shared is None, "the shared connections stay the controller's"
