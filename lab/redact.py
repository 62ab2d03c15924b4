"""Secrets never reach logs, plans, reports or exceptions (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "<redacted>"

# kubeadm bootstrap tokens ([a-z0-9]{6}.[a-z0-9]{16}), certificate keys (64 hex after the flag),
# and anything following a flag that carries a secret.
_PATTERNS = (
    re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b"),
    re.compile(r"(--certificate-key[= ]+)[0-9a-fA-F]{64}\b"),
    re.compile(r"(--(?:token|discovery-token|tls-bootstrap-token)[= ]+)\S+"),
    re.compile(r"(\"?token\"?\s*[:=]\s*\"?)[A-Za-z0-9.\-_]{8,}"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text
