"""The mutation score (`make mutation`): mutmut's .meta files and docs/mutation.md in, a kill
rate out (killed / (total - equivalent)), and the gate the nightly can put on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.mutation import (
    by_module,
    main,
    merge_meta,
    module_of,
    parse_equivalents,
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
    "lab.net.cni.x_parse_result__mutmut_1": 33,  # no test reaches it: not killed
    "lab.net.cni.x_parse_result__mutmut_2": None,  # not checked yet
}


def test_kill_rate_is_detected_over_checked_non_equivalent_mutants() -> None:
    score = tally(CODES, ["lab.net.netmath.x_subnet_count__mutmut_3"])
    assert score.total == 7
    assert score.equivalent == 1
    assert score.not_checked == 1
    assert score.detected == 3  # killed, timeout, caught by type check
    assert score.scored == 5
    assert score.kill_rate == pytest.approx(3 / 5)
    assert score.survivors == (
        "lab.net.cni.x_parse_result__mutmut_1",
        "lab.net.netmath.x_subnet_count__mutmut_2",
    )


def test_an_equivalent_counts_nowhere_whatever_its_status() -> None:
    assert tally(CODES, []).kill_rate == pytest.approx(3 / 6)
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
    assert score.kill_rate == pytest.approx(1 / 2)


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
        "mutation score of the pure core: 3 killed / (7 - 1 equivalent - 1 not checked) = 60.0%"
    )
    assert "    lab.net.netmath.x_subnet_count__mutmut_2" in out.splitlines()


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
    assert parts["lab.net.cni"].kill_rate == pytest.approx(1 / 2)
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
