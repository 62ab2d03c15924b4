"""The e2e suite relies on `--dist loadgroup` (pyproject addopts): the CNI DEL tests of a node
share one sandbox only when xdist sends every test of the `cni-contract` group to one worker.
Some pytest/xdist pairs stop grouping without a word (pytest-dev/pytest-xdist#1386), so the
installed pair is tried here on a tiny suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = """
import pytest

@pytest.mark.xdist_group("g")
@pytest.mark.parametrize("n", range(6))
def test_grouped(n):
    pass

@pytest.mark.parametrize("n", range(6))
def test_free(n):
    pass
"""


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ,
    reason="checks the installed pytest + xdist, not the core: under mutmut's runner the inner "
    "pytest inherits mutmut's environment (run it with `make unit`)",
)
def test_the_installed_pytest_and_xdist_send_a_group_to_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_groups.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "3",
            "--dist",
            "loadgroup",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-v",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    workers = {
        line.split()[0]
        for line in done.stdout.splitlines()
        if line.startswith("[gw") and "PASSED" in line and "test_grouped" in line
    }
    assert len(workers) == 1, f"the group ran on {sorted(workers)}:\n{done.stdout[-3000:]}"
