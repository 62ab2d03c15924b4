"""The nightly's history (pure): one versioned record per run, built from what the run wrote
(its stages, every JUnit check, every matrix cell, every fault, the overlay's cost), and the
comparison of a run with the last green run of its lab: records in, findings out.

Nothing here reads or writes a file: the nightly (app/nightly.py) and `python -m lab report`
(app/cli.py) do. The record's fields are described in docs/nightly-history.md; a record names
its artifacts by paths relative to the history folder, never by the runner's absolute path."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from app.summary import Case, StageResult, check_parts
from e2e.ledger import LedgerSummary, ledger_line, parse_summary, summary_of

# bumped when a field changes meaning or goes; a new optional field keeps the version
SCHEMA_VERSION = 1

OK_SYMBOLS = frozenset(".x")  # as expected (reached, or unreachable while a fault predicts so)
SYMBOL_MEANING = {
    ".": "as expected",
    "x": "unreachable, as the fault predicts",
    "X": "unreachable",
    "N": "NAT: wrong source",
    "W": "another pod answered",
    "S": "reached after a SYN retransmit",
    "R": "reachable, should not be",
    "?": "not observed",
}

# The run id in every pod name of a pass (`nl-r1a2b3-...`, e2e/suite.py: new_run_id):
# stripped, so that the same cell keeps its name from one run to the next.
RUN_PREFIX = re.compile(r"\bnl-r[0-9a-f]{6}-")


# the name of the stage a nightly broken on purpose runs (app/nightly.py break_if_asked)
BROKEN_ON_PURPOSE = "breakage on purpose"


@dataclass(frozen=True)
class Band:
    """How much a time may grow before it is a regression: by more than `ratio` times AND by
    more than a share of a scale that is the run's own (so that runners of any speed compare):
    a stage by `stage_floor` of the reference run's whole duration, a fault's recovery by
    `recovery_floor` of the fault's stated bound. The floors keep the instrument's resolution
    out (a recovery is polled every 2 s; a 3 s stage doubling is no news)."""

    ratio: float
    stage_floor: float
    recovery_floor: float

    def exceeded(self, before: float, after: float, scale: float, floor: float) -> bool:
        return after > before * self.ratio and after - before > scale * floor


def quiet_seconds(seconds: float, busy: float | None) -> float:
    """A time as a host without other work would have given it: the seconds times the share of
    the host's CPU that was left to the nightly (`host_busy`, lab/hosts/cpuload.py). A TCG
    lab's stages are CPU-bound, so on a host half taken by others they last about twice as
    long. As measured when the busyness is unknown (records before it was measured)."""
    return seconds if busy is None else seconds * (1.0 - busy)


# PROVISIONAL: not yet measured over repeated green runs (docs/nightly-history.md, "The noise
# band", says what the green runs here have shown so far)
NOISE_BAND = Band(ratio=1.75, stage_floor=0.05, recovery_floor=0.05)


# --- the record --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRecord:
    suite: str  # the pytest pass: e2e | disruptive
    file: str  # e2e/test_network_model.py
    driver: str  # cni | cri | k8s; "" when the test pins its own (CNI contract, CRI flow)
    test: str  # test_name[params], without xdist's @group suffix
    outcome: str  # passed | failed | error | skipped
    seconds: float
    message: str = ""  # the failure's or the skip's reason

    @property
    def key(self) -> str:
        return f"{self.suite}::{self.file}::{self.test}"


@dataclass(frozen=True)
class Cell:
    source: str
    target: str
    symbol: str  # lab.net.reachability.Matrix.symbol: . x X N S R ?
    expected_reachable: bool

    @property
    def ok(self) -> bool:
        return self.symbol in OK_SYMBOLS


@dataclass(frozen=True)
class MatrixRecord:
    name: str  # the pass and the matrix's file stem: e2e/pod-to-pod-cri
    title: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class FaultRecord:
    fault: str
    node: str
    predicted: tuple[str, ...]  # cells the fault must break ("src->dst"), from its matrix
    failed_as_predicted: tuple[str, ...]
    wrong: tuple[str, ...]  # cells not as the fault predicts, each with what was observed
    recovered: bool
    recovery_s: float | None
    bound_s: float
    problems: tuple[str, ...] = ()
    host_busy: float | None = None  # others' share of the host's CPU during the pass that ran it
    # The disruption ledger's figures (e2e/ledger.py: the summary of the fault's ledger in
    # faults.json): what live flows through the fault lived through, against its budget. None
    # for a fault measured without live flows (records written before the ledger existed).
    ledger: LedgerSummary | None = None

    @property
    def key(self) -> str:
        return f"{self.fault} on {self.node}"


@dataclass(frozen=True)
class OverlayRecord:
    backend: str
    path: str
    mbit_s: float | None
    p50_us: float | None
    p99_us: float | None
    # the ratios that carry over from one runner to another: this path against node->node
    mbit_vs_node: float | None
    p50_vs_node: float | None
    error: str = ""


@dataclass(frozen=True)
class RunRecord:
    run: str  # the artifacts folder's name: <lab>-<UTC stamp>
    lab: str
    started: str  # ISO 8601, UTC: sorts as it reads
    passed: bool
    exit_code: int
    commit: str
    artifacts: str  # the run's artifacts folder, relative to the history folder
    page: str  # its summary.html, relative to the history folder
    versions: Mapping[str, str] = field(default_factory=dict)
    stages: tuple[StageResult, ...] = ()  # app/summary.py's, as the nightly ran them
    checks: tuple[CheckRecord, ...] = ()
    matrices: tuple[MatrixRecord, ...] = ()
    faults: tuple[FaultRecord, ...] = ()
    overlay: tuple[OverlayRecord, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def quiet_seconds(self) -> float:
        return sum(quiet_seconds(s.seconds, s.host_busy) for s in self.stages)

    def stage(self, name: str) -> StageResult | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def broken_on_purpose(self) -> bool:
        """A run that left a regression in place (NETLAB_NIGHTLY_BREAK): never a baseline."""
        return any(s.name.startswith(BROKEN_ON_PURPOSE) for s in self.stages)


def check_record(case: Case, drivers: Collection[str] = ()) -> CheckRecord:
    """A JUnit case as the history keeps it: its file, its driver (from the test id, one of
    `drivers`), its test name without xdist's group suffix."""
    file, driver, test = check_parts(case, drivers)
    return CheckRecord(
        suite=case.suite,
        file=file,
        driver=driver,
        test=test,
        outcome=case.outcome,
        seconds=round(case.seconds, 3),
        message=case.message,
    )


def stable_name(name: str) -> str:
    """A pod's name without its pass's run id (the same cell, run after run)."""
    return RUN_PREFIX.sub("", name)


def _cell(text: str) -> str:
    return stable_name(text)


def matrix_record(name: str, data: Mapping[str, Any]) -> MatrixRecord:
    """A matrix as e2e/report.py writes it (lab.net.reachability.Matrix.to_json)."""
    return MatrixRecord(
        name=name,
        title=stable_name(str(data.get("title", name))),
        cells=tuple(
            Cell(
                stable_name(c["source"]),
                stable_name(c["target"]),
                c["symbol"],
                bool(c["expected"]["reachable"]),
            )
            for c in data.get("cells", [])
        ),
    )


def fault_slug(fault: str, node: str) -> str:
    """The stem of a fault's matrices (e2e/disruption.py: fault-<slug>, recovered-<slug>)."""
    return fault.replace(" ", "-") + f".{node}"


def fault_record(
    outcome: Mapping[str, Any], during: MatrixRecord | None, host_busy: float | None = None
) -> FaultRecord:
    """One entry of the disruptive pass's faults.json, with the cells its matrix predicted."""
    predicted = (
        tuple(f"{c.source}->{c.target}" for c in during.cells if not c.expected_reachable)
        if during is not None
        else ()
    )
    return FaultRecord(
        fault=outcome["fault"],
        node=outcome["node"],
        predicted=predicted,
        failed_as_predicted=tuple(_cell(c) for c in outcome.get("failed_during", [])),
        wrong=tuple(stable_name(c) for c in outcome.get("wrong_during", [])),
        recovered=bool(outcome.get("recovered")),
        recovery_s=outcome.get("recovery_s"),
        bound_s=float(outcome.get("bound_s", 0)),
        problems=tuple(outcome.get("problems", [])),
        host_busy=host_busy,
        ledger=summary_of(outcome.get("ledger")),
    )


def overlay_records(costs: Sequence[Mapping[str, Any]]) -> tuple[OverlayRecord, ...]:
    """The overlay's cost as the nightly measured it (overlay.json: e2e/perf.py's PathCost
    entries), with the ratios to node->node on the same backend."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else round(a / b, 3)

    node = {c["backend"]: c for c in costs if c["path"] == "node->node"}
    out = []
    for c in costs:
        base = node.get(c["backend"], {})
        out.append(
            OverlayRecord(
                backend=c["backend"],
                path=c["path"],
                mbit_s=c.get("mbit_s"),
                p50_us=c.get("p50_us"),
                p99_us=c.get("p99_us"),
                mbit_vs_node=ratio(c.get("mbit_s"), base.get("mbit_s")),
                p50_vs_node=ratio(c.get("p50_us"), base.get("p50_us")),
                error=c.get("error", ""),
            )
        )
    return tuple(out)


def build_record(
    *,
    run: str,
    lab: str,
    started: str,
    artifacts: str,
    stages: Sequence[StageResult],
    cases: Sequence[Case] = (),
    matrices: Mapping[str, Mapping[str, Any]] | None = None,
    faults: Sequence[Mapping[str, Any]] = (),
    overlay: Sequence[Mapping[str, Any]] = (),
    versions: Mapping[str, str] | None = None,
    drivers: Collection[str] = (),
    faults_stage: str = "",
) -> RunRecord:
    """The run's record. `matrices`: "<pass>/<file stem>" -> the matrix JSON; `faults`: the
    disruptive pass's faults.json; `overlay`: overlay.json; `artifacts`: the run's folder
    relative to the history; `drivers`: the suite's driver names (e2e/drivers);
    `faults_stage`: the stage that ran the faults (its host_busy is theirs)."""
    mats = tuple(matrix_record(name, data) for name, data in sorted((matrices or {}).items()))
    by_name = {m.name: m for m in mats}
    found = dict(versions or {})
    exit_code = 0 if stages and all(s.status == "ok" for s in stages) else 1
    faults_busy = next((s.host_busy for s in stages if s.name == faults_stage), None)
    return RunRecord(
        run=run,
        lab=lab,
        started=started,
        passed=exit_code == 0,
        exit_code=exit_code,
        commit=found.get("k8s-netlab commit", "unknown"),
        artifacts=artifacts,
        page=f"{artifacts}/summary.html",
        versions=found,
        stages=tuple(dataclasses.replace(s, seconds=round(s.seconds, 2)) for s in stages),
        checks=tuple(check_record(c, drivers) for c in cases),
        matrices=mats,
        faults=tuple(
            fault_record(
                f,
                by_name.get(f"disruptive/fault-{fault_slug(f['fault'], f['node'])}"),
                faults_busy,
            )
            for f in faults
        ),
        overlay=overlay_records(overlay),
    )


# --- to and from JSON --------------------------------------------------------------------


def record_to_json(record: RunRecord) -> dict[str, Any]:
    data = asdict(record)
    order = ["schema_version", "run", "lab", "started", "passed", "exit_code", "commit"]
    return {**{k: data[k] for k in order}, **{k: v for k, v in data.items() if k not in order}}


class RecordError(ValueError):
    """A history file that is not a record this version reads: the field, the value, the fix."""


def _req(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in data:
        raise RecordError(f"{where}: no field {name!r}")
    value = data[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise RecordError(f"{where}.{name} = {str(value)[:60]!r}: not a {kind}")
    return value


def parse_record(data: object) -> RunRecord:
    """A record read back (RecordError names what is wrong; a newer schema says so)."""
    if not isinstance(data, Mapping):
        raise RecordError("not a JSON object")
    version = _req(data, "schema_version", int, "record")
    if version > SCHEMA_VERSION:
        raise RecordError(
            f"schema_version {version} is newer than this k8s-netlab reads ({SCHEMA_VERSION}): "
            "build the index with the k8s-netlab that wrote it"
        )
    try:
        return RunRecord(
            run=_req(data, "run", str, "record"),
            lab=_req(data, "lab", str, "record"),
            started=_req(data, "started", str, "record"),
            passed=_req(data, "passed", bool, "record"),
            exit_code=_req(data, "exit_code", int, "record"),
            commit=_req(data, "commit", str, "record"),
            artifacts=_req(data, "artifacts", str, "record"),
            page=_req(data, "page", str, "record"),
            versions=dict(data.get("versions", {})),
            stages=tuple(StageResult(**_known(StageResult, s)) for s in data.get("stages", [])),
            checks=tuple(CheckRecord(**_known(CheckRecord, c)) for c in data.get("checks", [])),
            matrices=tuple(
                MatrixRecord(
                    m["name"], m["title"], tuple(Cell(**_known(Cell, c)) for c in m["cells"])
                )
                for m in data.get("matrices", [])
            ),
            faults=tuple(_fault(f) for f in data.get("faults", [])),
            overlay=tuple(
                OverlayRecord(**_known(OverlayRecord, o)) for o in data.get("overlay", [])
            ),
            schema_version=version,
        )
    except (TypeError, KeyError, AttributeError) as exc:
        raise RecordError(f"a field of the record does not fit schema {version}: {exc}") from None


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields `cls` has (a field added later by a newer writer of the same schema is left)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _fault(data: Mapping[str, Any]) -> FaultRecord:
    ledger = data.get("ledger")
    figures = parse_summary(ledger)
    if ledger is not None and figures is None:
        raise RecordError(
            f"faults[{data.get('fault')!r} on {data.get('node')!r}].ledger = {str(ledger)[:60]!r}: "
            "not the ledger's figures (e2e/ledger.py: LedgerSummary)"
        )
    return FaultRecord(
        **{
            **_known(FaultRecord, data),
            **{
                k: tuple(data.get(k, ()))
                for k in ("predicted", "failed_as_predicted", "wrong", "problems")
            },
            "ledger": figures,
        }
    )


# --- paths of the runner -----------------------------------------------------------------


def relativize(text: str, roots: Mapping[str, str]) -> str:
    """Every absolute root named in `roots` replaced by what stands for it ("" for a folder
    the page's links are relative to, "~/" for the home folder): the longest root first, so a
    folder inside another becomes its own relative path; `/a/b` never matches `/a/bc`."""
    for root in sorted(roots, key=len, reverse=True):
        stem = root.rstrip("/")
        if not stem:
            continue
        repl = roots[root]
        pattern = re.compile(re.escape(stem) + r"(/|(?![\w.-]))")
        bare = repl.rstrip("/") or "."

        def swap(m: re.Match[str], slash: str = repl, alone: str = bare) -> str:
            return slash if m.group(1) else alone

        text = pattern.sub(swap, text)
    return text


# --- the comparison ----------------------------------------------------------------------

Kind = Literal[
    "stage",
    "stage time",
    "check failing",
    "check skipped",
    "checks not run",
    "cell",
    "matrix not measured",
    "fault",
    "recovery time",
]
KIND_ORDER: tuple[Kind, ...] = (
    "stage",
    "cell",
    "matrix not measured",
    "check failing",
    "check skipped",
    "checks not run",
    "fault",
    "recovery time",
    "stage time",
)


@dataclass(frozen=True)
class Finding:
    kind: Kind
    subject: str  # what regressed: a stage, a check, "matrix: src -> dst", a fault
    detail: str  # before -> after, in words


def _ratio(before: float, after: float) -> str:
    return f"{after / before:.2f}x" if before > 0 else "new"


def _slower(
    before: float,
    before_busy: float | None,
    after: float,
    after_busy: float | None,
    band: Band,
    run: RunRecord | None,
    fault: FaultRecord | None,
) -> str:
    """How a stage (`run`: the green run, for its floor) or a fault's recovery (`fault`: the
    green run's) got slower beyond the band, in words; "" when it did not. Both times are
    taken for a quiet host when both runs measured the host's busyness."""
    adjusted = before_busy is not None and after_busy is not None
    b, a = quiet_seconds(before, before_busy), quiet_seconds(after, after_busy)
    if run is not None:
        scale, floor = (run.quiet_seconds if adjusted else run.seconds), band.stage_floor
    else:
        assert fault is not None
        scale, floor = fault.bound_s, band.recovery_floor
    if not band.exceeded(b, a, scale, floor):
        return ""
    said = f"{before:.1f} s -> {after:.1f} s"
    if adjusted:
        said += (
            f"; with the host busy with other work {before_busy:.0%} -> {after_busy:.0%}, "
            f"for a quiet host {b:.1f} s -> {a:.1f} s"
        )
    return said + f" ({_ratio(b, a)}; band {band.ratio:.2f}x)"


def _stage_findings(base: RunRecord, cur: RunRecord, band: Band) -> list[Finding]:
    found = []
    not_run = []  # skipped after an earlier failure, or absent: one finding for them all
    for b in base.stages:
        c = cur.stage(b.name)
        if c is None or (b.status == "ok" and c.status == "skipped"):
            not_run.append(b.name)
        elif b.status == "ok" and c.status != "ok":
            why = f": {c.detail.splitlines()[0][:200]}" if c.detail else ""
            found.append(Finding("stage", b.name, f"{b.status} -> {c.status}{why}"))
        elif c.status == "ok":
            said = _slower(b.seconds, b.host_busy, c.seconds, c.host_busy, band, base, None)
            if said:
                found.append(Finding("stage time", b.name, said))
    if not_run:
        found.append(
            Finding("stage", f"{len(not_run)} stage(s)", "did not run: " + ", ".join(not_run))
        )
    return found


def _check_findings(base: RunRecord, cur: RunRecord) -> list[Finding]:
    before = {c.key: c for c in base.checks}
    after = {c.key: c for c in cur.checks}
    found = []
    for key, c in after.items():
        b = before.get(key)
        was = b.outcome if b else "new"
        name = f"{c.file}::{c.test}" + (f" ({c.suite})" if c.suite != "e2e" else "")
        if c.outcome in ("failed", "error") and was not in ("failed", "error"):
            msg = c.message.strip().splitlines()[0][:200] if c.message.strip() else ""
            found.append(Finding("check failing", name, f"{was} -> {c.outcome}: {msg}".rstrip()))
        elif c.outcome == "skipped" and was == "passed":
            found.append(Finding("check skipped", name, f"passed -> skipped: {c.message[:200]}"))
    missing: dict[str, int] = {}
    for key, b in before.items():
        if key not in after:
            missing[b.suite] = missing.get(b.suite, 0) + 1
    found += [
        Finding("checks not run", f"{suite} pass", f"{n} check(s) of the last green run")
        for suite, n in sorted(missing.items())
    ]
    return found


def _cell_findings(base: RunRecord, cur: RunRecord) -> list[Finding]:
    after = {m.name: m for m in cur.matrices}
    found = []
    missing: dict[str, list[str]] = {}  # pass -> matrices: one finding per pass, not per cell
    for m in base.matrices:
        now = after.get(m.name)
        if now is None:
            suite, _, stem = m.name.rpartition("/")
            missing.setdefault(suite, []).append(stem)
            continue
        cells = {(c.source, c.target): c for c in now.cells}
        for b in m.cells:
            c = cells.get((b.source, b.target))
            if b.ok and (c is None or not c.ok):
                symbol = "?" if c is None else c.symbol
                found.append(
                    Finding(
                        "cell",
                        f"{m.name}: {b.source} -> {b.target}",
                        f"'{b.symbol}' -> '{symbol}' ({SYMBOL_MEANING.get(symbol, symbol)})",
                    )
                )
    found += [
        Finding("matrix not measured", f"{suite} pass", f"{len(stems)}: {', '.join(stems)}")
        for suite, stems in sorted(missing.items())
    ]
    return found


def _fault_findings(base: RunRecord, cur: RunRecord, band: Band) -> list[Finding]:
    after = {f.key: f for f in cur.faults}
    found = []
    missing = [b.key for b in base.faults if b.key not in after]
    if missing:
        found.append(
            Finding("fault", f"{len(missing)} fault(s)", "not exercised: " + "; ".join(missing))
        )
    for b in base.faults:
        c = after.get(b.key)
        if c is None:
            continue
        if b.recovered and not c.recovered:
            found.append(Finding("fault", b.key, f"not recovered within {c.bound_s:.0f} s"))
        elif c.wrong and not b.wrong:
            found.append(Finding("fault", b.key, f"{len(c.wrong)} cell(s) not as predicted"))
        elif b.recovery_s is not None and c.recovery_s is not None:
            said = _slower(b.recovery_s, b.host_busy, c.recovery_s, c.host_busy, band, None, b)
            if said:
                found.append(Finding("recovery time", b.key, said))
        if c.ledger is not None and not c.ledger.within_budget and _in_budget(b):
            found.append(Finding("fault", b.key, f"live flows: {ledger_line(c.ledger)}"))
    return found


def _in_budget(fault: FaultRecord) -> bool:
    return fault.ledger is None or fault.ledger.within_budget


def compare(base: RunRecord, cur: RunRecord, band: Band = NOISE_BAND) -> tuple[Finding, ...]:
    """What got worse in `cur` since `base` (a green run of the same lab), most serious first:
    stages that stopped passing, cells that started failing, checks newly failing or newly
    skipped, faults not recovered, then recovery and stage times beyond the noise band."""
    found = [
        *_stage_findings(base, cur, band),
        *_check_findings(base, cur),
        *_cell_findings(base, cur),
        *_fault_findings(base, cur, band),
    ]
    return tuple(sorted(found, key=lambda f: KIND_ORDER.index(f.kind)))


def last_green(records: Iterable[RunRecord], cur: RunRecord) -> RunRecord | None:
    """The newest green run of `cur`'s lab that started before it (a run broken on purpose
    passes with its regression in place, and is no baseline)."""
    green = [
        r
        for r in records
        if r.lab == cur.lab
        and r.passed
        and not r.broken_on_purpose
        and r.run != cur.run
        and r.started < cur.started
    ]
    return max(green, key=lambda r: r.started, default=None)


def previous(records: Iterable[RunRecord], cur: RunRecord) -> RunRecord | None:
    """The run of `cur`'s lab just before it, green or not."""
    earlier = [
        r for r in records if r.lab == cur.lab and r.run != cur.run and r.started < cur.started
    ]
    return max(earlier, key=lambda r: r.started, default=None)


@dataclass(frozen=True)
class SinceGreen:
    """A run against the last green run before it (None: there is none to compare with)."""

    run: RunRecord
    green: RunRecord | None
    findings: tuple[Finding, ...]


def since_last_green(
    records: Sequence[RunRecord], cur: RunRecord, band: Band = NOISE_BAND
) -> SinceGreen:
    green = last_green(records, cur)
    return SinceGreen(cur, green, compare(green, cur, band) if green is not None else ())


def latest_per_lab(records: Iterable[RunRecord]) -> dict[str, RunRecord]:
    latest: dict[str, RunRecord] = {}
    for r in records:
        if r.lab not in latest or r.started > latest[r.lab].started:
            latest[r.lab] = r
    return dict(sorted(latest.items()))
