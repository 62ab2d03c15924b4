"""Secrets never reach logs, plans, reports or exceptions (pure): the one redaction policy.

Every output of the harness goes through `redact` (printed plans, command failures, problems,
log records through `RedactFilter`, node logs, diagnostics bundles, the nightly's artifacts and
HTML summary). The policy is a table, `RULES`: each rule has a name, what it catches, and an
example with the way the policy prints it; docs/redaction.md is that table (a unit test keeps
them equal: `python -m lab.common.redact > docs/redaction.md` writes it). It masks, keeping what
names the secret so the text still reads, and it errs on the side of the secret: where a secret's
end cannot be known (an unquoted value after a secret's key, a URL password holding '@'), more
is masked rather than less. Before the table, any explicit secret the caller knows (a command's
`secrets`) is masked with its base64 forms, wherever they overlap one another.

What stays: certificate-authority data and certificates, `--discovery-token-ca-cert-hash
sha256:...` (a public pin), image digests, addresses, names. Masking is idempotent.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

MASK: Final = "<redacted>"

# a line break inside a value: a wrapped terminal line or a shell continuation
_BREAK = r"(?:\\?\r?\n[ \t]*)?"
# where a token-shaped secret may start: not inside a word, or right after a %XX escape
_START = r"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))"
# a line break in a text, or the two characters `\n` inside a JSON string
_NEWLINE = r"(?:\r?\n|(?:\\r)?\\n)"
# how deep a secret may be wrapped in base64 or percent-encoding and still be found
_MAX_DEPTH = 2
# the longest base64 run decoded to look inside (a kubeconfig or a Docker config is a few kB)
_MAX_DECODED = 64 * 1024


def _spread(char_class: str, count: int) -> str:
    """`count` characters of `char_class`, a line break allowed between any two."""
    return rf"(?:{char_class}{_BREAK}){{{count - 1}}}{char_class}"


_BOOTSTRAP_TOKEN = re.compile(
    rf"{_START}{_spread('[a-z0-9]', 6)}{_BREAK}\.{_BREAK}{_spread('[a-z0-9]', 16)}"
    r"(?![A-Za-z0-9])"
)
# a JWT's three base64url parts: a header and a payload that are JSON objects ('{"' is eyJ)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*")
_JWT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_PEM_PRIVATE_KEY = re.compile(
    r"(-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----)"
    r".*?(?:-----END (?P=kind)PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# a private key's body whose BEGIN line was cut off: base64 lines up to its END line
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")
_PEM_BEGIN_ABOVE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[ \t]*(?:\r?\n|(?:\\r)?\\n)?\Z"
)
# the shortest piece of a line's end taken for the start of a cut-off private key body
_PEM_FRAGMENT = 16
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# base64 wrapped as PEM (64) or MIME (76) does it: two full lines or more, and the last one
_B64_LINE = r"[A-Za-z0-9+/]{64}(?:[A-Za-z0-9+/]{12})?"
_B64_BREAK = rf"[ \t]*{_NEWLINE}[ \t]*"
_BASE64_BLOCK = re.compile(
    r"(?P<indent>(?<![A-Za-z0-9+/=])[ \t]*)"
    rf"(?P<body>(?:{_B64_LINE}{_B64_BREAK})+{_B64_LINE}(?:{_B64_BREAK}[A-Za-z0-9+/]+={{0,2}})?"
    rf"|(?:{_B64_LINE}{_B64_BREAK}){{2,}}[A-Za-z0-9+/]+={{0,2}})"
    r"(?=[ \t]*(?:\r?\n|\\[nr]|\Z|[\"']))"
)
_PEM_ARMOR = re.compile(r"-----(BEGIN|END) ([A-Z0-9 ]+)-----")
_SECRET_FLAG = re.compile(
    r"(--(?:(?:[a-z][a-z0-9-]{0,63}-)?(?:token|password|passwd|secret|certificate-key|api-key)|auth)"
    r"(?:[= \t]|\\?\r?\n)+)"
    r"(\"[^\"]*\"?|'[^']*'?|\S+)",
    re.IGNORECASE,
)
# a flag whose value is user:password (crictl pull --creds, curl -u); the user stays
_CREDS_FLAG = re.compile(
    r"((?<!\S)--creds(?:[= \t]|\\?\r?\n)+)(\"[^\"]*\"?|'[^']*'?|\S+)", re.IGNORECASE
)
_CURL = re.compile(r"(?<![\w.-])curl(?![\w.-])(?:[^\n|;&]|\\\r?\n)*", re.IGNORECASE)
_CURL_USER = re.compile(
    r"((?<!\S)(?:-u|-U|--user|--proxy-user)(?:[= \t]+|\\\r?\n[ \t]*)?)(\"[^\"]*\"?|'[^']*'?|\S+)"
)
_LOGIN = re.compile(
    r"(?<![\w.-])(?:docker|podman|nerdctl|buildah|skopeo|helm|oras|crane|regctl)(?![\w.-])"
    r"(?:[^\n|;&]|\\\r?\n){0,200}?(?<!\S)login(?!\S)(?:[^\n|;&]|\\\r?\n)*"
)
_LOGIN_P = re.compile(r"((?<!\S)-p(?:[= \t]+|\\\r?\n[ \t]*)?)(\"[^\"]*\"?|'[^']*'?|[^\s-]\S*)")
_CERT_KEY_LINE = re.compile(
    r"(Using certificate key:[ \t]*(?:(?:\r?\n|(?:\\r)?\\n)[ \t]*)?)[0-9a-fA-F]{64}\b"
)
# a quote around a key or a value: plain, escaped once or more inside a JSON string, or HTML
_QUOTE = r"(?:\\*\"|\\*'|&quot;|&#0?39;|&#x27;)"
_SECRET_WORDS = (
    r"password|passwd|secret|token|private[-_]?key|client-key-data"
    r"|client-certificate-data|certificate[-_]?key|api[-_]?key|dockerconfigjson|dockercfg"
    r"|account[-_]?key"
)
# an environment variable that names a cloud or generic secret (AWS_SECRET_ACCESS_KEY,
# AWS_SESSION_TOKEN, AZURE_CLIENT_SECRET, GOOGLE_API_KEY, ..._PASSWORD)
_ENV_SECRET = (
    r"[A-Z][A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|ACCOUNT_KEY|STORAGE_KEY"
    r"|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIALS?|CONNECTION_STRING|AUTH)[A-Z0-9_]*"
)
_SECRET_KEY = re.compile(
    rf"(?<![\w./-]){_QUOTE}?(?!-)"
    rf"(?:[\w.-]*?(?:{_SECRET_WORDS})|auth|(?-i:{_ENV_SECRET}))"
    rf"{_QUOTE}?[ \t]*[:=][ \t]*",
    re.IGNORECASE,
)
_OPEN_QUOTE = re.compile(_QUOTE)
_UNESCAPED_QUOTE = re.compile(r'(?<!\\)"')
# where an unquoted value inside a JSON string ends: the string's closing quote, an escape
_JSON_STRING_STOP = re.compile(r'(?<!\\)"|\\[nrt]')
# a Kubernetes env entry: `name: AWS_SECRET_ACCESS_KEY` and its `value:` (YAML or JSON)
_ENV_ENTRY = re.compile(
    rf"({_QUOTE}?name{_QUOTE}?[ \t]*:[ \t]*{_QUOTE}?(?P<var>[A-Za-z_][A-Za-z0-9_]*){_QUOTE}?"
    r"[ \t]*(?:,[ \t]*(?:\r?\n[ \t]*)?|\r?\n[ \t]*)"
    rf"{_QUOTE}?value{_QUOTE}?[ \t]*:[ \t]*)"
    rf"(?P<q>{_QUOTE}?)(?P<value>[^\n]*)"
)
_ENV_SECRET_NAME = re.compile(_ENV_SECRET, re.IGNORECASE)
_AUTHORIZATION = re.compile(
    r"(authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:bearer|basic|token|digest)[ \t]+)?)"
    r"([^\s\"',]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer[ \t]+)([A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
# where a URL starts (its userinfo is found after it by _userinfo_end)
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://")
_TOKEN_END = re.compile(r"[\s<>\"']|\Z")
_MAX_USERINFO = 512  # how far after `scheme://` its '@' is looked for
# a secret in a URL's query string (?access_token=..., &password=...), or URL-encoded anywhere
# (token%3D...): the value ends at the next parameter
_QUERY_NAME = (
    r"[\w.-]*?(?:token|password|passwd|secret|api[-_]?key|apikey|key|sig|signature|credential"
    r"|auth)"
)
_QUERY_SECRET = re.compile(
    rf"((?:[?&]|%(?:25)?(?:3[Ff]|26)){_QUERY_NAME}=|(?<![\w.%-]){_QUERY_NAME}%(?:25)?3[Dd])"
    r"((?:(?!&|%(?:25)?26)[^\s\"'<>#])+)",
    re.IGNORECASE,
)
# the query form alone, for a text with no URL-encoded '=' (the encoded form is slower to find)
_QUERY_ONLY = re.compile(
    rf"((?:[?&]|%(?:25)?(?:3[Ff]|26)){_QUERY_NAME}=)((?:(?!&|%(?:25)?26)[^\s\"'<>#])+)",
    re.IGNORECASE,
)
_ENCODED_EQUALS = re.compile(r"%(?:25)?3[Dd]")
# password,user,uid[,"groups"]: a line of kube-apiserver's --basic-auth-file (--token-auth-file
# lines have the same shape: token,user,uid)
_AUTH_CSV = re.compile(
    r"(?<![^\s\"'=>])([^,\s\"'<>]{1,256})(,[A-Za-z_][\w.@:-]{0,255},[0-9]{1,20}(?:,\"[^\"\n]*\")?)"
    r"(?![^\s\"'\\<])"
)
_BASE64_RUN = re.compile(
    rf"(?<![A-Za-z0-9+/])(?:(?:[A-Za-z0-9+/]{{64}}(?:[A-Za-z0-9+/]{{12}})?{_NEWLINE})+"
    r"[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9+/]{20,}={0,2})"
    r"|(?<![A-Za-z0-9+/_-])[A-Za-z0-9_-]{20,}={0,2}"
)
_PERCENT_RUN = re.compile(r"(?<![^\s\"'<>])[^\s\"'<>%]*(?:%[0-9A-Fa-f]{2}[^\s\"'<>%]*)+")
_LINE_BREAKS = str.maketrans("", "", "\r\n\t")

# values that name no secret even after a secret's key (`automountServiceAccountToken: false`)
_PLAIN_VALUES = frozenset(("true", "false", "null", "~", "none", MASK.lower()))


def _mask_key_values(text: str) -> str:
    """The value after each secret-naming key: quoted, to its closing quote (an unclosed
    quote: to the end of the line); a YAML block scalar (`|`, `>`), its indented lines;
    otherwise to the end of the line. A lone `{` or `[` opens a structure whose own keys are
    judged one by one."""
    out: list[str] = []
    pos = 0
    for m in _SECRET_KEY.finditer(text):
        if m.start() < pos:
            continue
        start = m.end()
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        quote = _OPEN_QUOTE.match(text, start)
        rest = text[start:line_end].strip()
        if quote:
            close = text.find(quote.group(), quote.end(), line_end)
            while close > 0 and text[close - 1] == "\\" and not quote.group().startswith("\\"):
                close = text.find(quote.group(), close + 1, line_end)  # an escaped quote
            value_start, end = quote.end(), (close if close >= 0 else line_end)
        elif rest.lower() in _PLAIN_VALUES or rest in ("{", "["):
            continue
        elif re.fullmatch(r"[|>][-+0-9]*", rest):
            value_start, end = line_end, _block_end(text, m.start(), line_end)
            if end <= value_start:
                continue
            out.append(text[pos:value_start])
            out.append("\n" + MASK)
            pos = end
            continue
        else:
            value_start, end = start, line_end
            key_at = m.start() + (text[m.start()] == '"')  # a quote before the key opens
            if _in_json_string(text, text.rfind("\n", 0, m.start()) + 1, key_at):
                stop = _JSON_STRING_STOP.search(text, start, line_end)
                end = stop.start() if stop else end
            while end > value_start and text[end - 1] in "\r \t":
                end -= 1
        if end <= value_start or text.startswith(MASK, value_start):
            continue
        out.append(text[pos:value_start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _in_json_string(text: str, line_start: int, at: int) -> bool:
    """Whether `at` is inside a JSON string opened on its line (an odd number of unescaped
    double quotes before it): a `KEY=value` logged as one JSON field."""
    return len(_UNESCAPED_QUOTE.findall(text, line_start, at)) % 2 == 1


def _block_end(text: str, key_at: int, line_end: int) -> int:
    """Where the YAML block scalar after the key at `key_at` ends: its lines are indented
    more than the key's line."""
    line_start = text.rfind("\n", 0, key_at) + 1
    indent = len(text[line_start:key_at]) - len(text[line_start:key_at].lstrip(" -"))
    end = line_end
    while end < len(text):
        nxt = text.find("\n", end + 1)
        nxt = len(text) if nxt < 0 else nxt
        line = text[end + 1 : nxt]
        if line.strip() and len(line) - len(line.lstrip(" ")) <= indent:
            break
        end = nxt
    return end


def _userinfo_end(rest: str) -> int:
    """Where the userinfo of a URL ends in `rest` (what follows `scheme://`): the index of its
    '@', or -1 when it has none. Userinfo without a ':' holds no '/' (RFC 3986); a password
    may hold any reserved character ('/', '@', ':', '?', '#'). When a host name follows the
    first '@' (`user:pw@mirror.example/pkg/@scope`), the userinfo ends there; else it runs to
    the last '@' before a host (`user:p@ss/w@rd@mirror.example`): masking too much rather
    than too little. `host:8080/a@b` is a port and a path."""
    first = rest.find("@")
    if first < 0:
        return -1
    colon = rest.find(":", 0, first)
    slash = rest.find("/", 0, first)
    if slash >= 0 and (colon < 0 or slash < colon):
        return -1  # an '@' in the path
    if colon >= 0 and slash >= 0 and re.fullmatch(r"[0-9]{1,5}", rest[colon + 1 : slash]):
        return -1  # host:port/path@...
    if _HOST_NAME.match(re.split(r"[/?#]", rest[first + 1 :], maxsplit=1)[0]):
        return first
    for end in range(len(rest) - 1, first - 1, -1):
        if rest[end] == "@" and _HOST_START.match(rest, end + 1):
            return end
    return -1


_HOST_NAME = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]{1,5})?\Z"
)
_HOST_START = re.compile(r"[\w\[]")


def _userinfo_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each URL's userinfo in `text`, its '@' left out; a URL inside another
    URL's token (a redirect parameter) is looked at too."""
    spans = []
    pos = 0
    for m in _USERINFO.finditer(text):
        if m.start() < pos:
            continue
        if text.find("@", m.end(), m.end() + _MAX_USERINFO) < 0:
            continue
        stop = _TOKEN_END.search(text, m.end(), m.end() + _MAX_USERINFO)
        rest = text[m.end() : stop.start() if stop else m.end() + _MAX_USERINFO]
        end = _userinfo_end(rest)
        if end >= 0:
            spans.append((m.end(), m.end() + end))
            pos = m.end() + end
    return spans


def _masked(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with each (start, end) span, in order and apart, replaced by the mask."""
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _mask_userinfo(text: str) -> str:
    return _masked(text, _userinfo_spans(text))


def _mask_pem_blocks(text: str) -> str:
    """Each block's BEGIN and END lines around the mask, with its own line breaks (real ones,
    or the two characters `\\n` inside a JSON string) and the BEGIN line's indentation."""

    def mask(m: re.Match[str]) -> str:
        newline = "\\n" if "\n" not in m.group() and "\\n" in m.group() else "\n"
        indent = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
        indent = indent if newline == "\n" and not indent.strip(" \t") else ""
        end = f"-----END {m.group('kind')}PRIVATE KEY-----"
        return f"{m.group(1)}{newline}{indent}{MASK}{newline}{indent}{end}"

    return _PEM_PRIVATE_KEY.sub(mask, text)


def _line_break_before(text: str, at: int, floor: int) -> int:
    """Where the line break (a real one, or `\\n` inside a JSON string) that ends just before
    `at` (blanks allowed after it) starts; -1 when there is none."""
    k = at
    while k > floor and text[k - 1] in " \t":
        k -= 1
    if k - 2 >= floor and text[k - 2 : k] == "\\n":
        return k - 4 if k - 4 >= floor and text[k - 4 : k - 2] == "\\r" else k - 2
    if k - 1 >= floor and text[k - 1] == "\n":
        return k - 2 if k - 2 >= floor and text[k - 2] == "\r" else k - 1
    return -1


def _mask_pem_tail(text: str) -> str:
    """The base64 lines just above each private key's END line, when its BEGIN line is not
    there (with it, the body is the pem-private-key rule's). Walks back from each END line,
    once over each body; the line break and indentation before the END line stay."""
    if "PRIVATE KEY-----" not in text:
        return text
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _PEM_END.finditer(text):
        start, body_end = m.start(), -1
        while True:
            brk = _line_break_before(text, start, pos)
            if brk < 0:
                break
            j = brk
            while j > pos and text[j - 1] in " \t":
                j -= 1
            i = j
            while i > pos and text[i - 1] in _BASE64_CHARS and text[i - 2 : i] != "\\n":
                i -= 1
            if i == j:
                break
            whole_line = i == 0 or _line_break_before(text, i, pos) >= 0
            if not whole_line and j - i < _PEM_FRAGMENT:
                break  # words before the body on its first line ("msg=start")
            body_end = j if body_end < 0 else body_end
            start = i
        if body_end < 0 or _PEM_BEGIN_ABOVE.search(text, max(pos, start - 80), start):
            continue
        spans.append((start, body_end))
        pos = body_end
    return _masked(text, spans)


def _eligible_jwt_start(text: str, at: int) -> bool:
    """A JWT may start at `at`: not inside a word, or right after a %XX escape."""
    if at == 0 or text[at - 1] not in _ALNUM:
        return True
    return at >= 3 and re.fullmatch(r"%[0-9A-Fa-f]{2}", text[at - 3 : at]) is not None


def _mask_jwts(text: str) -> str:
    """Every JWT (header.payload.signature, header and payload starting eyJ), found in one
    pass over the runs of characters that hold an `eyJ` (a regex would try each start)."""
    if "eyJ" not in text:
        return text
    spans: list[tuple[int, int]] = []
    at = text.find("eyJ")
    while at >= 0:
        end = at
        while end < len(text) and (text[end] in _JWT_CHARS or text[end] == "."):
            end += 1
        begin = at
        while begin > 0 and (text[begin - 1] in _JWT_CHARS or text[begin - 1] == "."):
            begin -= 1
        spans.extend(_jwts_in_run(text, begin, end))
        at = text.find("eyJ", max(end, at + 3))
    return _masked(text, spans)


def _jwts_in_run(text: str, begin: int, end: int) -> list[tuple[int, int]]:
    """The JWTs in text[begin:end], a run of base64url characters and dots."""
    parts: list[tuple[int, int]] = []  # (start, stop) of each dot-separated part
    start = begin
    for k in range(begin, end + 1):
        if k == end or text[k] == ".":
            parts.append((start, k))
            start = k + 1
    found: list[tuple[int, int]] = []
    i = 0
    while i + 2 < len(parts):
        (h0, h1), (p0, p1), (_s0, s1) = parts[i], parts[i + 1], parts[i + 2]
        header = next(
            (
                k
                for k in range(h0, h1 - 8)
                if text.startswith("eyJ", k) and _eligible_jwt_start(text, k)
            ),
            -1,
        )
        if header >= 0 and p1 - p0 >= 9 and text.startswith("eyJ", p0):
            found.append((header, s1))
            i += 3
        else:
            i += 1
    return found


def _public_armor(text: str, start: int, end: int) -> bool:
    """Whether the base64 block at text[start:end] sits in a PEM block of something public (a
    certificate, a public key): the BEGIN line just above it or the END line just below."""
    before = text[max(0, start - 200) : start]
    after = text[end : end + 200]
    above = list(_PEM_ARMOR.finditer(before))
    below = _PEM_ARMOR.search(after)
    for m, side in ((above[-1] if above else None, "BEGIN"), (below, "END")):
        if m is None or m.group(1) != side:
            continue
        gap = before[m.end() :] if side == "BEGIN" else after[: m.start()]
        if gap.strip(" \t\r\n\\n\"'") == "" and "PRIVATE KEY" not in m.group(2):
            return True
    return False


def _mask_base64_blocks(text: str) -> str:
    def mask(m: re.Match[str]) -> str:
        if _public_armor(text, m.start("body"), m.end("body")):
            return m.group()
        return m.group("indent") + MASK

    return _BASE64_BLOCK.sub(mask, text)


def _user_kept(m: re.Match[str]) -> str:
    """A user:password value with its user and quotes kept and the password masked."""
    value = m.group(2)
    quote = value[0] if value[:1] in "\"'" else ""
    inner = value[len(quote) :]
    closing = quote if quote and inner.endswith(quote) else ""
    inner = inner[: len(inner) - len(closing)] if closing else inner
    user, colon, _password = inner.partition(":")
    if not colon:  # no password in it: the whole value may be one (crictl --auth-like)
        return f"{m.group(1)}{quote}{MASK}{closing}"
    return f"{m.group(1)}{quote}{user}:{MASK}{closing}"


def _masked_inside(
    command: re.Pattern[str],
    flag: re.Pattern[str],
    replace: Callable[[re.Match[str]], str],
    text: str,
) -> str:
    """`text` with `flag`'s value masked only inside a command `command` finds (curl's -u is
    some other tool's user, and -p most tools' port)."""
    if not command.search(text):
        return text
    return command.sub(lambda m: flag.sub(replace, m.group()), text)


def _mask_curl_user(text: str) -> str:
    return _masked_inside(_CURL, _CURL_USER, _user_kept, text)


def _mask_login_password(text: str) -> str:
    return _masked_inside(_LOGIN, _LOGIN_P, lambda m: m.group(1) + MASK, text)


def _mask_env_entries(text: str) -> str:
    if "value" not in text:
        return text

    def mask(m: re.Match[str]) -> str:
        if not _ENV_SECRET_NAME.fullmatch(m.group("var")) or m.group("value").startswith(MASK):
            return m.group()
        value, quote = m.group("value"), m.group("q")
        if quote:
            close = value.find(quote)
            rest = value[close:] if close >= 0 else ""
        else:
            stripped = value.rstrip(" \t\r")
            rest = value[len(stripped) :]
            if not stripped or stripped.lower() in _PLAIN_VALUES:
                return m.group()
        return m.group(1) + quote + MASK + rest

    return _ENV_ENTRY.sub(mask, text)


def _mask_query_secrets(text: str) -> str:
    if _ENCODED_EQUALS.search(text):
        return _sub_masked("_QUERY_SECRET", text)
    if "?" in text or "&" in text:
        return _sub_masked("_QUERY_ONLY", text)
    return text


def _decoded_base64(run: str) -> str | None:
    """The text a base64 run encodes, when it is text (a run that is no base64 of text:
    None). Characters after the last whole 4-character group (the run may have taken a
    neighbour) are left out."""
    compact = re.sub(r"\\r|\\n|\s", "", run).rstrip("=")
    alphabet = "-_" if re.search(r"[-_]", compact) else "+/"
    compact = compact[: len(compact) - len(compact) % 4] if len(compact) % 4 == 1 else compact
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=alphabet.encode())
    except (binascii.Error, ValueError):
        return None
    for cut in range(4):  # the last bytes may be a neighbour's characters decoded
        try:
            decoded = raw[: len(raw) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        text = decoded.translate(_LINE_BREAKS)
        return decoded if len(decoded) >= 12 and text.isprintable() else None
    return None


def _mask_base64_wrapped(text: str, depth: int) -> str:
    """A base64 run whose text holds a secret by this policy (a join command, a Docker
    config, a kubeconfig) is masked whole."""
    if depth >= _MAX_DEPTH:
        return text

    def mask(m: re.Match[str]) -> str:
        if len(m.group()) > _MAX_DECODED:
            return m.group()
        decoded = _decoded_base64(m.group())
        if decoded is None or _policy(decoded, depth + 1) == decoded:
            return m.group()
        return MASK

    return _BASE64_RUN.sub(mask, text)


def _mask_percent_encoded(text: str, depth: int) -> str:
    """A URL-encoded value whose decoded text holds a secret by this policy (a URL with a
    password inside another URL's parameter, an encoded flag): the parameter's value masked."""
    if depth >= _MAX_DEPTH:
        return text

    def param(part: str) -> str:
        if not re.search(r"%[0-9A-Fa-f]{2}", part):
            return part
        decoded = urllib.parse.unquote(urllib.parse.unquote(part))
        if _policy(decoded, depth + 1) == decoded:
            return part
        name, eq, _value = part.partition("=")
        return f"{name}={MASK}" if eq and "%" not in name else MASK

    def run(m: re.Match[str]) -> str:
        return "&".join(param(p) for p in m.group().split("&"))

    return _PERCENT_RUN.sub(run, text)


@dataclass(frozen=True)
class Rule:
    """One rule of the policy: its `name`, what it `catches` (a sentence), an `example` text
    with a (fake) secret and the example as the policy prints it (`masked`), and `apply`."""

    name: str
    catches: str
    example: str
    masked: str
    apply: Callable[[str], str]


def _sub_masked(pattern_name: str, text: str, keep_group: int | None = 1) -> str:
    """`text` with each match of the module's pattern `pattern_name` (looked up at call time)
    masked, its group `keep_group` kept in front of the mask (None: the whole match masked).
    A plain function the rules call, not a factory they call at import (docs/mutation.md)."""
    pattern: re.Pattern[str] = globals()[pattern_name]
    if keep_group is None:
        return pattern.sub(MASK, text)
    return pattern.sub(lambda m: m.group(keep_group) + MASK, text)


_TOKEN = "7x3kq9.vb2n8m4p6r1t5w0z"  # the fake kubeadm token of tests/data/secrets
_JWT_EXAMPLE = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl"
_JOIN_B64 = base64.b64encode(f"kubeadm join 10.10.10.241:6443 --token {_TOKEN}".encode()).decode()

RULES: tuple[Rule, ...] = (
    Rule(
        "pem-private-key",
        "a PEM private-key block, its whole body, even when its END line was cut off",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----",
        f"-----BEGIN RSA PRIVATE KEY-----\n{MASK}\n-----END RSA PRIVATE KEY-----",
        _mask_pem_blocks,
    ),
    Rule(
        "pem-body-without-begin",
        "the base64 lines of a private key whose BEGIN line was cut off, up to its END line",
        "MIIEowIBAAKCAQEAx\nc2VjcmV0a2V5Ym9keQ==\n-----END PRIVATE KEY-----",
        f"{MASK}\n-----END PRIVATE KEY-----",
        _mask_pem_tail,
    ),
    Rule(
        "base64-block",
        "base64 wrapped in lines of 64 or 76 characters (two full lines or more): a PEM body "
        "without its armor, `base64` output; not inside a certificate's or public key's armor",
        "key:\n" + "QUJD" * 16 + "\n" + "REVG" * 16 + "\nR0g=\n",
        f"key:\n{MASK}\n",
        _mask_base64_blocks,
    ),
    Rule(
        "bootstrap-token",
        "a kubeadm bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}), also split by a line break or a "
        "shell continuation, and next to '_', '-', '.' or a %XX escape",
        f"then run with {_TOKEN}_old on the node",
        f"then run with {MASK}_old on the node",
        lambda text: _sub_masked("_BOOTSTRAP_TOKEN", text, None),
    ),
    Rule(
        "jwt",
        "a JSON Web Token (eyJ... . eyJ... . signature), a service-account token alone on a "
        "line or anywhere it starts a word (after a space, quote, '=', ':', a %XX escape, ...)",
        f"{_JWT_EXAMPLE}\n",
        f"{MASK}\n",
        _mask_jwts,
    ),
    Rule(
        "certificate-key-line",
        "the 64-hex certificate key kubeadm prints after 'Using certificate key:'",
        "[upload-certs] Using certificate key:\n" + "ab" * 32 + "\n",
        f"[upload-certs] Using certificate key:\n{MASK}\n",
        lambda text: _sub_masked("_CERT_KEY_LINE", text),
    ),
    Rule(
        "creds-flag",
        "the password of `--creds user:password` (crictl pull); the user stays",
        "crictl pull --creds bob:pa55w0rd registry.example/app:1",
        f"crictl pull --creds bob:{MASK} registry.example/app:1",
        lambda text: _CREDS_FLAG.sub(_user_kept, text),
    ),
    Rule(
        "curl-user",
        "the password of curl's `-u`, `--user`, `--proxy-user` user:password; the user stays",
        "curl -fsS -u admin:pa55w0rd https://10.10.10.241/",
        f"curl -fsS -u admin:{MASK} https://10.10.10.241/",
        _mask_curl_user,
    ),
    Rule(
        "login-password",
        "`-p PASSWORD` of a registry login (docker, podman, nerdctl, helm, skopeo, ... login); "
        "a quoted value goes with its quotes",
        "docker login -u bob -p pa55w0rd registry.example",
        f"docker login -u bob -p {MASK} registry.example",
        _mask_login_password,
    ),
    Rule(
        "secret-flag",
        "the value of a flag that carries a secret: --token, --discovery-token, "
        "--tls-bootstrap-token, --certificate-key, --password, --auth, --*-password, "
        "--*-token, --*-secret, in any case, after '=', spaces, tabs or a continuation line "
        "(a quoted value goes with its quotes)",
        "mysql --password hunter2-Hunter2 --user x",
        f"mysql --password {MASK} --user x",
        lambda text: _sub_masked("_SECRET_FLAG", text),
    ),
    Rule(
        "authorization-header",
        "an `Authorization:` header's credentials (Bearer, Basic, Token, Digest)",
        "Authorization: Basic dXNlcjpwYXNz, next",
        f"Authorization: Basic {MASK}, next",
        lambda text: _sub_masked("_AUTHORIZATION", text),
    ),
    Rule(
        "bearer",
        "a `Bearer` token anywhere",
        "X-Auth: Bearer abcdEFGH1234.xyz",
        f"X-Auth: Bearer {MASK}",
        lambda text: _sub_masked("_BEARER", text),
    ),
    Rule(
        "url-userinfo",
        "URL userinfo (scheme://user:password@host), a password holding '/', '@', ':', '?', "
        "'#' or %XX too; user and password go, the host stays",
        "git clone https://bob:pa/ss@w0rd@git.example/r.git",
        f"git clone https://{MASK}@git.example/r.git",
        _mask_userinfo,
    ),
    Rule(
        "url-query-secret",
        "a secret parameter of a URL (?access_token=, &password=, &sig=, &key=, ...), and one "
        "URL-encoded anywhere (token%3D...): the value, up to the next parameter",
        "https://api.example/v1?access_token=s3cr3tV4lue&page=2",
        f"https://api.example/v1?access_token={MASK}&page=2",
        _mask_query_secrets,
    ),
    Rule(
        "basic-auth-csv",
        'a --basic-auth-file or --token-auth-file line, password,user,uid[,"groups"]: the '
        "password (or token)",
        'pa55w0rd,admin,1000,"system:masters"\n',
        f'{MASK},admin,1000,"system:masters"\n',
        lambda text: _AUTH_CSV.sub(lambda m: MASK + m.group(2), text),
    ),
    Rule(
        "env-entry",
        "a Kubernetes env entry whose name names a secret (name: AWS_SECRET_ACCESS_KEY, then "
        "value: ...), in YAML or JSON",
        "- name: AWS_SECRET_ACCESS_KEY\n  value: wJalrXUtnFEMI\n",
        f"- name: AWS_SECRET_ACCESS_KEY\n  value: {MASK}\n",
        _mask_env_entries,
    ),
    Rule(
        "secret-key-value",
        "the value of a key that names a secret, in YAML, JSON (escaped inside a string too), "
        "env or HTML-escaped JSON: token, password, *-secret, *_token, client-key-data, "
        "certificateKey, private-key, api-key, auth (a Docker config.json), .dockerconfigjson, "
        "and environment variables like AWS_SECRET_ACCESS_KEY=, *_TOKEN=, *_PASSWORD= "
        "(quoted: to the closing quote; unquoted: to the end of the line)",
        'db_password = hunter2-Hunter2\n{"auths": {"r.io": {"auth": "dXNlcjpwYXNz"}}}',
        f'db_password = {MASK}\n{{"auths": {{"r.io": {{"auth": "{MASK}"}}}}}}',
        _mask_key_values,
    ),
    Rule(
        "base64-wrapped",
        "base64 of a text that holds a secret by this policy (a kubeadm join command, a Docker "
        "config, a kubeconfig): the whole run",
        f"echo {_JOIN_B64} | base64 -d",
        f"echo {MASK} | base64 -d",
        lambda text: _mask_base64_wrapped(text, 0),
    ),
    Rule(
        "percent-encoded",
        "a URL-encoded value whose decoded text holds a secret by this policy (a URL with a "
        "password inside another URL's parameter)",
        "https://sso.example/login?next=https%3A%2F%2Fbob%3Apw%40git.example%2F&x=1",
        f"https://sso.example/login?next={MASK}&x=1",
        lambda text: _mask_percent_encoded(text, 0),
    ),
)


# what the policy cannot tell apart, and which way it errs (docs/redaction.md lists them)
LIMITS = (
    "An unquoted value after a secret's key runs to the end of its line (or of its JSON "
    "string): `password=a b` masks `a b`, and `KEY=value cmd` masks `cmd` too.",
    "A JWT's signature is base64url, whose alphabet holds '_' and '-': a '_' or '-' right "
    "after a JWT (and what follows up to the next other character) is masked with it.",
    "A JWT glued to the letters or digits before it (`ideyJ...`) is taken for the tail of a "
    "longer word and is not masked; kubeadm, kubectl and the suite print a token after a "
    "space, a quote, '=', ':' or a %XX escape.",
    "A URL password may hold '/', '@', ':', '?', '#' or %XX: when a host name (with a dot, "
    "`localhost` or an address) follows its first '@', the userinfo ends there (`u:pw@"
    "mirror.example/@scope`), else at the last '@' before a host, which masks a path's '@' "
    "and what is before it too; a password holding '@' and then a host name "
    "(`u:p@evil.example/x@host`) is taken to end at that '@'.",
    "A URL whose userinfo is longer than 512 characters is not looked at as a URL (no "
    "credential is that long); a base64 run longer than 64 KiB is not decoded.",
    "Base64 that is no text (a binary, a DER key) is masked only in the shapes above (a PEM "
    "body, a wrapped block); base64 of a text is decoded and masked whole when the text holds "
    "a secret, up to two levels of base64 or percent-encoding deep.",
)


def _policy(text: str, depth: int) -> str:
    for rule in RULES:
        if rule.name == "base64-wrapped":
            text = _mask_base64_wrapped(text, depth)
        elif rule.name == "percent-encoded":
            text = _mask_percent_encoded(text, depth)
        else:
            text = rule.apply(text)
    return text


def _base64_forms(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return forms | {f.rstrip("=") for f in forms}


def _mask_known(text: str, secrets: Iterable[str]) -> str:
    """Every occurrence of each known secret and of its base64 forms, overlapping ones too: a
    run of characters they cover is one mask, so where two run into each other (two secrets, or
    two forms of one) no part of either shows."""
    needles: set[str] = set()
    for secret in secrets:
        if secret:
            needles.add(secret)
            if len(secret) >= 4:
                needles |= _base64_forms(secret)
    # a lookahead matches no characters, so it finds every start, overlapping ones too
    spans = [
        (m.start(), m.start() + len(needle))
        for needle in needles
        for m in re.finditer(f"(?={re.escape(needle)})", text)
    ]
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if start < pos:  # overlaps the mask before: it grows
            pos = max(pos, end)
            continue
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret the policy knows (and the `secrets` given) masked."""
    return _policy(_mask_known(text, secrets), 0)


def userinfos(text: str) -> list[str]:
    """The userinfo (`user:password`, whatever the password holds) of each URL in `text`, a URL
    inside another's query included."""
    return [text[start:end] for start, end in _userinfo_spans(text)]


def render_rules_markdown() -> str:
    """docs/redaction.md: the policy's table, one row per rule, in the order they apply."""

    def cell(text: str) -> str:
        shown = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "⏎")
        return f"`{shown}`" if "`" not in shown else shown

    lines = [
        "# Redaction rules",
        "",
        "Generated from `lab/common/redact.py: RULES` (`python -m lab.common.redact > "
        "docs/redaction.md`; `tests/unit/test_redact_rules.py` checks this file against the "
        "table, and each rule with its own generated test).",
        "",
        "Every output of the harness (plans, command failures, problems, logs, node logs, "
        "diagnostics, the nightly's artifacts) goes through `redact`. First any secret the "
        "caller knows (a command's `secrets`) is masked with its base64 forms; then the rules "
        "below apply, in this order. Where a secret's end cannot be known the policy masks more "
        "rather than less. `⏎` stands for a line break.",
        "",
        "| rule | catches | example | printed as |",
        "| --- | --- | --- | --- |",
    ]
    for rule in RULES:
        lines.append(
            f"| `{rule.name}` | {rule.catches.replace('|', '/')} | {cell(rule.example)} "
            f"| {cell(rule.masked)} |"
        )
    lines += ["", "## Where a secret's end cannot be known", ""]
    lines += [f"- {limit}" for limit in LIMITS]
    return "\n".join(lines) + "\n"


class RedactFilter(logging.Filter):
    """A logging filter that applies the policy to every record's rendered message (and its
    exception text), so no handler writes a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Every handler of `logger` (the root logger by default) redacts what it writes."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter())


if __name__ == "__main__":
    print(render_rules_markdown(), end="")
