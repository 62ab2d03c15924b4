"""The disruption ledger (pure): what live flows between pods lived through during a fault, and
whether that is within the fault's budget.

While a fault lasts, a pod on every other node keeps three flows going to a pod on the faulted
node, from the pod's own network namespace (the node agent's `flows` op, e2e/agent.py): a TCP
connection held open with a numbered line every 50 ms (each echoed back by a server in the
target pod's namespace), numbered UDP datagrams at the same rate (each sent back), and a new
connection to the target pod's own echo server every 250 ms (connect, answer, close). The
figures come back in milliseconds on the source's clock, with the moments it first saw the
harness's marks: `inject` (touched just before the fault is injected) and `healed` (just after
its heal returned). A mark is seen within 100 ms of its touch, and the touch takes a round trip:
the fault's window as the flows see it is at most about a second wider than the fault itself.

`judge` holds the figures against the fault's `Budget` (stated per fault in e2e/faults.py):
  - "none": nothing may be lost: no datagram, no failed connection, no TCP retransmission, no
    stall, and the connection survives (a containerd restart: the shims keep the pods);
  - "fault": loss only while the fault lasts and at most `after_s` beyond its end (the TCP
    stream: plus its retransmission backoff, which doubles from 200 ms while the path is down,
    so the first retransmission after the heal can come up to the outage's length later);
  - "unbounded": the flows' target dies with the fault (its pods): loss and cut connections
    are recorded, not bounded (the recreated pods' recovery is the matrix's bound).
Under every budget, loss before the fault (the flows unhealthy on a healthy lab) is a failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

FLOW_PORT = 7101  # the flow server's TCP and UDP port, in the target pod's namespace
STREAM_INTERVAL_S = 0.05  # the TCP line and the UDP datagram: 20 a second each
CONNECT_INTERVAL_S = 0.25  # a new connection to the pod's echo server, 4 a second
CONNECT_TIMEOUT_S = 2.0  # per connect and per answer: a failure window's resolution
# a gap between two echoed TCP lines longer than this is a stall: shorter ones are the TCG
# guests' scheduling (two 1-vCPU guests on a busy 2-core host), not loss
STALL_MS = 1000
MAX_S = 1800  # a flow process ends by itself after this, whatever happens to the harness
# a window may begin this much before the inject mark and still be the fault's: the client
# polls the marks every 100 ms, a TCP stall begins at the last echo before the loss (up to an
# interval earlier) and a failed connection at its attempt's start (up to CONNECT_INTERVAL_S
# earlier). Measured across a veth pair taken down right after the mark: -74 ms (TCP), -19 ms
# (UDP)
BEFORE_MARK_MS = 500

Loss = Literal["none", "fault", "unbounded"]


@dataclass(frozen=True)
class Budget:
    """What a workload may live through during one fault, and why (documented per fault)."""

    loss: Loss
    after_s: float = 0.0  # "fault": loss may outlast the fault's end by this much
    connections_survive: bool = True
    reason: str = ""

    def describe(self) -> str:
        if self.loss == "none":
            loss = "no loss at all"
        elif self.loss == "fault":
            loss = f"loss only during the fault and at most {self.after_s:g} s after it"
        else:
            loss = "loss not bounded (the target dies with the fault)"
        cut = "connections survive" if self.connections_survive else "connections may be cut"
        return f"{loss}; {cut}"


@dataclass(frozen=True)
class Window:
    """A time without progress, in ms on the source's clock; `end_ms` None: still open when
    the flows stopped."""

    start_ms: int
    end_ms: int | None

    def length_ms(self, end_of_flows: int) -> int:
        return (self.end_ms if self.end_ms is not None else end_of_flows) - self.start_ms


@dataclass(frozen=True)
class TcpFigures:
    connected: bool
    sent: int
    echoed: int
    retransmits: int
    error: str
    stalls: tuple[Window, ...]

    @property
    def survived(self) -> bool:
        """The same connection open at the end and every line sent echoed back."""
        return self.connected and not self.error and self.echoed == self.sent


@dataclass(frozen=True)
class UdpFigures:
    sent: int
    received: int
    lost: int
    reordered: int
    duplicated: int
    windows: tuple[Window, ...]  # runs of lost datagrams, by their send times


@dataclass(frozen=True)
class ConnectFigures:
    attempts: int
    failures: int
    windows: tuple[Window, ...]  # from the first failed attempt to the next good one
    answered_by: tuple[str, ...]
    last_error: str


@dataclass(frozen=True)
class PairFigures:
    """The flows from one source pod to one target pod; `missing` says why there are none."""

    source: str
    source_node: str
    target: str
    target_node: str
    host: str
    end_ms: int = 0
    marks: Mapping[str, int] = field(default_factory=dict)
    tcp: TcpFigures | None = None
    udp: UdpFigures | None = None
    connect: ConnectFigures | None = None
    missing: str = ""


def _windows(raw: Any) -> tuple[Window, ...]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], int):
            out.append(Window(item[0], item[1] if isinstance(item[1], int) else None))
    return tuple(out)


def _int(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_result(text: str, pair: PairFigures) -> PairFigures:
    """The flow client's result document (e2e/agent.py op `flows`) -> the pair's figures;
    a missing or malformed one is the pair's `missing` reason, never raised."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), dict) for k in KINDS):
        return _replace(pair, missing=f"the flow client wrote no result: {text.strip()[:200]!r}")
    tcp, udp, conn = doc["tcp"], doc["udp"], doc["connect"]
    marks = doc.get("marks") if isinstance(doc.get("marks"), dict) else {}
    return PairFigures(
        pair.source,
        pair.source_node,
        pair.target,
        pair.target_node,
        pair.host,
        _int(doc, "end_ms"),
        {str(k): v for k, v in (marks or {}).items() if isinstance(v, int)},
        TcpFigures(
            tcp.get("connected") is True,
            _int(tcp, "sent"),
            _int(tcp, "echoed"),
            _int(tcp, "retransmits"),
            str(tcp.get("error") or ""),
            _windows(tcp.get("stalls")),
        ),
        UdpFigures(
            _int(udp, "sent"),
            _int(udp, "received"),
            _int(udp, "lost"),
            _int(udp, "reordered"),
            _int(udp, "duplicated"),
            _windows(udp.get("windows")),
        ),
        ConnectFigures(
            _int(conn, "attempts"),
            _int(conn, "failures"),
            _windows(conn.get("windows")),
            tuple(str(n) for n in conn.get("answered_by") or ()),
            str(conn.get("last_error") or ""),
        ),
    )


KINDS = ("tcp", "udp", "connect")


def _replace(pair: PairFigures, missing: str) -> PairFigures:
    return PairFigures(
        pair.source, pair.source_node, pair.target, pair.target_node, pair.host, missing=missing
    )


# --- judging ------------------------------------------------------------------------------


TCP_STALL = "TCP stream stall"


def _flow_windows(pair: PairFigures) -> list[tuple[str, Window]]:
    """Every window without progress of the pair's flows, each named by its flow."""
    return (
        [(TCP_STALL, w) for w in (pair.tcp.stalls if pair.tcp else ())]
        + [("UDP datagrams lost", w) for w in (pair.udp.windows if pair.udp else ())]
        + [("new connections failing", w) for w in (pair.connect.windows if pair.connect else ())]
    )


def _at(ms: int | None, inject: int) -> str:
    return "the end" if ms is None else f"{(ms - inject) / 1000:+.1f} s"


def judge_pair(pair: PairFigures, budget: Budget) -> list[str]:
    """What of one pair's figures is outside the budget (empty: within it)."""
    who = f"{pair.source} ({pair.source_node}) -> {pair.target} ({pair.target_node})"
    if pair.missing or pair.tcp is None or pair.udp is None or pair.connect is None:
        return [f"{who}: no figures: {pair.missing or 'the flows gave none'}"]
    inject, healed = pair.marks.get("inject"), pair.marks.get("healed")
    if inject is None or healed is None:
        seen = ", ".join(sorted(pair.marks)) or "none"
        return [f"{who}: the flows did not see the fault's marks (seen: {seen})"]
    problems = []
    if not pair.tcp.connected:
        problems.append(f"{who}: the TCP stream never connected: {pair.tcp.error}")
    fault_ms = healed - inject
    for what, w in _flow_windows(pair):
        span = f"{what} from {_at(w.start_ms, inject)} to {_at(w.end_ms, inject)} after inject"
        length = w.length_ms(pair.end_ms)
        if w.start_ms < inject - BEFORE_MARK_MS:
            problems.append(f"{who}: {span}: loss before the fault")
        elif budget.loss == "none":
            problems.append(f"{who}: {span} ({length} ms): the budget is no loss")
        elif budget.loss == "fault":
            grace = budget.after_s * 1000 + (fault_ms if what == TCP_STALL else 0)
            if w.end_ms is None or w.end_ms > healed + grace:
                problems.append(
                    f"{who}: {span} ({length} ms; the fault lasted {fault_ms} ms): over "
                    f"the budget of the fault's end + {grace / 1000:g} s"
                )
    if budget.loss == "none":
        if pair.udp.lost and not pair.udp.windows:
            problems.append(f"{who}: {pair.udp.lost} UDP datagram(s) lost: the budget is no loss")
        if pair.connect.failures and not pair.connect.windows:
            problems.append(f"{who}: {pair.connect.failures} new connection(s) failed")
        if pair.tcp.retransmits:
            problems.append(
                f"{who}: the TCP stream retransmitted {pair.tcp.retransmits} segment(s): "
                "the budget is no loss"
            )
    if budget.connections_survive and pair.tcp.connected and not pair.tcp.survived:
        why = pair.tcp.error or f"{pair.tcp.sent - pair.tcp.echoed} line(s) never echoed"
        problems.append(f"{who}: the established TCP connection did not survive ({why})")
    return problems


@dataclass(frozen=True)
class LedgerSummary:
    """A fault's ledger in the figures a report shows in one row: the `summary` of its JSON
    (faults.json), the nightly page's column and the history record's `faults[].ledger`."""

    loss_ms: int  # the longest time any flow went without progress (0: none)
    connections_survived: int
    connections: int
    udp_lost: int
    udp_sent: int
    udp_reordered: int
    tcp_retransmits: int
    connects_failed: int
    budget: str  # Budget.describe()
    within_budget: bool


def parse_summary(data: Any) -> LedgerSummary | None:
    """A summary read back from JSON (a ledger's `summary`, a history record's ledger); None
    for no summary or one whose fields do not fit."""
    if not isinstance(data, Mapping):
        return None
    words = ("budget", "within_budget")
    counts: dict[str, int] = {}
    for name in (f.name for f in fields(LedgerSummary) if f.name not in words):
        value = data.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        counts[name] = value
    budget, within = data.get("budget"), data.get("within_budget")
    if not isinstance(budget, str) or not isinstance(within, bool):
        return None
    return LedgerSummary(**counts, budget=budget, within_budget=within)


def summary_of(doc: Any) -> LedgerSummary | None:
    """The summary of a fault's ledger as recorded (Ledger.to_json, in faults.json); None for
    a fault recorded without one."""
    return parse_summary(doc.get("summary")) if isinstance(doc, Mapping) else None


@dataclass(frozen=True)
class Ledger:
    fault: str
    node: str
    budget: Budget
    fault_s: float  # inject to the end of heal, on the harness's clock
    pairs: tuple[PairFigures, ...]
    problems: tuple[str, ...] = ()

    @property
    def within_budget(self) -> bool:
        return not self.problems and bool(self.pairs)

    def loss_ms(self) -> int:
        """The longest time any flow went without progress (0: none)."""
        return max(
            (
                w.length_ms(p.end_ms)
                for p in self.pairs
                if p.tcp is not None
                for _, w in _flow_windows(p)
            ),
            default=0,
        )

    def summary(self) -> LedgerSummary:
        """The figures a report shows in one row."""
        measured = [p for p in self.pairs if p.tcp is not None]
        return LedgerSummary(
            loss_ms=self.loss_ms(),
            connections_survived=sum(1 for p in measured if p.tcp and p.tcp.survived),
            connections=len(measured),
            udp_lost=sum(p.udp.lost for p in measured if p.udp),
            udp_sent=sum(p.udp.sent for p in measured if p.udp),
            udp_reordered=sum(p.udp.reordered for p in measured if p.udp),
            tcp_retransmits=sum(p.tcp.retransmits for p in measured if p.tcp),
            connects_failed=sum(p.connect.failures for p in measured if p.connect),
            budget=self.budget.describe(),
            within_budget=self.within_budget,
        )

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["summary"] = asdict(self.summary())
        return doc


def judge(
    fault: str, node: str, budget: Budget, fault_s: float, pairs: Sequence[PairFigures]
) -> Ledger:
    problems = [p for pair in pairs for p in judge_pair(pair, budget)]
    if not pairs:
        problems.append("no flows were measured (no pod on another node)")
    return Ledger(fault, node, budget, round(fault_s, 1), tuple(pairs), tuple(problems))


# --- text ---------------------------------------------------------------------------------


def ledger_line(s: LedgerSummary | None) -> str:
    """A fault's ledger in one line for a report (the nightly page, the history's findings,
    the fault test's message); "not measured" for a fault without one."""
    if s is None:
        return "not measured"
    verdict = "within budget" if s.within_budget else "OUT OF BUDGET"
    return (
        f"loss {s.loss_ms} ms; TCP connections survived {s.connections_survived}"
        f"/{s.connections}; UDP lost {s.udp_lost}/{s.udp_sent}, "
        f"reordered {s.udp_reordered}; TCP retransmits {s.tcp_retransmits}; "
        f"new connections failed {s.connects_failed}; budget: {s.budget}: {verdict}"
    )


def _spans(windows: Sequence[Window], inject: int, end: int) -> str:
    if not windows:
        return "none"
    shown = [
        f"{_at(w.start_ms, inject)}..{_at(w.end_ms, inject)} ({w.length_ms(end)} ms)"
        for w in windows[:4]
    ]
    more = f" and {len(windows) - 4} more" if len(windows) > 4 else ""
    return ", ".join(shown) + more


def render_text(ledger: Ledger) -> str:
    s = ledger.summary()
    lines = [
        f"disruption ledger: {ledger.fault} on {ledger.node} (the fault lasted "
        f"{ledger.fault_s:g} s, inject to healed)",
        f"budget: {ledger.budget.describe()}",
        f"  why: {ledger.budget.reason}",
        f"loss {s.loss_ms} ms (longest without progress); connections survived "
        f"{s.connections_survived}/{s.connections}; UDP lost {s.udp_lost}/"
        f"{s.udp_sent}, reordered {s.udp_reordered}; TCP retransmits "
        f"{s.tcp_retransmits}; new connections failed {s.connects_failed}",
    ]
    for p in ledger.pairs:
        lines.append(f"{p.source} ({p.source_node}) -> {p.target} {p.host} ({p.target_node})")
        if p.tcp is None or p.udp is None or p.connect is None:
            lines.append(f"  no figures: {p.missing}")
            continue
        inject = p.marks.get("inject", 0)
        healed = p.marks.get("healed")
        lines.append(
            f"  marks (ms after the flows began): inject {p.marks.get('inject')}, healed "
            f"{healed} ({_at(healed, inject)}); flows ended {p.end_ms} ({_at(p.end_ms, inject)})"
        )
        lines.append(
            f"  TCP stream   {'survived' if p.tcp.survived else 'CUT'}; sent {p.tcp.sent}, "
            f"echoed {p.tcp.echoed}, retransmits {p.tcp.retransmits}"
            + (f", error: {p.tcp.error}" if p.tcp.error else "")
            + f"; stalls over {STALL_MS} ms: {_spans(p.tcp.stalls, inject, p.end_ms)}"
        )
        lines.append(
            f"  UDP stream   sent {p.udp.sent}, lost {p.udp.lost}, reordered "
            f"{p.udp.reordered}, duplicated {p.udp.duplicated}; lost runs: "
            f"{_spans(p.udp.windows, inject, p.end_ms)}"
        )
        lines.append(
            f"  connections  {p.connect.attempts} made, {p.connect.failures} failed; failing: "
            f"{_spans(p.connect.windows, inject, p.end_ms)}; answered by "
            f"{', '.join(p.connect.answered_by) or 'nobody'}"
            + (f"; last error: {p.connect.last_error}" if p.connect.failures else "")
        )
    verdict = "within budget" if ledger.within_budget else "OUT OF BUDGET"
    lines.append(f"verdict: {verdict}")
    lines += [f"  - {p}" for p in ledger.problems]
    return "\n".join(lines) + "\n"
