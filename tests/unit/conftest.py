"""Unit-test hooks. Under mutation testing (`make mutation`, docs/mutation.md) a mutant's tests
run its own module's test files first (`lab.common.redact` -> test_redact*.py), then fastest
first: mutmut stops at the first failure (-x), so most mutants die in the first milliseconds
instead of after the slow property tests, or after the thousand tests that only log through the
mutated function (a redaction mutant once took 10 s to reach its own tests). The order changes
no verdict: the same tests run, and any failure kills."""

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
    own = own_tests_prefix(os.environ["MUTANT_UNDER_TEST"])
    items.sort(
        key=lambda item: (
            not Path(item.nodeid.split("::")[0]).name.startswith(own),
            durations.get(item.nodeid, float("inf")),
        )
    )


def own_tests_prefix(mutant: str) -> str:
    """The file-name prefix of the tests of a mutant's module: `test_redact` for
    `lab.common.redact.x__policy__mutmut_3` (and for a method's `...xǁClassǁname__mutmut_1`)."""
    module = mutant.split(".x_", maxsplit=1)[0].split(".xǁ", maxsplit=1)[0]
    return f"test_{module.rsplit('.', 1)[-1]}"
