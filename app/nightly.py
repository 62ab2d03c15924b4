"""`make nightly LAB=...`: sweep -> up -> provision -> snapshot -> e2e (parallel) ->
disruptive (serial) -> artifacts -> destroy. Every stage is bounded and timed; the exit code is
0 only when every stage passed; the runner is left with nothing of the lab in libvirt."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from app import history as hist
from app.history_page import render_index, render_since_green
from app.live import NodeLines
from app.preflight import expect_free_libvirt_subnets
from app.summary import NightlyReport, StageResult, parse_junit, render_html
from e2e import perf, report
from e2e.diagnostics import write_node_state
from e2e.drivers import FAITHFUL_FIRST
from e2e.drivers.cni import CniDriver
from lab.adapters import local
from lab.adapters.host import probe_cpu_sample
from lab.adapters.local import run
from lab.common.commands import cmd
from lab.common.errors import CommandFailed
from lab.common.redact import redact
from lab.hosts import box
from lab.hosts.cpuload import CpuSample, others_share
from lab.hosts.machines import PROVISIONED_SNAPSHOT, LabMachines, new_instance
from lab.model import paths
from lab.model.config import Lab
from lab.model.underlay import machine_names

console = Console(stderr=True, highlight=False)
OVERLAY = "overlay.json"
DEFAULT_HISTORY = paths.REPO / ".artifacts" / "history"
DISRUPTIVE = "disruptive (serial)"  # the stage that runs the faults
VAGRANT_LOG = "logs/vagrant.log"  # vagrant's whole output, relative to the run's artifacts
BREAKAGES_SECTION = "breakages/breakages.html"  # `python -m lab breakages --artifacts A/breakages`


def pytest_stage(
    lab: Lab, out: Path, marker: str, workers: int, timeout_s: float, extra: Sequence[str] = ()
) -> str:
    """Run a pytest pass against the running lab, bounded, its output teed to the console and
    to out/pytest.log (at the bound: SIGINT, so pytest writes its report, then SIGKILL). The
    suite attaches to the instance by its name: its record names the nightly's own lab file
    (a lab given by its path, too), so both read the same addresses."""
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
        "host cpus": str(os.cpu_count()),
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

    def __init__(
        self, label: str, sample: Callable[[], CpuSample] | None = None, cpus: int = 1
    ) -> None:
        self.label = label
        self.results: list[StageResult] = []
        self.failed = False
        self.sample = sample  # the host's CPU, before and after each stage (host_busy)
        self.cpus = cpus

    def _sample(self) -> CpuSample | None:
        if self.sample is None:
            return None
        try:
            return self.sample()
        except (OSError, ValueError):  # /proc unreadable: the stage's time stays unqualified
            return None

    def run(
        self,
        name: str,
        bound_s: float,
        fn: Callable[[], object],
        always: bool = False,
        log: str = "",
    ) -> None:
        """`log`: the stage's log, relative to the run's artifacts (linked from the page)."""
        if self.failed and not always:
            self.results.append(
                StageResult(name, "skipped", 0.0, bound_s, "an earlier stage failed")
            )
            return
        console.rule(f"[bold]nightly {self.label}: {name}[/bold] (bound {bound_s:.0f}s)")
        before = self._sample()
        start = time.monotonic()
        try:
            detail, status = fn(), "ok"
        except Exception as exc:  # noqa: BLE001 (every failure becomes the stage's result)
            detail, status = f"{type(exc).__name__}: {exc}", "failed"
        seconds = time.monotonic() - start
        after = self._sample()
        busy = others_share(before, after, self.cpus) if before and after else None
        if status == "ok" and seconds > bound_s:
            detail, status = f"took {seconds:.0f}s, over its {bound_s:.0f}s bound", "failed"
        self.failed = self.failed or status == "failed"
        self.results.append(
            StageResult(name, status, seconds, bound_s, redact(str(detail or ""))[:2000], log, busy)
        )
        console.print(
            f"  {name}: {status} in {seconds:.1f}s" + (f": {detail}" if status != "ok" else "")
        )


# For testing the history only (never set in CI): a regression left in place on purpose after
# provisioning, so that a nightly shows what the history names since the last green run.
BREAK_ENV = "NETLAB_NIGHTLY_BREAK"
SLOW_BOOT_S = 90
SLOW_BOOT_UNIT = f"""[Unit]
Description=netlab test breakage: a boot {SLOW_BOOT_S} s slower ({BREAK_ENV}=slow-boot)

[Service]
Type=oneshot
ExecStart=/bin/sleep {SLOW_BOOT_S}
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""


def break_on_purpose(machines: LabMachines, what: str) -> str:
    """`slow-boot`: every node boots SLOW_BOOT_S later (a unit that sleeps; `systemctl
    is-system-running` says `starting` until it is done), so the hard reboot's recovery grows,
    and nothing else. `snat`: the first node masquerades its pods' traffic to the others, so
    the cells from its pods to the other nodes' pods fail with NAT."""
    lab = machines.lab
    channels = machines.channels()
    if what == "slow-boot":
        unit = "/etc/systemd/system/netlab-slow-boot.service"
        for node in lab.node_names:
            channels[node].run(cmd("tee", unit, stdin=SLOW_BOOT_UNIT))
            channels[node].run(cmd("systemctl", "enable", "netlab-slow-boot.service"))
            channels[node].run(cmd("sync"))
        return f"every node boots {SLOW_BOOT_S} s slower ({unit})"
    if what == "snat":
        from lab.podnet import node_pod_subnets

        first = lab.node_names[0]
        rule = ("-s", str(node_pod_subnets(lab)[first]), "-o", lab.vm.private_nic)
        channels[first].run(
            cmd("iptables", "-t", "nat", "-I", "POSTROUTING", *rule, "-j", "MASQUERADE")
        )
        return f"{first} masquerades its pods' traffic to the other nodes"
    raise ValueError(f"{BREAK_ENV}={what!r}: unknown; use slow-boot or snat")


def break_if_asked(stages: Stages, machines: LabMachines) -> None:
    """The stage that leaves a regression in place, when BREAK_ENV asks for one."""
    what = os.environ.get(BREAK_ENV, "")
    if what:
        stage = f"{hist.BROKEN_ON_PURPOSE} ({what})"
        stages.run(stage, 300, lambda: break_on_purpose(machines, what))


@dataclass(frozen=True)
class NightlyResult:
    report: NightlyReport
    record: hist.RunRecord
    since: hist.SinceGreen  # this run against the last green run of its lab
    history: Path  # the history folder the record and the index went to


def run_nightly(
    definition: Lab, artifacts: Path, workers: int = 4, history: Path = DEFAULT_HISTORY
) -> NightlyResult:
    """The nightly on an instance of the lab of its own (lab/model/instance.py): a lab a
    person runs from the lab file, or another nightly's instance, is never touched. Its
    record goes to the history under the lab's own name (every night's instance differs)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    started = now.strftime("%Y-%m-%d %H:%M:%S UTC")
    lab = new_instance(definition, "n" + secrets.token_hex(3))
    lines = NodeLines(machine_names(lab), console, f"{lab.name} up")  # the router's too
    machines = LabMachines(lab, on_line=lines, log_tag="nightly")
    guests = tuple(machines.domain(n) for n in machine_names(lab))  # a router is the lab's
    stages = Stages(definition.name, lambda: probe_cpu_sample(guests), os.cpu_count() or 1)
    stage = stages.run
    others: dict[str, str] = {}  # every other lab's running domain -> its UUID, before

    def sweep() -> str:
        machines.prepare()
        others.update(running_others(machines))
        swept = machines.sweep()  # the instance's record stays: the suite finds it by it
        return f"instance {lab.name} (private {lab.network.private}); removed: {swept}"

    def up() -> str:
        expect_free_libvirt_subnets(lab, machines.libvirt)  # before any VM exists
        with lines:
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

    try:
        stage("sweep", 300, sweep)
        stage("up", lab.vm.boot_timeout_s + 300, up, log=VAGRANT_LOG)
        stage("provision", 1800, provision, log="logs/")
        break_if_asked(stages, machines)
        stage(
            "snapshot", 300, lambda: machines.snapshot_save(PROVISIONED_SNAPSHOT), log=VAGRANT_LOG
        )
        stage(
            "e2e (parallel)",
            1800,
            lambda: pytest_stage(  # every driver's pods, the stand-ins too
                lab, artifacts / "e2e", "not disruptive", workers, 1800, ("--drivers", "all")
            ),
            log="e2e/pytest.log",
        )
        stage(
            DISRUPTIVE,
            2400,
            lambda: pytest_stage(lab, artifacts / "disruptive", "disruptive", 0, 2400),
            log="disruptive/pytest.log",
        )
        stage("overlay cost", 900, lambda: overlay_stage(machines, artifacts))
        stage("artifacts", 600, artifacts_stage, always=True)
        stage("destroy", 600, destroy, always=True, log=VAGRANT_LOG)
    except KeyboardInterrupt:  # this run's instance goes; a person's lab is never touched
        machines.destroy()
        raise
    return finish(lab, artifacts, started, stages.results, history, now)


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


def read_matrices(artifacts: Path) -> dict[str, dict[str, object]]:
    """Every matrix the passes wrote: "<pass>/<file stem>" -> its JSON."""
    found = {}
    for suite in ("e2e", "disruptive"):
        for path in sorted(report.matrix_dir(artifacts / suite).glob("*.json")):
            found[f"{suite}/{path.stem}"] = json.loads(path.read_text())
    return found


def load_history(folder: Path) -> tuple[list[hist.RunRecord], list[str]]:
    """Every record in the history folder, and the files that are not one (with why)."""
    records, skipped = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(hist.parse_record(json.loads(path.read_text())))
        except (OSError, ValueError) as exc:  # RecordError and JSONDecodeError are ValueErrors
            skipped.append(f"{path.name}: {exc}")
    return records, skipped


def write_index(folder: Path) -> tuple[Path, list[hist.SinceGreen]]:
    """The history's index.html from every record in it; each lab's newest run against its
    last green run."""
    records, skipped = load_history(folder)
    index = folder / "index.html"
    index.write_text(render_index(records, skipped))
    latest = hist.latest_per_lab(records).values()
    return index, [hist.since_last_green(records, r) for r in latest]


def runner_paths(artifacts: Path, relative_to: str) -> dict[str, str]:
    """The runner's absolute folders, and what stands for them in a page or a record."""
    return {
        str(artifacts): relative_to,
        str(paths.REPO): "",
        str(Path.home()): "~/",
    }


def finish(
    lab: Lab,
    artifacts: Path,
    started: str,
    stages: list[StageResult],
    history: Path = DEFAULT_HISTORY,
    now: dt.datetime | None = None,
) -> NightlyResult:
    """The run's page, its record in the history, and the history's index."""
    cases = []
    for suite in ("e2e", "disruptive"):
        junit = artifacts / suite / "junit.xml"
        if junit.exists():
            cases += parse_junit(junit.read_text(), suite)
    faults_file = artifacts / "disruptive" / "faults.json"
    faults = json.loads(faults_file.read_text()) if faults_file.exists() else []
    overlay = artifacts / OVERLAY
    costs = json.loads(overlay.read_text()) if overlay.exists() else []
    heatmaps, texts = {}, {}
    for suite in ("e2e", "disruptive"):
        for png in report.render_matrices(artifacts / suite):
            title = f"{suite}: {png.stem}"
            heatmaps[title] = base64.b64encode(png.read_bytes()).decode()
            texts[title] = png.with_suffix(".txt").read_text()
    found_versions = versions(lab)
    history.mkdir(parents=True, exist_ok=True)
    from_history = os.path.relpath(artifacts, history)
    record = hist.build_record(
        run=artifacts.name,
        lab=lab.definition or lab.name,  # the instance is new each night; the lab is not
        started=(now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        artifacts=from_history,
        stages=stages,
        cases=cases,
        matrices=read_matrices(artifacts),
        faults=faults,
        overlay=costs,
        versions=found_versions,
        drivers=FAITHFUL_FIRST,
        faults_stage=DISRUPTIVE,
    )
    records, _ = load_history(history)
    since = hist.since_last_green(records, record)
    before = hist.previous(records, record)

    def href(r: hist.RunRecord) -> str:  # a run's page, relative to this run's page
        return os.path.relpath(history / r.page, artifacts)

    links = {"all runs (history)": os.path.relpath(history / "index.html", artifacts)}
    if before is not None:
        links[f"previous run ({'passed' if before.passed else 'failed'})"] = href(before)
    if since.green is not None and since.green is not before:
        links["last green run"] = href(since.green)
    result = NightlyReport(
        lab=lab.definition or lab.name,
        started=started,
        stages=stages,
        cases=cases,
        faults=faults,
        overlay=perf.render_table(perf.from_json(overlay.read_text())) if costs else "",
        versions=found_versions,
        heatmaps=heatmaps,
        matrices=texts,
        links=links,
        drivers=FAITHFUL_FIRST,
        since_green="<section id='since-green'><h2>Since the last green run</h2>"
        + render_since_green(since, lambda r: href(r) if r is not record else "summary.html")
        + "</section>",
        breakages=_read(artifacts / BREAKAGES_SECTION),
    )
    page = hist.relativize(render_html(result), runner_paths(artifacts, ""))
    (artifacts / "summary.html").write_text(page)
    redact_tree(artifacts)
    text = json.dumps(hist.record_to_json(record), indent=1)
    text = hist.relativize(redact(text), runner_paths(artifacts, from_history + "/"))
    (history / f"{record.run}.json").write_text(text + "\n")
    write_index(history)
    return NightlyResult(result, record, since, history)
