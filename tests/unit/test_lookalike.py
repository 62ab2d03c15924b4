"""Look-alike and invisible characters (lab/model/lookalike.py) are named by code point wherever
a lab file's key, name, URL or value is echoed, and a key that only looks like a known one is
never answered with "did you mean" that key: the character that is wrong is named instead
(issue 30: "unknown key 'nodes'; did you mean 'nodes'?", the first with a Cyrillic o)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cli import main
from lab.model import lookalike
from lab.model.config import Lab
from lab.model.labfile import lab_from_text
from lab.model.problems import Problem
from lab.model.strict import NOT_IN_FILES
from tests import fuzz

ROOT = Path(__file__).resolve().parents[2]
CI = (ROOT / "labs" / "ci-debian12.yaml").read_text()
GUIDE = (ROOT / "labs" / "guide-centos7.yaml").read_text()
CYRILLIC_O, GREEK_O, ZWSP, NBSP = "\u043e", "\u03bf", "\u200b", "\u00a0"
NODES = "[{'ip': '10.10.40.241', 'name': 'node1'}, {'ip': '10.10.40.242', 'name': 'node2'}]"


def problems(text: str) -> list[str]:
    lab, found = lab_from_text(text)
    assert lab is None, "the file must be refused"
    return [str(p) for p in found]


def swap(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


# --- the module -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reads", "named"),
    [
        (f"n{CYRILLIC_O}des", "nodes", "U+043E CYRILLIC SMALL LETTER O, which looks like 'o'"),
        (f"n{GREEK_O}des", "nodes", "U+03BF GREEK SMALL LETTER OMICRON, which looks like 'o'"),
        (f"node{ZWSP}1", "node1", "U+200B ZERO WIDTH SPACE, which shows nothing"),
        (f"a{NBSP}b", "a b", "U+00A0 NO-BREAK SPACE, a space that is no plain space"),
        ("host\u2010routes", "host-routes", "U+2010 HYPHEN, which looks like '-'"),
        ("\uff4e\uff4f\uff44\uff45", "node", "U+FF4E FULLWIDTH LATIN SMALL LETTER N"),
        ("10.10.10.\u0662\u0664\u0661", "10.10.10.241", "U+0662 ARABIC-INDIC DIGIT TWO, a digit"),
        ("\ufeffname", "name", "U+FEFF ZERO WIDTH NO-BREAK SPACE, which shows nothing"),
        ("a\u202eb", "ab", "U+202E RIGHT-TO-LEFT OVERRIDE, which shows nothing"),
        ("a\u3164b", "ab", "U+3164 HANGUL FILLER, which shows nothing"),
    ],
    ids=[
        *("cyrillic", "greek", "zero-width", "no-break-space", "hyphen", "fullwidth"),
        *("arabic-digits", "bom", "bidi", "hangul-filler"),
    ],
)
def test_a_suspect_is_named_with_its_code_point_and_what_it_passes_for(
    text: str, reads: str, named: str
) -> None:
    assert lookalike.skeleton(text) == reads
    assert named in lookalike.explain(text)


def test_plain_ascii_and_real_non_latin_text_have_no_suspects() -> None:
    assert lookalike.suspects(string.printable.replace("\x0b", "").replace("\x0c", "")) == ()
    # a description in Chinese or Russian is text, not a look-alike (no Latin letter it fakes)
    assert lookalike.suspects("两个节点") == ()
    assert lookalike.explain("два узла") == ""
    # but a word of look-alikes only passes for ASCII: "exo" in Cyrillic reads as "exo"
    assert lookalike.skeleton("\u0435\u0445\u043e") == "exo"
    assert len(lookalike.suspects("\u0435\u0445\u043e")) == 3


def test_a_suspect_says_where_it_is() -> None:
    (suspect,) = lookalike.suspects(f"n{CYRILLIC_O}des")
    assert suspect.position == 1
    assert suspect.describe(f"n{CYRILLIC_O}des").endswith("at position 1 (after 'n')")
    (first,) = lookalike.suspects(f"{ZWSP}x")
    assert first.describe(f"{ZWSP}x").endswith("at position 0 (at the start)")


# --- in a lab file ------------------------------------------------------------------------------


def test_a_key_that_only_looks_like_a_known_one_names_the_character_and_offers_nothing() -> None:
    found = problems(swap(CI, "\nnodes:", f"\nn{CYRILLIC_O}des:"))
    assert found == [
        f"['n{CYRILLIC_O}des'] = {NODES}: is not the key 'nodes' it looks like: it contains "
        "U+043E CYRILLIC SMALL LETTER O, which looks like 'o', at position 1 (after 'n'); "
        "retype it in plain ASCII (a look-alike comes from a copy and paste or a keyboard)",
        "nodes: is required (a list, each item a mapping (its keys: name, ip, role, cpus, "
        f"memory_mib)); the key 'n{CYRILLIC_O}des' only looks like it",
    ]


def test_a_key_with_an_invisible_character_says_to_delete_it() -> None:
    found = problems(swap(CI, "\nnetwork:", f"\nnetwork{ZWSP}:"))
    assert found == [
        "['network\\u200b'] = {'management': '192.168.130.0/24', 'private': '10.10.40.0/24'}: "
        "is not the key 'network' it looks like: it contains U+200B ZERO WIDTH SPACE, which "
        "shows nothing, at position 7 (after 'network'); delete the character(s) that show "
        "nothing (retype the text by hand)",
        "network: is required; the key 'network\\u200b' only looks like it",
    ]


def test_a_misspelt_key_with_a_look_alike_still_gets_the_key_it_misses() -> None:
    found = problems(swap(CI, "\nnodes:", f"\nn{CYRILLIC_O}dez:"))
    assert found == [
        f"['n{CYRILLIC_O}dez'] = {NODES}: unknown key (it contains U+043E CYRILLIC SMALL "
        "LETTER O, which looks like 'o', at position 1 (after 'n')); did you mean 'nodes'?",
        "nodes: is required (a list, each item a mapping (its keys: name, ip, role, cpus, "
        "memory_mib))",
    ]


def test_a_hostname_with_a_look_alike_names_it_and_suggests_no_look_alike_free_copy() -> None:
    (found,) = problems(swap(CI, "{name: node2,", f"{{name: n{CYRILLIC_O}de2,"))
    assert found == (
        f"nodes[1].name = 'n{CYRILLIC_O}de2': hostname must be a DNS-1123 label (lowercase "
        "letters, digits, '-'; start and end with a letter or digit; at most 63 characters): "
        "kubeadm rejects it otherwise (it contains U+043E CYRILLIC SMALL LETTER O, which looks "
        "like 'o', at position 1 (after 'n')); retype it in plain ASCII (a look-alike comes "
        "from a copy and paste or a keyboard)"
    )


def test_a_url_with_a_look_alike_host_names_it() -> None:
    url = "https://mirrors.\u0430liyun.com/centos-vault/7.9.2009/"
    found = problems(swap(GUIDE, "https://mirrors.aliyun.com/centos-vault/7.9.2009/", url))
    assert found == [
        f"os.vault_url = '{url}': must be an http(s) URL (it contains U+0430 CYRILLIC SMALL "
        "LETTER A, which looks like 'a', at position 16 (after 's://mirrors.')); e.g. "
        "https://mirrors.example.org/"
    ]


def test_a_literal_with_a_look_alike_names_it() -> None:
    (found,) = problems(swap(CI, "driver: host-routes", "driver: host\u2010routes"))
    assert found == (
        "pod_network.driver = 'host\u2010routes': is not a pod-network backend this harness "
        "knows (it contains U+2010 HYPHEN, which looks like '-', at position 4 (after 'host')); "
        "use one of: bgp, flannel, host-routes, vxlan"
    )


@pytest.mark.parametrize(
    ("value", "named", "fix"),
    [
        (f"node{ZWSP}2", "U+200B ZERO WIDTH SPACE, which shows nothing", "remove it: 'node2'"),
        (
            f"'node{NBSP}2'",
            "U+00A0 NO-BREAK SPACE, a space that is no plain space",
            "write a plain space, or none: 'node 2'",
        ),
        ("node\u2060" + "2", "U+2060 WORD JOINER, which shows nothing", "remove it: 'node2'"),
    ],
    ids=["zero-width", "no-break-space", "word-joiner"],
)
def test_an_invisible_character_in_a_value_is_named_and_the_fix_shows_the_value_without_it(
    value: str, named: str, fix: str
) -> None:
    (found,) = problems(swap(CI, "{name: node2,", f"{{name: {value},"))
    shown = value.strip("'")
    assert (
        found == f"nodes[1].name = {shown!r}: contains {named}, at position 4 (after 'node'); {fix}"
    )


def test_a_no_break_space_after_a_colon_is_named_at_its_line() -> None:
    found = problems(swap(CI, "\nname: ci-debian12", f"\nname:{NBSP}ci-debian12"))
    assert found[0] == (
        "line 5, column 6 = 'name:\\xa0ci-debian12': has U+00A0 NO-BREAK SPACE (no plain space) "
        "right after the key's ':', where YAML needs a plain space: YAML does not read the line "
        "as the key and value it looks like; type a plain space there"
    )


def test_a_zero_width_space_in_the_indentation_is_named() -> None:
    found = problems(swap(CI, "\n  box: netlab/debian12", f"\n{ZWSP}  box: netlab/debian12"))
    assert found[0] == (
        "line 8, column 1 = '\\u200b  box: netlab/debian12': has U+200B ZERO WIDTH SPACE (it "
        "shows nothing) in the indentation, where YAML needs a plain space: YAML does not read "
        "the line as the key and value it looks like; type a plain space there"
    )


def test_a_suspect_inside_quotes_or_a_comment_is_no_structural_fault() -> None:
    text = swap(CI, "description: 2 Debian 12 nodes,", f'description: "2 Debian:{NBSP}12 nodes,')
    text = swap(text, "host-gw style routes", 'host-gw style routes"  # a:\u00a0b')
    lab, found = lab_from_text(text)
    assert lab is None
    assert [str(p) for p in found] == [
        "description = '2 Debian:\\xa012 nodes, CNI bridge + host-local, host-gw style r'… (65 "
        "characters): contains U+00A0 NO-BREAK SPACE, a space that is no plain space, at "
        "position 9 (after '2 Debian:'); write a plain space, or none: '2 Debian: 12 nodes, CNI "
        "bridge + host-local, host-gw style r'… (65 characters)"
    ]


# --- never "did you mean" what was typed ------------------------------------------------------

CONFUSABLE = {
    "a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441",
    "i": "\u0456", "s": "\u0455", "_": "\uff3f", "x": "\u0445", "n": "\u0578",
}  # fmt: skip
KEYS = sorted(Lab.__dataclass_fields__.keys() - NOT_IN_FILES)


@fuzz.fixed(40)
@given(st.sampled_from(KEYS), st.data())
def test_a_known_key_with_one_character_swapped_for_a_look_alike_is_never_offered_back(
    key: str, data: st.DataObject
) -> None:
    positions = [i for i, ch in enumerate(key) if ch in CONFUSABLE]
    if not positions:
        return
    at = data.draw(st.sampled_from(positions))
    faked = key[:at] + CONFUSABLE[key[at]] + key[at + 1 :]
    text = CI if key in CI else GUIDE
    lab, found = lab_from_text(swap(text, f"\n{key}:", f"\n{faked}:"))
    assert lab is None
    rendered = [str(p) for p in found]
    assert not any(f"did you mean {key!r}" in p for p in rendered), rendered
    assert any(
        isinstance(p, Problem) and "U+" in str(p) and lookalike.code_point(faked[at]) in str(p)
        for p in found
    ), rendered


# --- on the command line -----------------------------------------------------------------------


def test_a_lab_or_node_name_typed_with_a_look_alike_names_the_character(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "ci-d\u0435bian12"]) == 2
    assert "it contains U+0435 CYRILLIC SMALL LETTER IE, which looks like 'e'" in (
        capsys.readouterr().err.replace("\n", "")
    )
    assert main(["plan", "ci-debian12", "--node", f"n{CYRILLIC_O}de1"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert f"has no node 'n{CYRILLIC_O}de1' (it contains U+043E CYRILLIC SMALL LETTER O" in err
