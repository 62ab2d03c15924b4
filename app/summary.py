"""The nightly's report (pure): JUnit cases in, one self-contained HTML page out."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from e2e.ledger import ledger_line


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
"""


def _row(*cells: object, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _in_budget(fault: dict[str, Any]) -> bool:
    doc = fault.get("ledger")
    return not isinstance(doc, dict) or bool(doc.get("summary", {}).get("within_budget"))


def render_html(r: NightlyReport) -> str:
    verdict = "PASSED" if r.exit_code == 0 else "FAILED"
    counts: dict[str, int] = {}
    for c in r.cases:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>netlab nightly {r.lab}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>netlab nightly: {html.escape(r.lab)} &mdash; {verdict}</h1>",
        f"<p>started {html.escape(r.started)}; exit code {r.exit_code}; checks: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + "</p>",
        "<h2>Stages</h2><table><tr><th>stage</th><th>result</th><th>seconds</th>"
        "<th>bound (s)</th><th>detail</th></tr>",
        *(
            _row(s.name, s.status, f"{s.seconds:.1f}", f"{s.bound_s:.0f}", s.detail, cls=s.status)
            for s in r.stages
        ),
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
                ledger_line(f.get("ledger")),
                cls="ok"
                if f["recovered"] and not f["wrong_during"] and _in_budget(f)
                else "failed",
            )
            for f in r.faults
        ]
        parts.append("</table>")
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
    parts += [
        "<h2>Checks</h2><table><tr><th>pass</th><th>check</th><th>result</th>"
        "<th>seconds</th><th>message</th></tr>"
    ]
    parts += [
        _row(c.suite, c.name, c.outcome, f"{c.seconds:.1f}", c.message[:300], cls=c.outcome)
        for c in r.cases
    ]
    parts.append("</table>")
    if r.heatmaps:
        parts.append("<h2>Connectivity</h2>")
        for title, png in r.heatmaps.items():
            parts.append(
                f"<h3>{html.escape(title)}</h3>"
                f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
            )
            if title in r.matrices:
                parts.append(f"<pre>{html.escape(r.matrices[title])}</pre>")
    parts += [
        "<h2>Versions</h2><table>",
        *(_row(k, v) for k, v in sorted(r.versions.items())),
        "</table></body></html>",
    ]
    return "\n".join(parts)
