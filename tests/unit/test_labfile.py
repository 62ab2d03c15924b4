"""The lab loader never raises: any bytes, any size, any YAML end in a Lab or in problems;
`python -m lab validate` refuses every bad input with exit 2, no traceback, bounded output.
Fuzzed with hypothesis (random bytes, random YAML documents, mutations of the shipped labs)."""

from __future__ import annotations

import copy
import string
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from lab.model import yamldoc
from lab.model.config import Lab
from lab.model.labfile import MAX_BYTES, lab_from_bytes, lab_from_text
from lab.model.problems import LINE_CHARS, Problem
from tests import fuzz

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "bad-labs"
SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "labs").glob("*.yaml"))}
MAX_OUTPUT = 60 * (LINE_CHARS + 10)  # 50 problems, a header and a count, each line bounded


def validate(path: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", "--no-host-check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_refused_cleanly(code: int, output: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output
    assert len(output) <= MAX_OUTPUT, f"{len(output)} characters of output"
    assert "problem(s)" in output


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_validate_refuses_every_bad_lab_with_exit_2_and_bounded_output(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused_cleanly(*validate(path, capsys))


def test_a_password_in_a_url_is_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = validate(BAD / "url-with-password.yaml", capsys)
    assert_refused_cleanly(code, output)
    assert "Sup3rS3cret" not in output
    assert "mirror-user" not in output
    assert "carries credentials" in output


def test_special_files_are_refused_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop_a, loop_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * (MAX_BYTES // 10 + 1))
    expected = {
        "/dev/zero": "is a character device, not a lab file",
        str(tmp_path): "is a directory",
        str(loop_a): "cannot be read (Too many levels of symbolic links)",
        str(binary): "contains NUL bytes",
        str(big): "is larger than 2 MiB",
        str(tmp_path / "missing.yaml"): "cannot be read (No such file or directory)",
    }
    for path, message in expected.items():
        code, output = validate(path, capsys)
        assert_refused_cleanly(code, output)
        assert message in output, output


def test_a_big_dense_file_stops_at_the_value_bound_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("".join(f"k{i}: [a, b, {{c: d}}]\n" for i in range(90_000)))  # 1.9 MB
    start = time.monotonic()
    code, output = validate(path, capsys)
    assert time.monotonic() - start < 5
    assert_refused_cleanly(code, output)
    assert "has more than 20000 values (stopped reading here)" in output


def test_a_huge_value_is_echoed_cut_to_a_readable_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "labs" / "ci-debian12.yaml").read_text()
    path = tmp_path / "lab.yaml"
    path.write_text(text.replace("{name: node2,", "{name: " + "x" * 1_000_000 + ","))
    code, output = validate(path, capsys)
    assert_refused_cleanly(code, output)
    assert "nodes[1].name = 'xxxxxxxxxxxxxxx" in output
    assert "… (1000000 characters): is longer than 2048 characters" in output


def test_thousands_of_problems_print_fifty_and_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("".join(f"key{i}: {i}\n" for i in range(3000)))  # 6000 values: allowed
    code, output = validate(path, capsys)
    assert_refused_cleanly(code, output)
    assert "3006 problem(s)" in output  # 3000 unknown keys and 6 required ones
    assert "... and 2956 more problem(s)" in output


@pytest.mark.parametrize(
    ("scalar", "problem"),
    [
        ("0x1F", "was read as the number 31, not as text"),
        ("1_000", "was read as the number 1000, not as text"),
        ("1:30", "was read as the number 90 (base 60), not as text"),
        (".inf", "was read as the number inf, not as text"),
        ("Yes", "was read as true, not as text"),
        ("OFF", "was read as false, not as text"),
        ("2021-06-14 10:00:00", "was read as a time, not as text"),
        ("~", "is empty"),
        ("123", "was read as a number, not as text; put it in quotes: '123'"),
        ("' node1'", "has whitespace around it; write 'node1'"),
        ('"node\\u200b1"', "contains U+200B ZERO WIDTH SPACE, which shows nothing, at position 4"),
    ],
)
def test_yaml_surprises_in_a_text_field_are_named(scalar: str, problem: str) -> None:
    text = (ROOT / "labs" / "ci-debian12.yaml").read_text()
    lab, problems = lab_from_text(text.replace("{name: node2,", f"{{name: {scalar},"))
    assert lab is None
    (found,) = [str(p) for p in problems if p.where == "nodes[1].name"]
    assert problem in found


def test_a_yaml_error_points_at_the_line_where_the_fault_is() -> None:
    _, problems = yamldoc.read_yaml("name: x\nnodes: [\n  a,\n  b\nvm: 1\n")
    (problem,) = problems
    assert problem.where == "line 2, column 8"
    assert "while parsing a flow sequence" in problem.message
    assert problem.fix == "close the '[' with ']'"


# ---------------------------------------------------------------------------------------------
# Fuzzing: whatever comes in, a Lab or problems, never an exception

FUZZ = settings(
    max_examples=fuzz.examples(100), deadline=None, suppress_health_check=list(HealthCheck)
)


def assert_lab_or_problems(result: tuple[Lab | None, list[Problem]]) -> None:
    lab, problems = result
    assert (lab is None) == bool(problems)
    for problem in problems:
        assert len(str(problem)) <= LINE_CHARS + 1


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["10.10.10.0/24", "10.10.10.241", "010", "yes", "node1", "flannel", "el7", "::1", "1.18.1"]
    )
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(sorted(Lab.__dataclass_fields__)),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_give_a_lab_or_problems(data: bytes) -> None:
    assert_lab_or_problems(lab_from_bytes(data))


@FUZZ
@given(documents)
def test_any_yaml_document_gives_a_lab_or_problems(document: object) -> None:
    assert_lab_or_problems(lab_from_text(yaml.safe_dump(document)))


yamlish = st.lists(
    st.sampled_from(
        [
            *"abn01:-[]{}&*!|>'\"#,?%@` \n\t.",
            "  ",
            "- ",
            ": ",
            "&a ",
            "*a",
            "!!int ",
            "!!str ",
            "!!timestamp ",
            "!!float ",
            "!!bool ",
            "!!set ",
            "!!binary ",
            "<<: ",
            "---\n",
            "\\u00e9",
        ]
    ),
    max_size=40,
).map("".join)


@FUZZ
@given(yamlish)
def test_any_yaml_like_text_gives_a_lab_or_problems(text: str) -> None:
    assert_lab_or_problems(lab_from_text(text))


_paths = fuzz.paths_in


@st.composite
def mutated_labs(draw: st.DrawFn) -> object:
    """A shipped lab with a few of its values replaced, keys dropped or added: input that gets
    past the structure into the semantic checks."""
    doc = copy.deepcopy(SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))])
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)[1:]
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.integers(0, 2))
        if action == 0:
            parent[path[-1]] = draw(documents)
        elif action == 1 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8))] = (
                draw(scalars)
            )
    return doc


@settings(FUZZ, max_examples=fuzz.examples(60))  # each example builds and validates a whole lab
@given(mutated_labs())
def test_any_mutation_of_a_shipped_lab_gives_a_lab_or_problems(document: object) -> None:
    assert_lab_or_problems(lab_from_text(yaml.safe_dump(document)))
