"""Hand-made nightly records for the history's tests (app/history.py, app/history_page.py):
two pods of the CRI driver, a check or two, one fault; each builder takes what a test varies."""

from __future__ import annotations

from app.history import Cell, CheckRecord, FaultRecord, MatrixRecord, RunRecord
from app.summary import StageResult
from e2e.ledger import LedgerSummary

STAGES = {"up": 40.0, "provision": 13.0, "e2e (parallel)": 40.0, "disruptive (serial)": 130.0}
PODS = ("cri-node1-p0", "cri-node2-p0")


def matrix(wrong: dict[tuple[str, str], str] | None = None) -> MatrixRecord:
    cells = tuple(
        Cell(s, t, (wrong or {}).get((s, t), "."), True) for s in PODS for t in PODS if s != t
    )
    return MatrixRecord("e2e/pod-to-pod-cri", "pod -> pod [cri]", cells)


def check(test: str, outcome: str = "passed", message: str = "") -> CheckRecord:
    return CheckRecord("e2e", "e2e/test_network_model.py", "cri", test, outcome, 0.5, message)


def flows(loss_ms: int = 3200, within_budget: bool = True, survived: int = 1) -> LedgerSummary:
    """A fault's disruption ledger in figures (e2e/ledger.py): one pair of live flows."""
    return LedgerSummary(
        loss_ms=loss_ms,
        connections_survived=survived,
        connections=1,
        udp_lost=loss_ms // 50,
        udp_sent=1200,
        udp_reordered=0,
        tcp_retransmits=3,
        connects_failed=loss_ms // 250,
        budget="loss only during the fault and at most 10 s after it; connections survive",
        within_budget=within_budget,
    )


def fault(
    recovery_s: float | None = 10.0, recovered: bool = True, ledger: LedgerSummary | None = None
) -> FaultRecord:
    return FaultRecord(
        "private link down",
        "node2",
        ("a->b",),
        ("a->b",),
        (),
        recovered,
        recovery_s,
        90.0,
        ledger=flows() if ledger is None else ledger,
    )


def run(
    name: str,
    *,
    lab: str = "ci-debian12",
    passed: bool = True,
    stages: dict[str, float] | None = None,
    checks: tuple[CheckRecord, ...] = (check("test_mtu[cri]"), check("test_nat[cri]")),
    matrices: tuple[MatrixRecord, ...] = (),
    faults: tuple[FaultRecord, ...] = (),
) -> RunRecord:
    return RunRecord(
        run=f"{lab}-{name}",
        lab=lab,
        started=f"2026-12-0{name[-1]}T02:00:00Z",
        passed=passed,
        exit_code=0 if passed else 1,
        commit="abc1234",
        artifacts=f"../nightly/{lab}-{name}",
        page=f"../nightly/{lab}-{name}/summary.html",
        stages=tuple(StageResult(n, "ok", s, 1800) for n, s in (stages or dict(STAGES)).items()),
        checks=checks,
        matrices=matrices or (matrix(),),
        faults=faults or (fault(),),
    )
