"""The nightly's report (pure): JUnit cases in, one self-contained HTML page out."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from e2e.ledger import ledger_line, summary_of


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    outcome: str  # passed | failed | error | skipped
    seconds: float
    message: str = ""
    # the suite's own timing (JUnit properties): setup, time in node commands, the rest
    setup_s: float | None = None
    probes_s: float | None = None
    checks_s: float | None = None


def _properties(tc: ET.Element) -> dict[str, float]:
    found = {}
    for prop in tc.iter("property"):
        try:
            found[prop.get("name", "")] = float(prop.get("value", ""))
        except ValueError:
            continue
    return found


def parse_junit(xml_text: str, suite: str) -> list[Case]:
    cases = []
    for tc in ET.fromstring(xml_text).iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            el = tc.find(kind)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message = el.get("message", "") or (el.text or "")
                break
        name = f"{tc.get('classname', '')}::{tc.get('name', '')}".strip(":")
        props = _properties(tc)
        cases.append(
            Case(
                suite,
                name,
                outcome,
                float(tc.get("time", 0) or 0),
                message,
                props.get("setup-s"),
                props.get("probes-s"),
                props.get("checks-s"),
            )
        )
    return cases


def check_parts(case: Case, drivers: Collection[str] = ()) -> tuple[str, str, str]:
    """(file, driver, test) of a JUnit case: `e2e.test_x::test_y[cri-node1-p0]@group` is
    (e2e/test_x.py, cri, test_y[cri-node1-p0]) when `cri` is among `drivers` (the suite's
    driver names, e2e/drivers); the driver is "" where the test pins its own (the CNI
    contract, the pod creation flow)."""
    module, _, test = case.name.partition("::")
    if not test:
        module, test = "", module
    test = test.split("@", 1)[0]
    first = test.partition("[")[2].rstrip("]").split("-", 1)[0]
    return (
        module.replace(".", "/") + ".py" if module else "",
        first if first in drivers else "",
        test,
    )


def slowest(cases: list[Case], count: int = 10) -> list[Case]:
    return sorted((c for c in cases if c.outcome != "skipped"), key=lambda c: -c.seconds)[:count]


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class StageResult:
    name: str
    status: str  # ok | failed | skipped
    seconds: float
    bound_s: float
    detail: str = ""
    log: str = ""  # its log, relative to the run's artifacts folder ("" when none)
    # the share of the host's CPU that went to other work meanwhile (lab/hosts/cpuload.py):
    # a stage's time means little when the host was busy with something else
    host_busy: float | None = None


@dataclass
class NightlyReport:
    lab: str
    started: str
    stages: list[StageResult]
    cases: list[Case] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    heatmaps: dict[str, str] = field(default_factory=dict)  # title -> base64 PNG
    matrices: dict[str, str] = field(default_factory=dict)  # title -> text
    overlay: str = ""  # the overlay-cost table (markdown), when it was measured
    # label -> href relative to this page: the history's index, the previous run, ...
    links: dict[str, str] = field(default_factory=dict)
    since_green: str = ""  # HTML: what got worse since the last green run (app/history_page.py)
    drivers: tuple[str, ...] = ()  # the suite's driver names: checks are grouped by driver
    breakages: str = ""  # the breakage runner's HTML section (app/breakage_report.py), if run

    @property
    def exit_code(self) -> int:
        return overall_exit(self.stages)


def overall_exit(stages: list[StageResult]) -> int:
    """0 only when every stage that ran is ok and none was skipped for an earlier failure."""
    return 0 if all(s.status == "ok" for s in stages) else 1


STYLE = """
body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:13px}.ok,.passed{background:#dff0d8}.failed,.error{background:#f2dede}
.skipped{background:#eee}pre{background:#f7f7f7;padding:8px;font-size:12px;overflow-x:auto}
nav{font-size:14px;margin-bottom:1em}tr.group th{background:#e8eef7;font-weight:normal}
tr.group b{font-weight:bold}td pre{margin:2px 0;max-width:700px;white-space:pre-wrap}
.findings li{margin:2px 0}.none{color:#2e7d32}.regressed{color:#b71c1c}
"""


def _row(*cells: object, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _link(href: str, text: str) -> str:
    return f"<a href='{html.escape(href, quote=True)}'>{html.escape(text)}</a>"


def _stage_row(s: StageResult) -> str:
    log = _link(s.log, s.log) if s.log else ""
    busy = "" if s.host_busy is None else f"{s.host_busy:.0%}"
    cells = [s.name, s.status, f"{s.seconds:.1f}", f"{s.bound_s:.0f}", busy, s.detail]
    return (
        f"<tr class='{s.status}'>"
        + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        + f"<td>{log}</td></tr>"
    )


BAD = ("failed", "error")


def _message(case: Case) -> str:
    """A failure's first line, its whole text (up to 4000 characters) folded under it."""
    text = case.message.strip()
    if not text:
        return ""
    first = html.escape(text.splitlines()[0][:300])
    if len(text) <= len(first) and "\n" not in text:
        return first
    return f"<details><summary>{first}</summary><pre>{html.escape(text[:4000])}</pre></details>"


def render_checks(cases: list[Case], drivers: Collection[str] = ()) -> str:
    """Every check, grouped by pass, file and driver; the groups with failures first and,
    inside a group, failures first; skips folded into one line per reason."""
    groups: dict[tuple[str, str, str], list[tuple[Case, str]]] = {}
    for c in cases:
        file, driver, test = check_parts(c, drivers)
        groups.setdefault((c.suite, file, driver), []).append((c, test))

    passes = list(dict.fromkeys(c.suite for c in cases))  # in the order they ran

    def bad_first(key: tuple[str, str, str]) -> tuple[bool, int, str, str]:
        clean = not any(c.outcome in BAD for c, _ in groups[key])
        return (clean, passes.index(key[0]), key[1], key[2])

    rows = [
        "<table class='checks'><tr><th>result</th><th>check</th><th>seconds</th>"
        "<th>message</th></tr>"
    ]
    for key in sorted(groups, key=bad_first):
        suite, file, driver = key
        members = groups[key]
        counts: dict[str, int] = {}
        for c, _ in members:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        said = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        rows.append(
            f"<tr class='group'><th colspan='4'><b>{html.escape(file or '?')}</b>"
            f" &middot; {html.escape(f'driver {driver}' if driver else 'its own driver')}"
            f" &middot; {html.escape(suite)} pass &middot; {html.escape(said)}</th></tr>"
        )
        for c, test in sorted(members, key=lambda m: (m[0].outcome not in BAD, m[1])):
            if c.outcome == "skipped":
                continue
            rows.append(
                f"<tr class='{c.outcome} check'><td>{c.outcome}</td><td>{html.escape(test)}"
                f"</td><td>{c.seconds:.1f}</td><td>{_message(c)}</td></tr>"
            )
        reasons: dict[str, list[str]] = {}
        for c, test in members:
            if c.outcome == "skipped":
                reasons.setdefault(c.message.strip() or "no reason given", []).append(test)
        for reason, tests in sorted(reasons.items()):
            rows.append(
                f"<tr class='skipped skip-reason'><td>skipped</td><td colspan='3'>"
                f"<details><summary><b>{len(tests)} skipped</b>: {html.escape(reason)}"
                f"</summary>{html.escape(', '.join(sorted(tests)))}</details></td></tr>"
            )
    rows.append("</table>")
    return "\n".join(rows)


def _in_budget(fault: dict[str, Any]) -> bool:
    """A fault's live flows within their budget (a fault recorded without a ledger has none
    to be held to; one whose ledger cannot be read is not within it)."""
    doc = fault.get("ledger")
    summary = summary_of(doc)
    return doc is None or (summary is not None and summary.within_budget)


def render_html(r: NightlyReport) -> str:
    verdict = "PASSED" if r.exit_code == 0 else "FAILED"
    counts: dict[str, int] = {}
    for c in r.cases:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    nav = " &middot; ".join(_link(href, label) for label, href in r.links.items())
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>netlab nightly {html.escape(r.lab)} {html.escape(r.started)}: {verdict}"
        f"</title><style>{STYLE}</style></head><body>",
        f"<nav>{nav}</nav>" if nav else "",
        f"<h1>netlab nightly: {html.escape(r.lab)} &mdash; {verdict}</h1>",
        f"<p>started {html.escape(r.started)}; exit code {r.exit_code}; checks: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + "</p>",
        r.since_green,
        "<h2>Stages</h2><table><tr><th>stage</th><th>result</th><th>seconds</th>"
        "<th>bound (s)</th><th title='share of the host CPU taken by other work meanwhile'>"
        "host busy</th><th>detail</th><th>log</th></tr>",
        *(_stage_row(s) for s in r.stages),
        "</table>",
    ]
    if r.faults:
        parts += [
            "<h2>Faults</h2><table><tr><th>fault</th><th>node</th><th>cells failed as "
            "predicted</th><th>wrong cells</th><th>recovery (s)</th><th>bound (s)</th>"
            "<th>live flows (disruption ledger)</th></tr>"
        ]
        parts += [
            _row(
                f["fault"],
                f["node"],
                len(f["failed_during"]),
                len(f["wrong_during"]),
                f["recovery_s"] if f["recovered"] else "not recovered",
                f["bound_s"],
                ledger_line(summary_of(f.get("ledger"))),
                cls="ok"
                if f["recovered"] and not f["wrong_during"] and _in_budget(f)
                else "failed",
            )
            for f in r.faults
        ]
        parts.append("</table>")
    if r.cases:
        parts += ["<h2 id='checks'>Checks</h2>", render_checks(r.cases, r.drivers)]
    if r.overlay:
        parts += [
            "<h2>Overlay cost</h2><p>iperf3 TCP throughput and 1-byte request/response "
            "round trips on the lab's own VMs; under QEMU TCG the absolute numbers are far "
            "below real hardware, the ratios carry over.</p>",
            f"<pre>{html.escape(r.overlay)}</pre>",
        ]
    if r.cases:
        parts += [
            "<h2>Slowest tests</h2><p>The suite's own cost: setup (pods, fixtures), time in "
            "commands on the nodes (probes), and the rest (checks).</p><table><tr><th>pass</th>"
            "<th>test</th><th>seconds</th><th>setup</th><th>probes</th><th>checks</th></tr>",
            *(
                _row(
                    c.suite,
                    c.name,
                    f"{c.seconds:.1f}",
                    _secs(c.setup_s),
                    _secs(c.probes_s),
                    _secs(c.checks_s),
                )
                for c in slowest(r.cases)
            ),
            "</table>",
        ]
    if r.heatmaps:
        parts.append("<h2>Connectivity</h2>")
        for title, png in r.heatmaps.items():
            parts.append(
                f"<h3>{html.escape(title)}</h3>"
                f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
            )
            if title in r.matrices:
                parts.append(f"<pre>{html.escape(r.matrices[title])}</pre>")
    if r.breakages:
        parts.append(r.breakages)
    parts += [
        "<h2>Versions</h2><table>",
        *(_row(k, v) for k, v in sorted(r.versions.items())),
        "</table></body></html>",
    ]
    return "\n".join(p for p in parts if p)
