"""The breakage runner's judgement and its report (pure): which tests a run failed (JUnit in),
whether a breakage was detected (a test failed that passed on the healthy lab), whether the
tests it must fail did, and whether a failure names its cause (its text matches every one of
the entry's `named` patterns); the detection matrix as text, JSON and an HTML section the
nightly report includes."""

from __future__ import annotations

import fnmatch
import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from e2e.breakages import Breakage
from lab.model.config import Lab


@dataclass(frozen=True)
class TestResult:
    nodeid: str
    outcome: str  # passed | failed | error | skipped
    text: str = ""  # the failure's message and its whole report

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "error")


def nodeid_of(classname: str, name: str) -> str:
    """JUnit's classname `e2e.test_x` (or `e2e.test_x.TestClass`) and name -> a pytest id."""
    parts = classname.split(".")
    module = [p for p in parts if not p[:1].isupper()]
    classes = [p for p in parts if p[:1].isupper()]
    return "::".join(["/".join(module) + ".py", *classes, name])


def parse_junit_results(xml_text: str) -> list[TestResult]:
    """Every test case of a JUnit XML, with the whole text of its failure or error (a test
    that failed in its call and errored at teardown keeps both)."""
    results = []
    for tc in ET.fromstring(xml_text).iter("testcase"):
        outcome, texts = "passed", []
        for kind in ("failure", "error", "skipped"):
            for el in tc.findall(kind):
                if outcome == "passed" or (outcome == "skipped" and kind != "skipped"):
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                texts += [el.get("message", ""), el.text or ""]
        nodeid = nodeid_of(tc.get("classname", ""), tc.get("name", ""))
        results.append(TestResult(nodeid, outcome, "\n".join(t for t in texts if t)))
    return results


def matches(nodeid: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(nodeid, pattern)


def names_cause(text: str, patterns: Sequence[str]) -> bool:
    """The failure names the cause: every pattern (a regular expression) is found in it."""
    return bool(patterns) and all(re.search(p, text, re.IGNORECASE) for p in patterns)


@dataclass(frozen=True)
class Outcome:
    """One breakage's row of the detection matrix."""

    id: str
    title: str
    source: str
    status: str  # ran | inject-failed | suite-failed | not-applicable
    failed: tuple[str, ...] = ()  # the tests that failed (and passed on the healthy lab)
    expected_missed: tuple[str, ...] = ()  # expected patterns no failed test matched
    expected_absent: tuple[str, ...] = ()  # expected patterns no test of the run matched
    named_by: tuple[str, ...] = ()  # failed tests whose text names the cause
    detectable: bool = True
    note: str = ""
    seconds: float = 0.0
    restored: str = ""  # how the lab was made healthy again
    detail: str = ""

    @property
    def detected(self) -> bool:
        return bool(self.failed)

    @property
    def named(self) -> bool:
        return bool(self.named_by)


def judge(
    b: Breakage,
    lab: Lab,
    results: Iterable[TestResult],
    noisy: Iterable[str] = (),
    seconds: float = 0.0,
    restored: str = "",
) -> Outcome:
    """A breakage's run judged: the tests it failed (not those that fail on the healthy lab
    too: `noisy`), which expected patterns no failure matched, and the failures that name
    the cause."""
    runs = list(results)
    skip = set(noisy)
    failed = [r for r in runs if r.failed and r.nodeid not in skip]
    patterns = b.named(lab)
    absent = tuple(p for p in b.expected if not any(matches(r.nodeid, p) for r in runs))
    missed = tuple(
        p for p in b.expected if p not in absent and not any(matches(r.nodeid, p) for r in failed)
    )
    return Outcome(
        b.id,
        b.title,
        b.source,
        "ran",
        failed=tuple(r.nodeid for r in failed),
        expected_missed=missed,
        expected_absent=absent,
        named_by=tuple(r.nodeid for r in failed if names_cause(r.text, patterns)),
        detectable=b.detectable,
        note=b.note,
        seconds=seconds,
        restored=restored,
    )


def short(nodeid: str) -> str:
    """`e2e/test_network_model.py::test_every_pod_reaches...[cri]` -> `test_network_model::
    test_every_pod_reaches...[cri]`, for tables."""
    module, _, rest = nodeid.partition("::")
    return f"{module.rsplit('/', 1)[-1].removesuffix('.py')}::{rest}"


@dataclass
class Report:
    lab: str
    started: str
    outcomes: list[Outcome] = field(default_factory=list)
    baseline_failed: tuple[str, ...] = ()
    commit: str = ""

    @property
    def ran(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "ran"]

    def summary(self) -> str:
        ran = self.ran
        detected = sum(o.detected for o in ran)
        named = sum(o.named for o in ran)
        undetectable = sum(not o.detectable for o in ran)
        other = len(self.outcomes) - len(ran)
        pct = f" ({100 * named / detected:.0f}% of detected)" if detected else ""
        return (
            f"{len(ran)} breakages run: {detected} detected, {named} named{pct}"
            + (f", {undetectable} undetectable here by design" if undetectable else "")
            + (f"; {other} could not run" if other else "")
        )


def verdict_word(o: Outcome) -> str:
    if o.status != "ran":
        return o.status
    if not o.detected:
        return "undetectable here" if not o.detectable else "NOT DETECTED"
    return "detected, named" if o.named else "detected, NOT NAMED"


def render_text(r: Report) -> str:
    lines = [f"breakage detection matrix: {r.lab} ({r.started})", r.summary(), ""]
    if r.baseline_failed:
        lines += [
            "failing on the healthy lab too (left out of every judgement):",
            *(f"  {short(t)}" for t in r.baseline_failed),
            "",
        ]
    width = max((len(o.id) for o in r.outcomes), default=10)
    for o in r.outcomes:
        lines.append(f"{o.id:<{width}}  {verdict_word(o):<20} {o.seconds:6.0f}s  {o.source}")
        for t in o.failed:
            mark = "named" if t in o.named_by else "     "
            lines.append(f"{'':<{width}}    {mark} {short(t)}")
        for p in o.expected_missed:
            lines.append(f"{'':<{width}}    MISSED (expected to fail): {p}")
        for p in o.expected_absent:
            lines.append(f"{'':<{width}}    not in this run (expected): {p}")
        if o.note and not o.detected:
            lines.append(f"{'':<{width}}    note: {o.note}")
        if o.detail:
            lines.append(f"{'':<{width}}    {o.detail}")
    return "\n".join(lines) + "\n"


def render_json(r: Report) -> str:
    return json.dumps(
        {
            "lab": r.lab,
            "started": r.started,
            "commit": r.commit,
            "summary": r.summary(),
            "baseline_failed": list(r.baseline_failed),
            "breakages": [
                {**asdict(o), "detected": o.detected, "named": o.named, "verdict": verdict_word(o)}
                for o in r.outcomes
            ],
        },
        indent=1,
    )


def test_function(nodeid: str) -> str:
    """A test id without its parameters: the matrix's columns group a test's variants."""
    return short(nodeid).split("[", 1)[0]


def render_html_section(r: Report) -> str:
    """The matrix as an HTML fragment (an <h2> section) for the nightly report: rows are the
    breakages, columns the test functions that failed in any of them (numbered, named in the
    key below); a cell says how many of the test's variants failed (F) or failed naming the
    cause (N)."""
    esc = html.escape
    tests = sorted({test_function(t) for o in r.outcomes for t in o.failed})
    head = "".join(f"<th title='{esc(t)}'>{i}</th>" for i, t in enumerate(tests, 1))
    rows = []
    for o in r.outcomes:
        cls = "ok" if o.detected and o.named else ("skipped" if not o.detectable else "failed")
        cells = []
        for t in tests:
            failed = [x for x in o.failed if test_function(x) == t]
            named = [x for x in o.named_by if test_function(x) == t]
            tip = esc(", ".join(failed))
            if named:
                cells.append(f"<td class='ok' title='{tip}'>N{len(named)}</td>")
            elif failed:
                cells.append(f"<td class='failed' title='{tip}'>F{len(failed)}</td>")
            else:
                cells.append("<td></td>")
        why = (
            o.note
            if not o.detected and o.note
            else "; ".join([*(f"missed {p}" for p in o.expected_missed), o.detail]).strip("; ")
        )
        rows.append(
            f"<tr><td class='{cls}'><b>{esc(o.id)}</b><br>{esc(o.title)}</td>"
            f"<td class='{cls}'>{esc(verdict_word(o))}</td><td>{esc(o.source)}</td>"
            f"{''.join(cells)}<td>{esc(why)}</td></tr>"
        )
    return "\n".join(
        [
            f"<h2>Breakages: {esc(r.lab)}</h2>",
            f"<p>{esc(r.summary())}. Each breakage was injected on the running lab, the e2e "
            "suite run, and the breakage undone. A cell counts the test's variants that failed "
            "(F) or failed and named the cause (N).</p>",
            f"<table><tr><th>breakage</th><th>verdict</th><th>source</th>{head}<th>note</th></tr>",
            *rows,
            "</table>",
            "<p>Columns:</p><ol>",
            *(f"<li><code>{esc(t)}</code></li>" for t in tests),
            "</ol>",
        ]
    )


def parse_report_json(text: str) -> Report:
    """A report back from its JSON (render_json), to render it again."""
    data = json.loads(text)
    names = {f.name for f in fields(Outcome)}
    outcomes = []
    for b in data["breakages"]:
        kept: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in b.items() if k in names
        }
        outcomes.append(Outcome(**kept))
    return Report(
        data["lab"], data["started"], outcomes, tuple(data["baseline_failed"]), data["commit"]
    )


def render_html_page(r: Report) -> str:
    """The section on a page of its own (to look at it without a nightly)."""
    from app.summary import STYLE

    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>netlab breakages "
        f"{html.escape(r.lab)}</title><style>{STYLE}</style></head><body>"
        f"{render_html_section(r)}<h2>Matrix as text</h2><pre>{html.escape(render_text(r))}"
        "</pre></body></html>"
    )
