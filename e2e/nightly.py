"""`make nightly LAB=...`: sweep -> up -> provision -> snapshot -> e2e (parallel) ->
disruptive (serial) -> artifacts -> destroy. Every stage is bounded and timed; the exit code is
0 only when every stage passed; the runner is left with nothing of the lab in libvirt."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from lab import box, paths, report
from lab.adapters.local import STOP_GRACE_S, run, stop_group
from lab.config import Lab
from lab.diagnostics import write_node_state
from lab.lifecycle import PROVISIONED_SNAPSHOT, Runtime
from lab.redact import redact
from lab.summary import NightlyReport, StageResult, parse_junit, render_html

console = Console(stderr=True, highlight=False)


def pytest_stage(
    lab: Lab, out: Path, marker: str, workers: int, timeout_s: float, extra: Sequence[str] = ()
) -> str:
    """Run a pytest pass against the running lab as a bounded subprocess, output teed."""
    out.mkdir(parents=True, exist_ok=True)
    # fmt: off
    argv = [
        sys.executable, "-m", "pytest", "e2e", "--lab", lab.name, "--lab-mode", "attach",
        "--artifacts", str(out), "--junitxml", str(out / "junit.xml"), "-m", marker,
        "-p", "no:cacheprovider", "-rfEs", "-n", str(workers), *extra,
    ]
    # fmt: on
    console.print(f"  $ {shlex.join(argv)}")
    with (
        (out / "pytest.log").open("w") as logf,
        subprocess.Popen(
            argv,
            cwd=paths.REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        ) as proc,
    ):
        # SIGINT at the bound (pytest writes its report and cleans up), SIGKILL after a grace
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            stop_group(proc, signal.SIGINT, STOP_GRACE_S)

        timer = threading.Timer(timeout_s, expire)
        timer.daemon = True
        timer.start()
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                logf.write(line)
                sys.stderr.write(f"    {line}")
            code = proc.wait()
        finally:
            timer.cancel()
        if expired.is_set():
            raise TimeoutError(f"pytest -m '{marker}' ran past its {timeout_s:.0f}s bound")
    if code != 0:
        raise RuntimeError(f"pytest -m '{marker}' exited {code} (log: {out / 'pytest.log'})")
    return f"log: {out / 'pytest.log'}"


def versions(lab: Lab) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            res = run(argv, timeout=60, check=False)
            return (res.stdout or res.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    found = {
        "vagrant": first_line(["vagrant", "--version"]),
        "vagrant-libvirt": next(
            (
                line
                for line in run(
                    ["vagrant", "plugin", "list"], timeout=60, check=False
                ).stdout.splitlines()
                if "libvirt" in line
            ),
            "unknown",
        ),
        "libvirtd": first_line(["libvirtd", "--version"]),
        "qemu": first_line(["qemu-system-x86_64", "--version"]),
        "host kernel": os.uname().release,
        "python": sys.version.split()[0],
        "k8s-netlab commit": first_line(
            ["git", "-C", str(paths.REPO), "rev-parse", "--short", "HEAD"]
        ),
    }
    if lab.vm.box_build:
        found["box inputs"] = box.inputs_key()[:12]
    if lab.kubernetes is not None:
        found["kubernetes (lab)"] = lab.kubernetes.version
    return found


def redact_tree(root: Path) -> None:
    """Last line of defence: no join token or key material survives in any text artifact."""
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".txt", ".log", ".xml", ".json", ".html", ""):
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            cleaned = redact(text)
            if cleaned != text:
                path.write_text(cleaned)


class Stages:
    """Runs stages in order, each timed against its bound. After a failure the remaining
    stages are skipped, except those marked `always` (artifacts, destroy)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.results: list[StageResult] = []
        self.failed = False

    def run(
        self, name: str, bound_s: float, fn: Callable[[], object], always: bool = False
    ) -> None:
        if self.failed and not always:
            self.results.append(
                StageResult(name, "skipped", 0.0, bound_s, "an earlier stage failed")
            )
            return
        console.rule(f"[bold]nightly {self.label}: {name}[/bold] (bound {bound_s:.0f}s)")
        start = time.monotonic()
        try:
            detail, status = fn(), "ok"
        except Exception as exc:  # noqa: BLE001 (every failure becomes the stage's result)
            detail, status = f"{type(exc).__name__}: {exc}", "failed"
        seconds = time.monotonic() - start
        if status == "ok" and seconds > bound_s:
            detail, status = f"took {seconds:.0f}s, over its {bound_s:.0f}s bound", "failed"
        self.failed = self.failed or status == "failed"
        self.results.append(
            StageResult(name, status, seconds, bound_s, redact(str(detail or ""))[:2000])
        )
        console.print(
            f"  {name}: {status} in {seconds:.1f}s" + (f": {detail}" if status != "ok" else "")
        )


def run_nightly(lab: Lab, artifacts: Path, workers: int = 4) -> NightlyReport:
    artifacts.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rt = Runtime(lab, on_line=None, log_tag="nightly")
    stages = Stages(lab.name)
    stage = stages.run

    def sweep() -> str:
        rt.prepare()
        return f"removed: {rt.sweep()}"

    def up() -> str:
        return f"{rt.up():.0f}s"

    def provision() -> str:
        from provision.cli import run_provision

        reports = run_provision(rt)
        return f"{sum(r.commands for r in reports)} commands applied"

    def artifacts_stage() -> str:
        logs = artifacts / "logs"
        if rt.logs.exists():
            shutil.copytree(rt.logs, logs, dirs_exist_ok=True)
        if stages.failed:
            write_node_state(rt, artifacts)
        return f"{sum(1 for _ in artifacts.rglob('*'))} files"

    def destroy() -> str:
        rt.destroy()
        left = rt.leftovers()
        if left:
            raise RuntimeError(f"libvirt still holds: {left}")
        return "libvirt holds nothing of the lab"

    stage("sweep", 300, sweep)
    stage("up", lab.vm.boot_timeout_s + 300, up)
    stage("provision", 1800, provision)
    stage("snapshot", 300, lambda: rt.snapshot_save(PROVISIONED_SNAPSHOT))
    stage(
        "e2e (parallel)",
        1800,
        lambda: pytest_stage(lab, artifacts / "e2e", "not disruptive", workers, 1800),
    )
    stage(
        "disruptive (serial)",
        2400,
        lambda: pytest_stage(lab, artifacts / "disruptive", "disruptive", 0, 2400),
    )
    stage("artifacts", 600, artifacts_stage, always=True)
    stage("destroy", 600, destroy, always=True)
    return finish(lab, artifacts, started, stages.results)


def finish(lab: Lab, artifacts: Path, started: str, stages: list[StageResult]) -> NightlyReport:
    import json

    cases = []
    for suite in ("e2e", "disruptive"):
        junit = artifacts / suite / "junit.xml"
        if junit.exists():
            cases += parse_junit(junit.read_text(), suite)
    faults_file = artifacts / "disruptive" / "faults.json"
    heatmaps, texts = {}, {}
    for suite in ("e2e", "disruptive"):
        for png in report.render_matrices(artifacts / suite):
            title = f"{suite}: {png.stem}"
            heatmaps[title] = base64.b64encode(png.read_bytes()).decode()
            texts[title] = png.with_suffix(".txt").read_text()
    result = NightlyReport(
        lab=lab.name,
        started=started,
        stages=stages,
        cases=cases,
        faults=json.loads(faults_file.read_text()) if faults_file.exists() else [],
        versions=versions(lab),
        heatmaps=heatmaps,
        matrices=texts,
    )
    (artifacts / "summary.html").write_text(render_html(result))
    redact_tree(artifacts)
    return result


def nightly_cmd(lab: Lab, args: argparse.Namespace) -> int:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    artifacts = Path(
        args.artifacts or paths.REPO / ".artifacts" / "nightly" / f"{lab.name}-{stamp}"
    )
    try:
        result = run_nightly(lab, artifacts.resolve(), workers=args.workers)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: destroying the lab before leaving[/yellow]")
        Runtime(lab).destroy()
        raise
    for s in result.stages:
        console.print(f"{s.name:22} {s.status:8} {s.seconds:7.1f}s  (bound {s.bound_s:.0f}s)")
    console.print(f"summary: {artifacts / 'summary.html'}")
    console.print(
        "[green]nightly passed[/green]" if result.exit_code == 0 else "[red]nightly failed[/red]"
    )
    return result.exit_code
