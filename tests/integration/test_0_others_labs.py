"""Before anything else: a lab runs beside the session's own, as a person's would (theirs, or
one brought up here with `python -m lab up`). test_9 shows the session left it untouched."""

from __future__ import annotations

from tests.integration.conftest import PERSONS_LAB, OthersLabs


def test_a_persons_lab_runs_beside_the_sessions_instance(others_labs: OthersLabs) -> None:
    mine = [d for d in others_labs.domains if d.startswith(f"netlab-{PERSONS_LAB}_")]
    assert mine, f"{PERSONS_LAB} is running: {others_labs.domains}"
