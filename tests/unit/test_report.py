"""The matrices' report (e2e/report.py): the heatmap's labels, where the matrices go."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e import report


def labels(*names: str) -> list[str]:
    return report.short_labels([{"name": n, "ip": f"10.0.0.{i}"} for i, n in enumerate(names)])


def test_the_run_prefix_every_name_shares_goes_up_to_its_last_dash() -> None:
    assert labels("nl-r1a2b3-gw0-node1-p0", "nl-r1a2b3-gw0-node2-p0") == [
        "node1-p0 10.0.0.0",
        "node2-p0 10.0.0.1",
    ]
    # a shared part after the prefix's last dash stays: names are cut at a dash only
    assert labels("nl-a-x-1", "nl-a-y-1") == ["x-1 10.0.0.0", "y-1 10.0.0.1"]
    assert labels("a-b-c1", "a-b-c2") == ["c1 10.0.0.0", "c2 10.0.0.1"]


@pytest.mark.parametrize(
    ("names", "shown"),
    [
        (("nl-r1-a",), ["nl-r1-a"]),  # one name: nothing is shared, all of it is shown
        (("-x",), ["-x"]),
        (("abc1", "abc2"), ["abc1", "abc2"]),  # a shared prefix without a dash
        (("a1", "b1"), ["a1", "b1"]),  # nothing shared
        (("-x1", "-x2"), ["x1", "x2"]),  # the dash at the very start
    ],
)
def test_names_are_kept_whole_unless_a_shared_prefix_ends_at_a_dash(
    names: tuple[str, ...], shown: list[str]
) -> None:
    assert [label.split()[0] for label in labels(*names)] == shown


def test_a_matrix_without_endpoints_has_no_labels() -> None:
    assert report.short_labels([]) == []


def test_the_matrices_go_in_their_own_directory_of_the_artifacts() -> None:
    assert report.matrix_dir(Path("/a/run")) == Path("/a/run/matrices")
