"""The recorded kubectl outputs of tests/data/k8s/, read as text or as JSON (the tests of
lab/k8s/'s parsers and checks share them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"


def text(name: str) -> str:
    return (DATA / name).read_text()


def doc(name: str) -> dict[str, Any]:
    return json.loads(text(name))  # type: ignore[no-any-return]
