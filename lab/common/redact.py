"""Secrets never reach logs, plans, reports or exceptions (pure): the one redaction policy.

Every output of the harness goes through `redact` (printed plans, command failures, problems,
log records through `RedactFilter`, node logs, diagnostics bundles, the nightly's artifacts and
HTML summary). It masks, keeping what names the secret so the text still reads:

- kubeadm bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`), also when a line break (a wrapped
  terminal, a shell continuation `\\` + newline) splits one;
- the value of a flag that carries a secret: `--token`, `--discovery-token`,
  `--tls-bootstrap-token`, `--certificate-key`, `--password`, `--*-password`, `--*-token`,
  `--*-secret`, in any case, after `=`, spaces, tabs or a continuation line;
- the value of a key that names a secret, in YAML, JSON, env or HTML-escaped JSON: `token`,
  `token-secret`, `client-key-data`, `client-certificate-data`, `certificateKey`, `password`,
  `*-secret`, `*_token`, `private-key`, `api-key` ... (quoted: up to the closing quote;
  unquoted: to the end of the line);
- the 64-hex certificate key kubeadm prints on the line after "Using certificate key:";
- PEM private-key blocks (the whole body, even when the END line was cut off);
- `Authorization:` header values and `Bearer` tokens;
- URL userinfo: `https://user:password@host` becomes `https://<redacted>@host`;
- any explicit secret the caller knows (a command's `secrets`), and its base64 forms, wherever
  they overlap one another.

What stays: certificate-authority data, `--discovery-token-ca-cert-hash sha256:...` (a public
pin), image digests, addresses, names. Masking is idempotent.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from typing import Final

MASK: Final = "<redacted>"

# a line break inside a value: a wrapped terminal line or a shell continuation
_BREAK = r"(?:\\?\r?\n[ \t]*)?"


def _spread(char_class: str, count: int) -> str:
    """`count` characters of `char_class`, a line break allowed between any two."""
    return rf"(?:{char_class}{_BREAK}){{{count - 1}}}{char_class}"


_BOOTSTRAP_TOKEN = re.compile(
    rf"(?<![A-Za-z0-9_]){_spread('[a-z0-9]', 6)}{_BREAK}\.{_BREAK}{_spread('[a-z0-9]', 16)}"
    r"(?![A-Za-z0-9_])"
)
_PEM_PRIVATE_KEY = re.compile(
    r"(-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----)"
    r".*?(?:-----END (?P=kind)PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_SECRET_FLAG = re.compile(
    r"(--(?:[a-z0-9-]*-)?(?:token|password|passwd|secret|certificate-key|api-key)"
    r"(?:[= \t]|\\?\r?\n)+)"
    r"(\"[^\"]*\"?|'[^']*'?|\S+)",
    re.IGNORECASE,
)
_CERT_KEY_LINE = re.compile(r"(Using certificate key:[ \t]*(?:\r?\n[ \t]*)?)[0-9a-fA-F]{64}\b")
_QUOTE = r"(?:\"|'|&quot;|&#0?39;|&#x27;)"
_SECRET_KEY = re.compile(
    rf"(?<![\w.-]){_QUOTE}?(?!-)"
    r"[\w.-]*?(?:password|passwd|secret|token|private[-_]?key|client-key-data"
    r"|client-certificate-data|certificate[-_]?key|api[-_]?key)"
    rf"{_QUOTE}?[ \t]*[:=][ \t]*",
    re.IGNORECASE,
)
_OPEN_QUOTE = re.compile(r"\"|'|&quot;|&#0?39;|&#x27;")
_AUTHORIZATION = re.compile(
    r"(authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:bearer|basic|token|digest)[ \t]+)?)"
    r"([^\s\"',]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer[ \t]+)([A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@<>\"']+@", re.IGNORECASE)

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
            while close > 0 and text[close - 1] == "\\":  # an escaped quote is in the value
                close = text.find(quote.group(), close + 1, line_end)
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
            while end > value_start and text[end - 1] in "\r \t":
                end -= 1
        if end <= value_start or text.startswith(MASK, value_start):
            continue
        out.append(text[pos:value_start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


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


def _mask_pem(m: re.Match[str]) -> str:
    """The block's BEGIN and END lines around the mask, with its own line breaks (real ones,
    or the two characters `\\n` inside a JSON string)."""
    newline = "\\n" if "\n" not in m.group() and "\\n" in m.group() else "\n"
    return f"{m.group(1)}{newline}{MASK}{newline}-----END {m.group('kind')}PRIVATE KEY-----"


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
    text = _mask_known(text, secrets)
    text = _PEM_PRIVATE_KEY.sub(_mask_pem, text)
    text = _BOOTSTRAP_TOKEN.sub(MASK, text)
    text = _CERT_KEY_LINE.sub(lambda m: m.group(1) + MASK, text)
    text = _SECRET_FLAG.sub(lambda m: m.group(1) + MASK, text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    return _mask_key_values(text)


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
