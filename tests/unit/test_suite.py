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


def test_the_controller_of_a_parallel_run_knows_it_when_the_suite_session_is_made(
    tmp_path: Path,
) -> None:
    """Our pytest_configure runs before xdist registers its session plugin: asked there, a
    `-n 2` controller must know it is one (it then shares its agents and containerd forwards
    with the workers), its workers and a `-n 0` run must not."""
    (tmp_path / "conftest.py").write_text(
        "import os, pytest\n"
        "from app.pytest_plugin import is_parallel_controller\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_configure(config):\n"
        "    who = getattr(config, 'workerinput', {}).get('workerid', 'controller')\n"
        "    with open(os.path.join(os.environ['OUT'], who), 'w') as f:\n"
        "        f.write(str(is_parallel_controller(config)))\n"
    )
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert True\n")
    for workers, expected in (
        ("2", {"controller": "True", "gw0": "False", "gw1": "False"}),
        ("0", {"controller": "False"}),
    ):
        out = tmp_path / f"out-{workers}"
        out.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", workers, "-p", "no:cacheprovider",
             "-p", "no:randomly", str(tmp_path / "test_x.py")],
            cwd=tmp_path, env={**os.environ, "OUT": str(out)}, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert {p.name: p.read_text() for p in out.iterdir()} == expected, f"-n {workers}"
