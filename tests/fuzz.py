"""How many examples a property test tries: its own number, or a tenth of it under mutation
testing (`make mutation`: mutmut sets MUTANT_UNDER_TEST before the tests are imported). A
surviving mutant runs every test that reaches it, and the property tests are most of that
time; the deterministic tests pin the behaviour, the property tests look for crashes."""

from __future__ import annotations

import os


def examples(count: int) -> int:
    return max(5, count // 10) if "MUTANT_UNDER_TEST" in os.environ else count
