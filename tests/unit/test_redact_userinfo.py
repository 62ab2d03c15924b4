"""Where a URL's userinfo ends (`_userinfo_end`, what follows `scheme://`): each rule of its
docstring with the exact index it gives."""

from __future__ import annotations

import pytest

from lab.common.redact import _userinfo_end


@pytest.mark.parametrize(
    ("rest", "end"),
    [
        ("", -1),
        ("mirror.example/pkg", -1),  # no '@'
        ("@mirror.example", 0),  # empty userinfo, then a host
        ("user:pw@mirror.example/pkg/@scope", 7),  # a host after the first '@': it ends there
        ("user:p@ss/w@rd@mirror.example", 14),  # else at the last '@' before a host
        ("user:p@ss@mirror.example/a@b", 26),  # no host after the first: the last one, too much
        ("user:pa/ss@mirror.example", 10),  # a '/' after the ':' is the password's
        (":pw/x@mirror.example", 5),  # an empty user: the ':' at 0 still opens the password
        ("mirror.example/a@b", -1),  # an '@' in the path
        ("user/x:pw@mirror.example", -1),  # a '/' before any ':': a path
        ("mirror.example:8080/a@b", -1),  # a port, then a path
        (":8080/a@b", -1),
        ("/x@mirror.example", -1),  # a path from the first character
        ("user@mirror.example/pkg", 4),  # a '/' after the '@' is the host's path
        ("u:p:80/a@mirror.example", 8),  # the first ':' opens the password: no port
        ("u:p/x:y@mirror.example", 7),  # a '/' between two ':' is the password's
        ("mirror.example:123456/a@b", 23),  # six digits are no port: a password
        ("u:p@x", 3),  # no host name after it, but a host start: the last '@' that has one
        ("u:p@@", -1),  # no host start after any '@'
        ("u:p@localhost:6443/api", 3),
        ("u:p@[::1]:80/x", 3),
        ("u:p@10.0.0.1?q=@x", 3),  # the host ends at '?'
        ("u:p@10.0.0.1#a@x", 3),  # or at '#'
    ],
)
def test_the_userinfo_ends_at_the_at_sign_its_rules_pick(rest: str, end: int) -> None:
    assert _userinfo_end(rest) == end
