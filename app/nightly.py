"""`make nightly LAB=...`: sweep -> up -> provision -> snapshot -> e2e (parallel) ->
disruptive (serial) -> artifacts -> destroy. Every stage is bounded and timed; the exit code is
0 only when every stage passed; the runner is left with nothing of the lab in libvirt."""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from app.preflight import expect_free_libvirt_subnets
from app.summary import NightlyReport, StageResult, parse_junit, render_html
from e2e import perf, report
from e2e.diagnostics import write_node_state
from e2e.drivers.cni import CniDriver
from lab.adapters import local
from lab.adapters.local import run
from lab.common.errors import CommandFailed
from lab.common.redact import redact
from lab.hosts import box
from lab.hosts.machines import PROVISIONED_SNAPSHOT, LabMachines, new_instance
from lab.model import instance, paths
from lab.model.config import Lab

console = Console(stderr=True, highlight=False)
OVERLAY = "overlay.json"
BREAKAGES_SECTION = "breakages/breakages.html"  # `python -m lab breakages --artifacts A/breakages`


def pytest_stage(
    lab: Lab, out: Path, marker: str, workers: int, timeout_s: float, extra: Sequence[str] = ()
) -> str:
    """Run a pytest pass against the running lab, bounded, its output teed to the console and
    to out/pytest.log (at the bound: SIGINT, so pytest writes its report, then SIGKILL)."""
    out.mkdir(parents=True, exist_ok=True)
    # fmt: off
    argv = [
        sys.executable, "-m", "pytest", "e2e", "--lab", lab.name, "--lab-mode", "attach",
        "--artifacts", str(out), "--junitxml", str(out / "junit.xml"), "-m", marker,
        "-p", "no:cacheprovider", "-rfEs", "-n", str(workers), *extra,
    ]
    # fmt: on
    console.print(f"  $ {shlex.join(argv)}")
    log_file = out / "pytest.log"
    log_file.unlink(missing_ok=True)

    def echo(line: str) -> None:
        sys.stderr.write(f"    {line}\n")

    try:
        local.stream(
            argv,
            timeout=timeout_s,
            on_line=echo,
            log_file=log_file,
            merge_stderr=True,
            cwd=str(paths.REPO),
            stop_signal=signal.SIGINT,
            reproduce=shlex.join(argv),
        )
    except CommandFailed as exc:
        if exc.exit_code is None:
            raise TimeoutError(
                f"pytest -m '{marker}' ran past its {timeout_s:.0f}s bound"
            ) from None
        raise RuntimeError(
            f"pytest -m '{marker}' exited {exc.exit_code} (log: {log_file})"
        ) from None
    return f"log: {log_file}"


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
    if lab.runtime == "containerd":
        from lab.adapters import imagebuild

        found["container images (inputs)"] = imagebuild.inputs_key()[:12]
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


def run_nightly(definition: Lab, artifacts: Path, workers: int = 4) -> NightlyReport:
    """The nightly on an instance of the lab of its own (lab/model/instance.py): a lab a
    person runs from the lab file, or another nightly's instance, is never touched."""
    artifacts.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lab = new_instance(definition, "n" + secrets.token_hex(3))
    machines = LabMachines(lab, on_line=None, log_tag="nightly")
    stages = Stages(definition.name)
    stage = stages.run
    others: dict[str, str] = {}  # every other lab's running domain -> its UUID, before

    def sweep() -> str:
        machines.prepare()
        others.update(running_others(machines))
        # a sweep forgets an instance's record with its machines; this run's instance lives on
        # (the suite finds it by that record), so it is kept across the sweep
        record = machines.state / instance.RECORD
        kept = record.read_text() if record.exists() else None
        swept = machines.sweep()
        if kept is not None:
            record.write_text(kept)
        return f"instance {lab.name} (private {lab.network.private}); removed: {swept}"

    def up() -> str:
        expect_free_libvirt_subnets(lab, machines.libvirt)  # before any VM exists
        return f"{machines.up():.0f}s"

    def provision() -> str:
        from provision.run import run_provision

        reports = run_provision(machines)
        return f"{sum(r.commands for r in reports)} commands applied"

    def artifacts_stage() -> str:
        logs = artifacts / "logs"
        if machines.logs.exists():
            shutil.copytree(machines.logs, logs, dirs_exist_ok=True)
        if stages.failed:
            write_node_state(machines, artifacts)
        return f"{sum(1 for _ in artifacts.rglob('*'))} files"

    def destroy() -> str:
        machines.destroy()
        left = machines.leftovers()
        if left:
            raise RuntimeError(f"libvirt still holds: {left}")
        after = running_others(machines)
        touched = sorted(d for d, uuid in others.items() if after.get(d) != uuid)
        if touched:
            raise RuntimeError(f"other labs' domains stopped or replaced meanwhile: {touched}")
        return (
            f"libvirt holds nothing of {lab.name}; the {len(others)} running domain(s) of "
            "other labs are untouched"
        )

    stage("sweep", 300, sweep)
    stage("up", lab.vm.boot_timeout_s + 300, up)
    stage("provision", 1800, provision)
    stage("snapshot", 300, lambda: machines.snapshot_save(PROVISIONED_SNAPSHOT))
    stage(
        "e2e (parallel)",
        1800,
        lambda: pytest_stage(  # every driver's pods, the stand-ins too
            lab, artifacts / "e2e", "not disruptive", workers, 1800, ("--drivers", "all")
        ),
    )
    stage(
        "disruptive (serial)",
        2400,
        lambda: pytest_stage(lab, artifacts / "disruptive", "disruptive", 0, 2400),
    )
    stage("overlay cost", 900, lambda: overlay_stage(machines, artifacts))
    stage("artifacts", 600, artifacts_stage, always=True)
    stage("destroy", 600, destroy, always=True)
    return finish(lab, artifacts, started, stages.results)


def running_others(machines: LabMachines) -> dict[str, str]:
    """Every running lab domain that is not this instance's: name -> libvirt UUID."""
    found = machines.libvirt.list_lab_objects("netlab-").domains
    names = [d for d in found if not d.startswith(machines.lab.prefix)]
    return {name: dom.uuid for name, dom in machines.libvirt.running_domains(names).items() if dom}


def overlay_stage(machines: LabMachines, artifacts: Path) -> str:
    """What the pod network costs on this lab (iperf3, round trips), for the report."""
    costs = perf.measure(
        CniDriver(machines.lab, machines.channels()), machines.lab, "n" + secrets.token_hex(3)
    )
    (artifacts / OVERLAY).write_text(perf.to_json(costs))
    problems = perf.stop_reason(costs)
    if problems:
        raise RuntimeError("; ".join(problems))
    return ", ".join(f"{c.path}: {c.mbit_s} Mbit/s, p50 {c.p50_us} us" for c in costs)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


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
        lab=lab.definition or lab.name,
        started=started,
        stages=stages,
        cases=cases,
        faults=json.loads(faults_file.read_text()) if faults_file.exists() else [],
        overlay=(
            perf.render_table(perf.from_json((artifacts / OVERLAY).read_text()))
            if (artifacts / OVERLAY).exists()
            else ""
        ),
        versions=versions(lab),
        heatmaps=heatmaps,
        matrices=texts,
        breakages=_read(artifacts / BREAKAGES_SECTION),
    )
    (artifacts / "summary.html").write_text(render_html(result))
    redact_tree(artifacts)
    return result
