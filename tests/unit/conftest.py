"""Unit-test hooks. Under mutation testing (`make mutation`, docs/mutation.md) a mutant's tests
run fastest first: mutmut stops at the first failure (-x), so most mutants die in the first
milliseconds instead of after the slow property tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

STATS = Path("mutmut-stats.json")  # mutmut runs the tests from inside mutants/


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", "") or not STATS.is_file():
        return
    durations = json.loads(STATS.read_text(encoding="utf-8")).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
