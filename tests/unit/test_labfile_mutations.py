"""Bad lab files of our own making (issue 30): the shipped labs (labs/*.yaml) mutated field by
field with values of every YAML type, Unicode category and size, each with a secret planted
where it makes the file bad. `validate` (app.cli.main, in process, as `python -m lab validate`
runs it) must answer every one with exit 2, within a bound, with bounded output, no traceback,
and never the planted secret (nor any 8 characters of it).

Two passes: a sweep that puts one value on every field of every shipped lab (the kinds of value
taken in turn), and a hypothesis search (fixed seed, no database) over several fields at once."""

from __future__ import annotations

import copy
import datetime
import string
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from app.cli import main
from lab.model.problems import LINE_CHARS
from tests import fuzz

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "labs").glob("*.yaml"))}
MAX_OUTPUT = 60 * (LINE_CHARS + 10)  # 50 problems, a header and a count, each line bounded
MAX_SECONDS = 10.0  # one validation takes ~20 ms; the bound is for a hang, not for speed

# one value of each kind, taken in turn by the sweep: every YAML type, Unicode's categories
# (letters of other scripts, look-alikes, marks, spaces, format and private-use characters,
# symbols), and sizes (empty, long text, a long number, deep and wide structures)
KINDS: list[object] = [
    None,
    True,
    0,
    -1,
    10**30,
    1.5,
    float("inf"),
    float("nan"),
    "",
    " ",
    "x" * 5000,
    "9" * 3000,
    "n\u043ede1",  # a Cyrillic o
    "\u03bd\u03bf\u03b4\u03b5",  # Greek
    "node\u200b1",  # a zero-width space
    "node\u00a01",  # a no-break space
    "e\u0301",  # a combining mark
    "\u202eevil",  # a bidi override
    "\ue000",  # private use
    "\U0001f600",  # an emoji (So)
    "两个节点",  # CJK letters
    "\uff4e\uff4f\uff44\uff45",  # fullwidth
    "10.10.10.\u0662\u0664\u0661",  # Arabic-Indic digits
    b"\x00\xff binary",
    datetime.date(2021, 6, 14),
    [],
    {},
    [None, 1, "a"],
    {"a": {"b": {"c": [1, 2, 3]}}},
    list(range(500)),
    {f"k{i}": i for i in range(300)},
]


def leaf_paths(node: Any) -> list[tuple[Any, ...]]:
    """Every path into `node` (mappings and lists), the root left out."""
    return fuzz.paths_in(node)[1:]


def set_path(doc: Any, path: tuple[Any, ...], value: object) -> None:
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value


PLANTS = 7


def plant(doc: dict[str, Any], how: int, secret: str) -> None:
    """Put `secret` where it makes the lab bad whatever else it holds: a URL's password (also
    in a box name given as a URL), a secret-named unknown key (YAML or environment style), a
    node name that is a flag with its token or a key with its value."""
    vm = doc["vm"] = doc.get("vm") if isinstance(doc.get("vm"), dict) else {}
    if how == 0:
        vm["box_url"] = f"https://mirror-user:{secret}@boxes.example/netlab.box"
    elif how == 1:
        doc["registry_password"] = secret
    elif how == 2:
        doc["os"] = {"family": "el7", "vault_url": f"https://u:{secret}@vault.example/7.9/"}
    elif how == 3:
        doc["nodes"] = [{"name": f"--token={secret}", "ip": "10.10.10.241"}]
    elif how == 4:
        doc["nodes"] = [{"name": f"token: {secret}", "ip": "10.10.10.241"}]
    elif how == 5:
        vm["box"] = f"https://robot:{secret}@boxes.example/netlab.box"
    else:
        doc["AWS_SECRET_ACCESS_KEY"] = secret


def validate(text: str, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path.write_text(text, encoding="utf-8")
    start = time.monotonic()
    code = main(["validate", "--no-host-check", str(path)])
    elapsed = time.monotonic() - start
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert elapsed < MAX_SECONDS, f"validate took {elapsed:.1f} s"
    return code, output


def assert_refused_without_the_secret(code: int, output: str, secret: str, text: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output
    assert len(output) <= MAX_OUTPUT, f"{len(output)} characters of output"
    # 8 characters of the secret that the file holds nowhere else (a mutation may hold them)
    pieces = {p for p in (secret[i : i + 8] for i in range(len(secret) - 7)) if text.count(p) == 1}
    shown = [piece for piece in pieces if piece in output]
    assert not shown, f"the planted secret shows ({shown}) in:\n{output}"


SECRET = "Pl4nted/S3cr3t@Value:x"


@pytest.mark.parametrize("lab", sorted(SHIPPED))
def test_every_field_of_a_shipped_lab_with_a_value_of_each_kind_is_refused_cleanly(
    lab: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, path in enumerate(leaf_paths(SHIPPED[lab])):
        doc = copy.deepcopy(SHIPPED[lab])
        set_path(doc, path, KINDS[(i + len(path)) % len(KINDS)])
        plant(doc, i % PLANTS, SECRET)
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        code, output = validate(text, tmp_path / "lab.yaml", capsys)
        where = f"[{'.'.join(map(str, path))}]\n"
        assert_refused_without_the_secret(code, where + output, SECRET, text)


# --- a search over several fields at once ------------------------------------------------------

categories = st.characters(
    categories=["Lu", "Ll", "Lo", "Nd", "Mn", "Zs", "Cf", "So", "Sm", "Pd", "Po", "Co"],
)
texts = st.one_of(
    st.text(categories, max_size=40),
    st.text(string.printable, max_size=40),
    st.integers(0, 6000).map(lambda n: "y" * n),
    st.sampled_from([k for k in KINDS if isinstance(k, str)]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.floats(),
    texts,
    st.binary(max_size=8),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(texts, kids, max_size=4),
    max_leaves=12,
)
secrets = st.text(string.ascii_letters + string.digits + "/@:?#%!~", min_size=16, max_size=30)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    lab = draw(st.sampled_from(sorted(SHIPPED)))
    doc = copy.deepcopy(SHIPPED[lab])
    for _ in range(draw(st.integers(1, 3))):
        paths = leaf_paths(doc)
        if not paths:
            break
        set_path(doc, draw(st.sampled_from(paths)), draw(values))
    secret = draw(secrets)
    plant(doc, draw(st.integers(0, PLANTS - 1)), secret)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw(st.booleans())), secret


@fuzz.fixed(40)
@given(case=mutated())
def test_any_mutation_of_a_shipped_lab_with_a_planted_secret_is_refused_cleanly(
    case: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, secret = case
    if text.count(secret) != 1:  # the mutation itself holds the secret's text: not planted
        return
    code, output = validate(text, tmp_path / "lab.yaml", capsys)
    assert_refused_without_the_secret(code, output, secret, text)
