"""The nightly history as one static page (pure): records in, HTML out. No server, no external
resource (styles inline, charts as inline SVG), every link relative, so the page opens from the
file system and from a CI artifact viewer alike. The same "since the last green run" fragment
heads each nightly's own page (app/summary.py)."""

from __future__ import annotations

import html
import statistics
from collections.abc import Callable, Sequence

from app.history import (
    KIND_ORDER,
    NOISE_BAND,
    Band,
    FaultRecord,
    Finding,
    Kind,
    RunRecord,
    SinceGreen,
    latest_per_lab,
    since_last_green,
)

KIND_TITLE: dict[Kind, str] = {
    "stage": "Stages that stopped passing",
    "cell": "Cells that started failing",
    "matrix not measured": "Matrices no longer measured",
    "check failing": "Checks newly failing",
    "check skipped": "Checks newly skipped",
    "checks not run": "Checks that did not run",
    "fault": "Faults that got worse",
    "recovery time": "Recoveries slower than the noise band allows",
    "stage time": "Stages slower than the noise band allows",
}

STYLE = """
body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:13px}.passed{background:#dff0d8}.failed{background:#f2dede}
.findings li{margin:2px 0}.none{color:#2e7d32}.regressed{color:#b71c1c}
svg{vertical-align:middle}small{color:#555}section{margin-bottom:2em}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def link(href: str, text: str) -> str:
    return f"<a href='{esc(href)}'>{esc(text)}</a>"


def verdict(record: RunRecord) -> str:
    return "PASSED" if record.passed else "FAILED"


def describe_band(band: Band) -> str:
    return (
        "times are compared as a quiet host would have given them (each scaled by the share "
        "of the host's CPU that other work left to the nightly, when both runs measured it); "
        f"a time is reported when it grew by more than {band.ratio:.2f}x and by more than "
        f"{band.stage_floor:.0%} of the whole run (a stage) or {band.recovery_floor:.0%} of "
        "the fault's bound (a recovery); the band is provisional: not yet measured over "
        "repeated green runs (docs/nightly-history.md, The noise band)"
    )


def render_findings(findings: Sequence[Finding]) -> str:
    """The findings under one heading per kind, most serious first."""
    if not findings:
        return (
            "<p class='none'>Nothing got worse: no cell started failing, no check newly "
            "failing or skipped, no time beyond the noise band.</p>"
        )
    parts = []
    for kind in KIND_ORDER:
        mine = [f for f in findings if f.kind == kind]
        if not mine:
            continue
        parts.append(f"<h4>{esc(KIND_TITLE[kind])} ({len(mine)})</h4><ul class='findings'>")
        parts += [
            f"<li class='finding' data-kind='{esc(kind)}'><b>{esc(f.subject)}</b>: "
            f"{esc(f.detail)}</li>"
            for f in mine
        ]
        parts.append("</ul>")
    return "\n".join(parts)


def render_since_green(since: SinceGreen, href: Callable[[RunRecord], str]) -> str:
    """One run against the last green run of its lab; `href` gives a run's page relative to
    where this fragment is shown."""
    run = since.run
    head = (
        f"<h3>{esc(run.lab)}: {link(href(run), run.run)} ({verdict(run)})"
        + (
            f" against {link(href(since.green), since.green.run)}, the last green run"
            if since.green is not None
            else ""
        )
        + "</h3>"
    )
    if since.green is None:
        body = "<p>No green run of this lab before it: nothing to compare with yet.</p>"
    else:
        body = render_findings(since.findings)
    return f"<div class='since' data-lab='{esc(run.lab)}'>{head}{body}</div>"


def since_green_section(
    items: Sequence[SinceGreen], href: Callable[[RunRecord], str], band: Band = NOISE_BAND
) -> str:
    return (
        "<section id='since-green'><h2>Since the last green run</h2>"
        f"<p><small>{esc(describe_band(band))}.</small></p>"
        + "\n".join(render_since_green(s, href) for s in items)
        + "</section>"
    )


def render_sparkline(
    values: Sequence[float | None], passed: Sequence[bool], width: int = 180, height: int = 34
) -> str:
    """A small trend chart: the values left (oldest) to right (newest), from zero, a dot per
    run (green: the run passed, red: it failed), the values in its tooltip."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(known) or 1.0
    step = (width - 8) / max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 4 + i * step, height - 4 - (height - 8) * v / top

    points = [xy(i, v) for i, v in enumerate(values) if v is not None]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(
        f"<circle cx='{xy(i, v)[0]:.1f}' cy='{xy(i, v)[1]:.1f}' r='2.5' "
        f"fill='{'#2e9e44' if ok else '#d62728'}'/>"
        for i, (v, ok) in enumerate(zip(values, passed, strict=True))
        if v is not None
    )
    tip = ", ".join("-" if v is None else f"{v:g}" for v in values)
    return (
        f"<svg class='trend' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' role='img'>"
        f"<title>{esc(tip)}</title>"
        f"<line x1='0' y1='{height - 4}' x2='{width}' y2='{height - 4}' stroke='#ccc'/>"
        f"<polyline fill='none' stroke='#555' stroke-width='1.2' points='{line}'/>{dots}</svg>"
    )


def _measures(runs: Sequence[RunRecord]) -> list[tuple[str, list[float | None]]]:
    """Every timed thing of a lab's runs (oldest first): the whole run, each stage, each
    fault's recovery and the longest its live flows went without progress (its ledger)."""
    stages = list(dict.fromkeys(s.name for r in runs for s in r.stages))
    faults = list(dict.fromkeys(f.key for r in runs for f in r.faults))
    out: list[tuple[str, list[float | None]]] = [("whole nightly (s)", [r.seconds for r in runs])]
    for name in stages:
        values: list[float | None] = []
        for r in runs:
            st = r.stage(name)
            values.append(st.seconds if st is not None and st.status == "ok" else None)
        out.append((f"stage: {name} (s)", values))

    def per_run(key: str, value: Callable[[FaultRecord], float | None]) -> list[float | None]:
        return [next((value(f) for f in r.faults if f.key == key), None) for r in runs]

    for key in faults:
        out.append((f"recovery: {key} (s)", per_run(key, lambda f: f.recovery_s)))
    for key in faults:
        loss = per_run(key, lambda f: f.ledger.loss_ms / 1000 if f.ledger is not None else None)
        if any(v is not None for v in loss):
            out.append((f"live flows' longest loss: {key} (s)", loss))
    return out


def render_lab(lab: str, runs: Sequence[RunRecord], records: Sequence[RunRecord]) -> str:
    """One lab: a trend chart per timed thing, then its runs, newest first."""
    runs = sorted(runs, key=lambda r: r.started)[-60:]
    passed = [r.passed for r in runs]
    parts = [
        f"<section class='lab' id='lab-{esc(lab)}'><h2>{esc(lab)}</h2>",
        f"<p>{len(runs)} run(s): {sum(passed)} passed, {len(runs) - sum(passed)} failed.</p>",
        "<h3>Trends</h3><table class='trends'><tr><th>measure</th><th>newest</th>"
        "<th>trend (oldest to newest)</th><th>min</th><th>median</th><th>max</th></tr>",
    ]
    for name, values in _measures(runs):
        known = [v for v in values if v is not None]
        if not known:
            continue
        newest = values[-1]
        parts.append(
            f"<tr><td>{esc(name)}</td><td>{'-' if newest is None else f'{newest:.1f}'}</td>"
            f"<td>{render_sparkline(values, passed)}</td><td>{min(known):.1f}</td>"
            f"<td>{statistics.median(known):.1f}</td><td>{max(known):.1f}</td></tr>"
        )
    parts.append(
        "</table><h3>Runs</h3><table class='runs'><tr><th>run</th><th>started</th>"
        "<th>result</th><th>seconds</th><th>checks</th><th>since the last green run</th>"
        "<th>commit</th></tr>"
    )
    for r in reversed(runs):
        counts: dict[str, int] = {}
        for c in r.checks:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        since = since_last_green(records, r)
        said = (
            "-"
            if since.green is None
            else (f"{len(since.findings)} finding(s)" if since.findings else "nothing worse")
        )
        parts.append(
            f"<tr class='{'passed' if r.passed else 'failed'}'><td>{link(r.page, r.run)}</td>"
            f"<td>{esc(r.started)}</td><td>{verdict(r)}</td><td>{r.seconds:.0f}</td>"
            f"<td>{esc(', '.join(f'{n} {k}' for k, n in sorted(counts.items())))}</td>"
            f"<td>{esc(said)}</td><td>{esc(r.commit)}</td></tr>"
        )
    parts.append("</table></section>")
    return "\n".join(parts)


def render_index(
    records: Sequence[RunRecord], skipped: Sequence[str] = (), band: Band = NOISE_BAND
) -> str:
    """The history's index: at the top, each lab's newest run against its last green run;
    then per lab the trends and the runs. `skipped`: history files that could not be read,
    with why (said at the bottom, never silently dropped)."""
    latest = latest_per_lab(records)
    since = [since_last_green(records, r, band) for r in latest.values()]
    regressed = sum(1 for s in since if s.findings)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>netlab nightly history</title>"
        f"<style>{STYLE}</style></head><body>",
        "<h1>netlab nightly history</h1>",
        f"<p>{len(records)} run(s) of {len(latest)} lab(s); "
        + (
            f"<span class='regressed'>{regressed} lab(s) got worse since their last green "
            "run</span>"
            if regressed
            else "<span class='none'>no lab got worse since its last green run</span>"
        )
        + ". Labs: "
        + ", ".join(f"<a href='#lab-{esc(lab)}'>{esc(lab)}</a>" for lab in latest)
        + "</p>",
        since_green_section(since, lambda r: r.page, band),
    ]
    for lab in latest:
        parts.append(render_lab(lab, [r for r in records if r.lab == lab], records))
    if skipped:
        parts.append("<h2>History files not read</h2><ul>")
        parts += [f"<li>{esc(s)}</li>" for s in skipped]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
