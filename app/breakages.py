"""`python -m lab breakages LAB`: the breakage catalogue (e2e/breakages.py) on a live lab.

On the running lab (or, when none runs or `--instance` asks, an instance of its own brought up
and provisioned as the nightly does): a snapshot, the suite once on the healthy lab (what
fails there is left out of every judgement), then for each breakage that applies: the facts
its undo needs, inject, the e2e suite (`pytest e2e -n 4`, its JUnit XML), undo, and a health
check (the nodes' pod-network state, e2e/hostnet.py, and on tunnel labs the tunnel's) that,
when the undo left something, provisions again and at last restores the snapshot. Every wait
is bounded and named; each breakage's artifacts (the suite's log, JUnit, failure bundles,
what was run on the nodes) go under ARTIFACTS/<id>/; the detection matrix goes to
breakages.{txt,json,html} (the HTML is a section the nightly report includes)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from app import breakage_report as br
from app.preflight import expect_free_libvirt_subnets
from e2e import breakages as cat
from e2e import hostnet
from lab.adapters import local
from lab.common.commands import render_remote
from lab.common.errors import CommandFailed
from lab.common.redact import redact
from lab.hosts.machines import LabMachines, new_instance
from lab.model import paths
from lab.model.config import Lab
from lab.podnet import backend_of, tunnel

console = Console(stderr=True, highlight=False)

SNAPSHOT = "netlab-breakages"
SUITE_BOUND_S = 900.0  # one e2e pass on a broken lab (TCG: ~1 min healthy; timeouts add up)
STEP_BOUND_S = 120.0  # one inject or undo command on a node
SNAPSHOT_BOUND_S = 900.0
PLUGIN = "e2e.breakage_plugin"


class Unhealthy(RuntimeError):
    """The lab could not be made healthy again: later breakages would be judged on a broken
    lab, so the run stops."""


@dataclass
class Run:
    machines: LabMachines
    artifacts: Path
    workers: int
    snapshot: bool
    started: float
    files: tuple[str, ...] = ("e2e",)  # what each suite pass runs

    @property
    def lab(self) -> Lab:
        return self.machines.lab

    def say(self, message: str) -> None:
        console.print(
            f"[dim]{time.monotonic() - self.started:7.1f}s[/dim] {message}",
            highlight=False,
            soft_wrap=True,
        )

    # -- nodes -----------------------------------------------------------------------------

    def facts(self) -> cat.Facts:
        found = {}
        for name, channel in self.machines.channels().items():
            _, outputs = channel.probe(cat.probe_facts_commands(self.lab), timeout=60)
            stdout = tuple(o.stdout for o in outputs)
            found[name] = cat.parse_facts(self.lab, (stdout[0], stdout[1], stdout[2], stdout[3]))
        return cat.Facts(found)

    def apply(self, steps: Sequence[cat.Step], log: Path, check: bool = True) -> list[str]:
        """Run each (node, command); every command and its outcome to `log`; the failures
        (raised with `check`, else returned)."""
        errors = []
        channels = self.machines.channels()
        with log.open("a") as out:
            for node, command in steps:
                line = render_remote(command)
                self.say(f"  {node}$ {line}")
                res = channels[node].run(command, timeout=STEP_BOUND_S, check=False)
                out.write(f"[{node}] $ {line}\n[exit {res.exit_code}]\n{res.stdout}{res.stderr}\n")
                if res.exit_code != 0:
                    msg = f"{node}: `{line}` exited {res.exit_code}: {res.stderr.strip()[-300:]}"
                    if check:
                        raise CommandFailed(msg, res.exit_code, res.stdout, res.stderr)
                    errors.append(msg)
        return errors

    def health(self) -> list[str]:
        """What a node holds that breaks the pod network (empty: healthy)."""
        problems = []
        for name, channel in self.machines.channels().items():
            _, outputs = channel.probe(hostnet.probe_commands(self.lab), timeout=60)
            node = self.lab.node(name)
            state = hostnet.parse_node_state(outputs, hostnet.arrival_device(self.lab))
            problems += [f"{name}: {p}" for p in hostnet.node_problems(self.lab, node, state)]
            if backend_of(self.lab).programs_tunnel:
                _, outs = channel.probe(tunnel.probe_tunnel_state(), timeout=60)
                tstate = tunnel.parse_tunnel_state(*(o.stdout if o.ok else "" for o in outs))
                problems += tunnel.tunnel_problems(self.lab, node, tstate)
        return problems

    def reprovision(self) -> int:
        from provision.run import run_provision

        return sum(r.commands for r in run_provision(self.machines))

    def make_healthy(self, why: str) -> str:
        """The lab healthy again, or Unhealthy: as it is, else provisioned again, else the
        snapshot restored. Says how."""
        problems = self.health()
        if not problems:
            return "undo"
        self.say(f"  [yellow]not healthy after {why}[/yellow]: {'; '.join(problems)[:600]}")
        applied = self.reprovision()
        problems = self.health()
        if not problems:
            return f"provisioned again ({applied} commands)"
        if self.snapshot:
            self.say(f"  restoring snapshot {SNAPSHOT}: {'; '.join(problems)[:300]}")
            self.machines.snapshot_restore(SNAPSHOT)
            problems = self.health()
            if not problems:
                return "snapshot restored"
        raise Unhealthy(f"the lab stays broken after {why}: {'; '.join(problems)}")

    # -- the suite -------------------------------------------------------------------------

    def suite(self, out: Path, mutant: str = "") -> tuple[list[br.TestResult], str]:
        """The e2e suite on the lab, bounded; its results from its JUnit XML and a word on how
        it ended."""
        out.mkdir(parents=True, exist_ok=True)
        junit = out / "junit.xml"
        # fmt: off
        argv = [
            sys.executable, "-m", "pytest", *self.files, "--lab", self.lab.name, "--lab-mode",
            "attach", "--artifacts", str(out), "--junitxml", str(junit), "-m",
            "not disruptive", "-p", "no:cacheprovider", "-p", PLUGIN, "-q",
            "-n", str(self.workers),
        ]
        # fmt: on
        env = {"NETLAB_BREAKAGE": mutant} if mutant else {}
        start = time.monotonic()
        try:
            res = local.stream(
                argv,
                timeout=SUITE_BOUND_S,
                log_file=out / "pytest.log",
                merge_stderr=True,
                env=env,
                cwd=str(paths.REPO),
                stop_signal=signal.SIGINT,
                reproduce=(f"NETLAB_BREAKAGE={mutant} " if mutant else "") + shlex.join(argv),
                check=False,
            )
            ended = f"exit {res.exit_code}"
        except CommandFailed as exc:  # the bound: SIGINT, then SIGKILL
            ended = f"ran past its {SUITE_BOUND_S:.0f}s bound (exit {exc.exit_code})"
        ended += f" in {time.monotonic() - start:.0f}s"
        if not junit.exists():
            return [], ended + "; no JUnit XML"
        return br.parse_junit_results(junit.read_text()), ended

    # -- one breakage ----------------------------------------------------------------------

    def one(self, b: cat.Breakage, noisy: Sequence[str]) -> br.Outcome:
        out = self.artifacts / b.id
        out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        facts = self.facts()
        inject = cat.plan_inject(b, self.lab, facts)
        undo = cat.plan_undo(b, self.lab, facts)
        (out / "plan.txt").write_text(
            "inject:\n"
            + "".join(f"  [{n}] {render_remote(c)}\n" for n, c in inject)
            + "undo:\n"
            + "".join(f"  [{n}] {render_remote(c)}\n" for n, c in undo)
            + (f"suite mutant: NETLAB_BREAKAGE={b.mutant}\n" if b.mutant else "")
            + f"then: {b.restore}\n"
        )
        try:
            self.apply(inject, out / "nodes.log")
        except CommandFailed as exc:
            self.apply(undo, out / "nodes.log", check=False)
            restored = self.make_healthy(f"{b.id}'s failed injection")
            return br.Outcome(
                b.id,
                b.title,
                b.source,
                "inject-failed",
                detail=redact(str(exc))[:500],
                seconds=time.monotonic() - start,
                restored=restored,
                detectable=b.detectable,
            )
        results, ended = self.suite(out, b.mutant)
        self.say(f"  suite: {ended}; {sum(r.failed for r in results)} failed")
        errors = self.apply(undo, out / "nodes.log", check=False)
        if b.restore == "reprovision":
            self.say(f"  provisioned again: {self.reprovision()} commands")
        elif b.restore == "snapshot" and self.snapshot:
            self.machines.snapshot_restore(SNAPSHOT)
        restored = self.make_healthy(f"{b.id}'s undo")
        if not results:
            return br.Outcome(
                b.id,
                b.title,
                b.source,
                "suite-failed",
                detail=ended,
                seconds=time.monotonic() - start,
                restored=restored,
                detectable=b.detectable,
            )
        outcome = br.judge(b, self.lab, results, noisy, time.monotonic() - start, restored)
        if errors:
            return dataclasses.replace(outcome, detail=("undo: " + "; ".join(errors))[:500])
        return outcome


def lab_running(machines: LabMachines) -> bool:
    try:
        states = machines.states()
    except CommandFailed:
        return False
    return bool(states) and all(s.state == "running" for s in states.values())


def run_breakages(
    definition: Lab,
    artifacts: Path,
    only: Sequence[str] = (),
    workers: int = 4,
    instance: bool = False,
    keep: bool = False,
    snapshot: bool = True,
    subset: bool = False,
) -> br.Report:
    """The catalogue on the running lab, or on an instance of its own (brought up,
    provisioned, and destroyed at the end unless `keep`)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in cat.applicable(definition) if not only or b.id in only]
    unknown = sorted(set(only) - set(cat.by_id()))
    if unknown:
        raise ValueError(f"no breakage {', '.join(unknown)}; known: {', '.join(cat.by_id())}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    machines = LabMachines(definition, log_tag="breakages")
    machines.prepare(box=False)
    created = instance or not lab_running(machines)
    if created:
        lab = new_instance(definition, "b" + secrets.token_hex(3))
        machines = LabMachines(lab, log_tag="breakages")
    # the files named that this checkout has (the Service tests may not be here yet)
    named = [f for f in cat.suite_files(chosen) if (paths.REPO / f).exists()]
    files = tuple(named) if subset and named else ("e2e",)
    run = Run(machines, artifacts, workers, snapshot, time.monotonic(), files)
    report = br.Report(definition.name, stamp, commit=_commit())
    try:
        report.baseline_failed = start(run, created, definition)
        for i, b in enumerate(chosen, 1):
            run.say(f"[bold][{i}/{len(chosen)}] {b.id}[/bold]: {b.title}")
            outcome = run.one(b, report.baseline_failed)
            report.outcomes.append(outcome)
            run.say(f"  -> {br.verdict_word(outcome)} ({len(outcome.failed)} tests failed)")
            write(report, artifacts)
    except Unhealthy as exc:
        report.outcomes.append(br.Outcome("(run stopped)", "", "", "suite-failed", detail=str(exc)))
        run.say(f"[red]{exc}[/red]")
    finally:
        write(report, artifacts)
        if created and not keep:
            run.say(f"destroying {machines.lab.name}")
            machines.destroy()
        elif snapshot and not created:
            _quietly(lambda: machines.snapshot_delete(SNAPSHOT))
    return report


def start(run: Run, created: bool, definition: Lab) -> tuple[str, ...]:
    """The lab up (an instance: brought up and provisioned), its snapshot, its health, and
    the suite's baseline: the tests that fail on the healthy lab."""
    machines = run.machines
    if created:
        run.say(f"bringing up {machines.lab.name}, an instance of {definition.name}")
        machines.prepare()
        expect_free_libvirt_subnets(machines.lab, machines.libvirt)
        run.say(f"up in {machines.up():.0f}s; provisioning")
        run.say(f"provisioned: {run.reprovision()} commands")
    else:
        run.say(f"attached to the running lab {definition.name}")
    if run.snapshot:
        run.say(f"snapshot {SNAPSHOT}")
        try:
            machines.snapshot_save(SNAPSHOT)
        except CommandFailed as exc:  # the run goes on, without the last resort
            run.snapshot = False
            run.say(f"[yellow]no snapshot ({exc}): a breakage its undo cannot heal stops the run")
    before = run.health()
    if before:
        raise Unhealthy(f"the lab is not healthy before any breakage: {'; '.join(before)}")
    run.say("the suite on the healthy lab (baseline)")
    baseline, ended = run.suite(run.artifacts / "baseline")
    failed = tuple(r.nodeid for r in baseline if r.failed)
    run.say(f"  baseline: {ended}; {len(baseline)} tests, {len(failed)} failed")
    if not baseline:
        raise Unhealthy(f"the baseline suite produced no results ({ended})")
    return failed


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except CommandFailed as exc:
        console.print(f"[yellow]{exc}[/yellow]")


def _commit() -> str:
    try:
        res = local.run(["git", "-C", str(paths.REPO), "rev-parse", "--short", "HEAD"], timeout=30)
        return res.stdout.strip()
    except (OSError, CommandFailed):
        return ""


def write(report: br.Report, artifacts: Path) -> None:
    (artifacts / "breakages.txt").write_text(br.render_text(report))
    (artifacts / "breakages.json").write_text(br.render_json(report))
    section = br.render_html_section(report)
    (artifacts / "breakages.html").write_text(section)
    (artifacts / "breakages-page.html").write_text(br.render_html_page(report))


def default_artifacts(lab: Lab) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return paths.REPO / ".artifacts" / "breakages" / f"{lab.name}-{stamp}"
