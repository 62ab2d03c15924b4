"""The URLs of a lab file (box, mirrors, repositories, gpg keys), each problem pinned to the
letter: a URL the nodes cannot use is refused before any VM boots."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.model.lookalike import explain
from tests.unit.test_config_checks import problems_with as problems_of

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text())
GUIDE = yaml.safe_load((ROOT / "labs" / "guide-centos7.yaml").read_text())


def box_url_problems(port: str) -> list[str]:
    url = f"http://mirror.example:{port}/box.json"
    return problems_of(CI, {"vm.box_version": "1", "vm.box_url": url})


@pytest.mark.parametrize(
    ("port", "refused"),
    [
        ("1", False),
        ("65535", False),
        ("0080", False),  # leading zeros do not count: port 80
        ("0000001", False),  # port 1, though written in 7 digits
        ("0065535", False),
        ("0", True),
        ("0000000", True),
        ("65536", True),
        ("0065536", True),  # port 65536: the leading zeros do not bring it in range
        ("100000", True),
        ("99999999999999999999", True),
    ],
)
def test_a_url_port_is_read_as_the_number_it_is(port: str, refused: bool) -> None:
    url = f"http://mirror.example:{port}/box.json"
    assert box_url_problems(port) == (
        [f"vm.box_url = '{url}': has a port outside 1-65535"] if refused else []
    )


def test_a_url_port_is_written_in_ascii_digits() -> None:
    # Python's \d takes any script's digits: with two ARABIC-INDIC DIGIT ZEROs (U+0660) before
    # 65540 the 6-digit cut read port 6554 and accepted it; no http client reads such a port
    for port in ("\u0668\u0660", "\u0660\u066065540"):
        url = f"http://mirror.example:{port}/box.json"
        assert box_url_problems(port) == [
            f"vm.box_url = '{url}': must be an http(s) URL (it contains {explain(url)}); e.g. "
            "https://mirrors.example.org/"
        ]


KEY = (
    "must be an http(s) URL or a file on the node (file:///path); "
    "e.g. file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7"
)


@pytest.mark.parametrize(
    ("path", "keys", "problems"),
    [
        ("kubernetes.repo.gpgkeys", [""], [f"kubernetes.repo.gpgkeys[0] = '': {KEY}"]),
        (
            "kubernetes.docker.repo.gpgkeys",
            ["file:///etc/pki/docker.gpg", ""],
            [f"kubernetes.docker.repo.gpgkeys[1] = '': {KEY}"],
        ),
        ("kubernetes.docker.repo.gpgkeys", ["file:///etc/pki/docker.gpg"], []),
    ],
)
def test_a_listed_repository_key_may_not_be_empty(
    path: str, keys: list[str], problems: list[str]
) -> None:
    # only os.gpgkey_url is optional (the box carries CentOS's key); a key listed for a
    # repository is one yum will fetch
    assert problems_of(GUIDE, {path: keys}) == problems
    assert problems_of(GUIDE, {"os.gpgkey_url": ""}) == []


def test_a_dot_dot_in_the_query_is_no_path_segment_but_a_plain_paths_is() -> None:
    from lab.model.config import _climbs_out

    # only a URL's path is a path: '/../' in its query string climbs nowhere
    assert _climbs_out("https://m.example/repo?next=/../x") is False
    assert _climbs_out("https://m.example/repo/../x?next=y") is True
    # a path with no scheme is all path, '?' and all
    assert _climbs_out("repo/x?/../y") is True


def test_a_path_is_decoded_three_times_at_most_and_an_unparsable_url_climbs_nowhere() -> None:
    from lab.model.config import _climbs_out

    three = "%25252e%25252e"  # '..' percent-encoded three times over
    assert _climbs_out(f"https://m.example/a/{three}/b") is True
    assert _climbs_out(f"https://m.example/a/{three.replace('%25', '%2525', 1)}/b") is False
    # urlsplit refuses an open IPv6 bracket: the URL check tells it, not this one
    assert _climbs_out("https://[fe80::1/../x") is False
