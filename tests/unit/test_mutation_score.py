"""The mutation score (`make mutation`): mutmut's .meta files and docs/mutation.md in, a kill
rate out (killed / (total - equivalent)), and the gate the nightly can put on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.mutation import (
    ScopeSize,
    by_module,
    code_lines,
    excluded_lines,
    main,
    measure_scope,
    merge_meta,
    module_of,
    parse_equivalents,
    read_scope,
    render,
    reset_undetected,
    tally,
)

ROOT = Path(__file__).resolve().parents[2]

CODES: dict[str, int | None] = {
    "lab.net.netmath.x_subnet_count__mutmut_1": 1,  # killed
    "lab.net.netmath.x_subnet_count__mutmut_2": 0,  # survived
    "lab.net.netmath.x_subnet_count__mutmut_3": 0,  # survived, but listed as equivalent
    "lab.net.netmath.x_node_subnets__mutmut_1": 36,  # timeout: detected
    "lab.net.cni.xǁCniResultǁcheck__mutmut_1": 37,  # refused by the type checker: detected
    "lab.net.cni.x_parse_result__mutmut_1": 33,  # no test reaches it: no verdict
    "lab.net.cni.x_parse_result__mutmut_2": None,  # not checked yet
}


def test_kill_rate_is_detected_over_non_equivalent_mutants_with_a_verdict() -> None:
    score = tally(CODES, ["lab.net.netmath.x_subnet_count__mutmut_3"])
    assert score.total == 7
    assert score.equivalent == 1
    assert score.not_checked == 1
    assert score.unscored == 2  # not checked, no tests
    assert score.detected == 3  # killed, timeout, caught by type check
    assert score.scored == 4
    assert score.kill_rate == pytest.approx(3 / 4)
    assert score.survivors == ("lab.net.netmath.x_subnet_count__mutmut_2",)
    assert score.unscored_names == ("lab.net.cni.x_parse_result__mutmut_1",)


def test_an_equivalent_counts_nowhere_whatever_its_status() -> None:
    assert tally(CODES, []).kill_rate == pytest.approx(3 / 5)
    assert tally(CODES, ["lab.net.netmath.x_subnet_count__mutmut_1"]).detected == 2


def test_a_listed_equivalent_that_a_test_killed_is_named_for_removal() -> None:
    score = tally(
        CODES, ["lab.net.netmath.x_subnet_count__mutmut_1", "lab.net.cni.x_parse_result__mutmut_1"]
    )
    assert score.killed_equivalents == ("lab.net.netmath.x_subnet_count__mutmut_1",)
    assert "    lab.net.netmath.x_subnet_count__mutmut_1" in render(score).splitlines()


def test_a_listed_equivalent_the_run_no_longer_has_is_stale() -> None:
    gone, kept = "lab.net.netmath.x_gone__mutmut_9", "lab.net.cni.x_parse_result__mutmut_2"
    score = tally(CODES, [gone, kept])
    assert score.stale_equivalents == ("lab.net.netmath.x_gone__mutmut_9",)
    assert "no longer generated" in render(score)


def test_scoring_some_modules_ignores_the_others() -> None:
    score = tally(CODES, ["lab.net.netmath.x_subnet_count__mutmut_3"], only=["lab.net.cni.*"])
    assert score.total == 3
    assert score.equivalent == 0
    assert score.unscored == 2
    assert score.kill_rate == pytest.approx(1 / 1)


def test_no_checked_mutant_has_no_kill_rate() -> None:
    score = tally({"lab.net.cni.x_f__mutmut_1": None})
    assert score.kill_rate is None
    assert render(score).endswith("= n/a")


@pytest.mark.parametrize(
    ("mutant", "module"),
    [
        ("lab.net.netmath.x_subnet_count__mutmut_3", "lab.net.netmath"),
        ("lab.k8s.parse.x_nodes__mutmut_12", "lab.k8s.parse"),
        ("lab.net.cni.xǁCniResultǁcheck__mutmut_1", "lab.net.cni"),
        ("lab.model.problems.xǁ_Absentǁ__repr____mutmut_2", "lab.model.problems"),
    ],
)
def test_a_mutant_names_its_module(mutant: str, module: str) -> None:
    assert module_of(mutant) == module


def test_equivalents_are_read_with_their_reason_and_only_with_one() -> None:
    text = """\
## Equivalent mutants
- `lab.net.netmath.x_subnet_count__mutmut_3`: 2 ** 0 == 1 either way
* `lab.net.cni.xǁCniResultǁcheck__mutmut_1` — the default is the same value
- `lab.common.redact.x_redact__mutmut_7`
- lab.common.redact.x_redact__mutmut_8: not in backquotes
"""
    assert parse_equivalents(text) == {
        "lab.net.netmath.x_subnet_count__mutmut_3": "2 ** 0 == 1 either way",
        "lab.net.cni.xǁCniResultǁcheck__mutmut_1": "the default is the same value",
    }


def test_every_listed_equivalent_in_the_docs_has_a_reason() -> None:
    text = (ROOT / "docs" / "mutation.md").read_text(encoding="utf-8")
    listed = [
        line
        for line in text.splitlines()
        if "__mutmut_" in line and line.lstrip().startswith(("-", "*"))
    ]
    assert len(parse_equivalents(text)) == len(listed)


def test_meta_documents_merge_and_a_foreign_one_is_refused() -> None:
    merged = merge_meta(
        [
            {"exit_code_by_key": {"lab.a.x_f__mutmut_1": 1}, "durations_by_key": {}},
            {"exit_code_by_key": {"lab.b.x_g__mutmut_1": None}},
        ]
    )
    assert merged == {"lab.a.x_f__mutmut_1": 1, "lab.b.x_g__mutmut_1": None}
    with pytest.raises(ValueError, match="exit_code_by_key"):
        merge_meta([{"results": {}}])
    with pytest.raises(ValueError, match="not an integer"):
        merge_meta([{"exit_code_by_key": {"lab.a.x_f__mutmut_1": "killed"}}])


def test_render_ends_with_the_kill_rate_line() -> None:
    out = render(tally(CODES, ["lab.net.netmath.x_subnet_count__mutmut_3"]))
    assert out.splitlines()[-1] == (
        "mutation score of the judging and planning code: 3 killed / "
        "(7 - 1 equivalent - 2 unscored) = 75.0%"
    )
    assert "    lab.net.netmath.x_subnet_count__mutmut_2" in out.splitlines()
    assert "  1 without a verdict (no tests, ...):" in out.splitlines()
    assert "    lab.net.cni.x_parse_result__mutmut_1" in out.splitlines()
    assert "  1 not checked (the run stopped before them)" in out.splitlines()
    assert (
        "  2 mutant(s) unscored: the gate fails until every one has a verdict" in out.splitlines()
    )


def write_run(tmp_path: Path, codes: dict[str, int | None], equivalents: str = "") -> list[str]:
    (tmp_path / "mutants" / "lab").mkdir(parents=True)
    meta = {"exit_code_by_key": codes, "durations_by_key": {}}
    (tmp_path / "mutants" / "lab" / "netmath.py.meta").write_text(json.dumps(meta))
    (tmp_path / "mutation.md").write_text(equivalents)
    return ["--mutants", str(tmp_path / "mutants"), "--equivalents", str(tmp_path / "mutation.md")]


def test_main_gates_on_the_required_kill_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = write_run(
        tmp_path,
        {
            "lab.net.netmath.x_f__mutmut_1": 1,
            "lab.net.netmath.x_f__mutmut_2": 0,
        },
    )
    assert main([*args[:2], "score", *args[2:], "--min", "50"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("= 50.0%")
    assert main([*args[:2], "score", *args[2:], "--min", "50.1"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "below the required 50.1%"


def test_main_without_a_run_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--mutants", str(tmp_path / "none"), "score"]) == 2
    assert "run `make mutation` first" in capsys.readouterr().out


def test_a_per_module_score_shows_the_weak_module() -> None:
    parts = by_module(CODES, ["lab.net.netmath.x_subnet_count__mutmut_3"])
    assert list(parts) == ["lab.net.cni", "lab.net.netmath"]
    assert parts["lab.net.cni"].kill_rate == pytest.approx(1 / 1)
    assert parts["lab.net.netmath"].kill_rate == pytest.approx(2 / 3)


def test_recheck_marks_survivors_and_untested_for_the_next_run_and_keeps_kills() -> None:
    doc: dict[str, object] = {"exit_code_by_key": dict(CODES), "durations_by_key": {}}
    assert reset_undetected(doc) == 3
    assert doc["exit_code_by_key"] == {
        **CODES,
        "lab.net.netmath.x_subnet_count__mutmut_2": None,
        "lab.net.netmath.x_subnet_count__mutmut_3": None,
        "lab.net.cni.x_parse_result__mutmut_1": None,
    }


def test_main_recheck_rewrites_the_meta_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = write_run(
        tmp_path,
        {
            "lab.net.netmath.x_f__mutmut_1": 1,
            "lab.net.netmath.x_f__mutmut_2": 0,
        },
    )
    assert main([*args[:2], "recheck"]) == 0
    assert "1 undetected mutant(s)" in capsys.readouterr().out
    meta = json.loads((tmp_path / "mutants" / "lab" / "netmath.py.meta").read_text())
    assert meta["exit_code_by_key"] == {
        "lab.net.netmath.x_f__mutmut_1": 1,
        "lab.net.netmath.x_f__mutmut_2": None,
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [(None, "not checked"), (33, "no tests"), (5, "no tests"), (2, "interrupted"),
     (34, "skipped"), (35, "suspicious"), (77, "suspicious")],
)  # fmt: skip
def test_a_mutant_without_a_verdict_fails_the_gate_whatever_the_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: int | None, status: str
) -> None:
    codes = {f"lab.net.netmath.x_f__mutmut_{i}": 1 for i in range(1, 100)}
    codes["lab.net.netmath.x_f__mutmut_100"] = code
    args = write_run(tmp_path, codes)
    assert tally(codes).by_status == {"killed": 99, status: 1}
    assert main([*args[:2], "score", *args[2:], "--min", "95"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-2].endswith("killed / (100 - 0 equivalent - 1 unscored) = 100.0%")
    assert out[-1] == "FAIL: 1 mutant(s) without a verdict"


def test_a_run_with_a_verdict_for_every_mutant_passes_at_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = {f"lab.net.netmath.x_f__mutmut_{i}": 1 for i in range(1, 20)}
    codes["lab.net.netmath.x_f__mutmut_20"] = 0
    args = write_run(tmp_path, codes)
    assert main([*args[:2], "score", *args[2:], "--min", "95"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("= 95.0%")
    assert main([*args[:2], "score", *args[2:], "--min", "95", "--incremental"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  (incremental: verdicts kept from an earlier run; not a from-scratch figure)"
    )


SOURCE = """\
import os


def judged(x):  # a comment
    return x + 1

# a comment line


def only_tests_call_it(x):  # pragma: no mutate block (only tests call it)
    return x


class View:
    def edge(self):  # pragma: no mutate block
        return os.getcwd()

    def pure(self):
        return 2
"""


def test_the_scope_is_counted_in_code_lines_less_the_functions_kept_out() -> None:
    assert code_lines("a = 1\n\n# c\n  b = 2  # c\n") == {1, 4}
    assert excluded_lines(SOURCE) == {10, 11, 15, 16}
    sources = {
        "lab/net/judge.py": SOURCE,
        "lab/adapters/edge.py": "x = 1\ny = 2\n",
        "e2e/test_suite.py": "def test_x():\n    pass\n",  # the suite's tests: not production
        "e2e/conftest.py": "x = 1\n",
        "lab/runtime/cri/runtime_v1_pb2.py": "x = 1\n",  # generated
        "tests/unit/test_judge.py": "x = 1\n",
    }
    size = measure_scope(sources, ["lab/net/*"])
    assert size == ScopeSize(
        lines=len(code_lines(SOURCE)) - 4, production=len(code_lines(SOURCE)) + 2, files=1
    )
    assert size.render() == "scope: 6 of 12 production code lines (50%), 1 files"


def test_the_repositorys_scope_covers_the_files_pyproject_names() -> None:
    size = read_scope(ROOT)
    assert size.files >= 50
    assert 0 < size.lines < size.production
