"""NETLAB_UPDATE_GOLDEN=1 shows what it rewrites and is refused on CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.golden import GoldenUpdated, GoldenUpdateRefused, golden_text, on_ci


def test_without_the_variable_the_stored_text_is_returned_untouched(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text("old\n")
    assert golden_text(path, "new\n", environ={}) == "old\n"
    assert path.read_text() == "old\n"


def test_an_update_rewrites_the_file_and_shows_the_diff(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text("same\nold\n")
    with pytest.warns(GoldenUpdated) as seen:
        assert golden_text(path, "same\nnew\n", environ={"NETLAB_UPDATE_GOLDEN": "1"}) == (
            "same\nnew\n"
        )
    message = str(seen[0].message)
    assert "-old\n" in message
    assert "+new\n" in message
    assert str(path) in message


@pytest.mark.parametrize(
    "environ",
    [{"CI": "1"}, {"CI": "true"}, {"NETLAB_CI_RUN": "1"}],
    ids=["CI=1", "CI=true", "under-.ci-run"],
)
def test_an_update_is_refused_on_ci_and_the_file_is_left_alone(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    path = tmp_path / "g.json"
    path.write_text("old\n")
    with pytest.raises(GoldenUpdateRefused, match="never rewritten on CI"):
        golden_text(path, "new\n", environ={"NETLAB_UPDATE_GOLDEN": "1", **environ})
    assert path.read_text() == "old\n"


def test_ci_detection() -> None:
    assert on_ci({}) == ""
    assert on_ci({"CI": "0"}) == ""
    assert on_ci({"CI": "false"}) == ""
    assert "CI='1'" in on_ci({"CI": "1"})
    assert ".ci/run" in on_ci({"NETLAB_CI_RUN": "1"})


def test_ci_run_marks_itself_so_golden_updates_are_refused_there() -> None:
    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "export NETLAB_CI_RUN=1" in script
