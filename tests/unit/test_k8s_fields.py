"""Every field of a recorded kubectl object, broken one at a time, two ways (removed; replaced
by a value of the wrong type), through its parser: the outcome is either a refusal naming the
object and the field, or the object parsed with exactly the fields that changed. The outcomes
are pinned in tests/golden/k8s-fields.json (NETLAB_UPDATE_GOLDEN=1 rewrites it; read the diff),
except the fields a parser does not read, which must leave the result as it was: a parser that
stops checking a field, names the wrong one or picks another default shows up there."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lab import k8s
from lab.strict import DecodeError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "k8s"
GOLDEN = ROOT / "tests" / "golden" / "k8s-fields.json"

PARSERS: dict[str, Callable[[Any], Any]] = {
    "nodes.json": k8s.parse_nodes,
    "pods-kube-system.json": k8s.parse_pods,
    "e2e-pod-running.json": k8s.parse_pods,
    "services.json": k8s.parse_services,
    "endpoints.json": k8s.parse_endpoints,
    "namespaces-e2e.json": k8s.parse_namespaces,
    "configmap-kube-flannel-cfg.json": k8s.parse_flannel_netconf,
    "configmap-kubeadm-config.json": k8s.parse_kubeadm_networking,
}
Path_ = tuple[str | int, ...]
SAME = "parsed; same"  # a field the parser does not read


def leaves(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Every field under `value` (the first two entries of a list), parents before children."""
    if path:
        yield path
    if isinstance(value, dict):
        for key in value:
            yield from leaves(value[key], (*path, key))
    elif isinstance(value, list):
        for i, entry in enumerate(value[:2]):
            yield from leaves(entry, (*path, i))


def wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, str):
        return 7
    if isinstance(value, int):
        return "7x"
    return "x"


def first(result: Any) -> Any:
    return result[0] if isinstance(result, tuple) else result


def changes(before: Any, after: Any) -> str:
    """The fields of the parsed object that differ, `name: old -> new`."""
    if not dataclasses.is_dataclass(before):
        return f"{before!r} -> {after!r}" if before != after else "same"
    diffs = [
        f"{f.name}: {getattr(before, f.name)!r} -> {getattr(after, f.name)!r}"
        for f in dataclasses.fields(before)
        if getattr(before, f.name) != getattr(after, f.name)
    ]
    return "; ".join(diffs) or "same"


def outcome(parse: Callable[[Any], Any], doc: dict[str, Any], baseline: Any) -> str:
    try:
        return "parsed; " + changes(baseline, first(parse(json.dumps(doc))))
    except DecodeError as e:
        return f"refused: {e}"


def outcomes() -> dict[str, str]:
    got = {}
    for file, parse in PARSERS.items():
        doc = json.loads((DATA / file).read_text())
        baseline = first(parse(json.dumps(doc)))
        root: Path_ = ("items", 0) if "items" in doc else ()
        item = doc["items"][0] if root else doc
        for path in leaves(item):
            for how in ("removed", "wrong type"):
                broken = copy.deepcopy(doc)
                parent = broken
                for key in (*root, *path[:-1]):
                    parent = parent[key]
                if how == "removed":
                    del parent[path[-1]]
                else:
                    parent[path[-1]] = wrong_type(parent[path[-1]])
                name = f"{file} {'.'.join(map(str, path))} {how}"
                got[name] = outcome(parse, broken, baseline)
    return got


def test_every_field_broken_one_at_a_time_is_refused_or_parsed_as_pinned() -> None:
    got = outcomes()
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        kept = {k: v for k, v in got.items() if v != SAME}
        GOLDEN.write_text(json.dumps(kept, indent=1, ensure_ascii=False) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert set(want) <= set(got), "the recorded objects changed: NETLAB_UPDATE_GOLDEN=1"
    wrong = {k: (want.get(k, SAME), v) for k, v in got.items() if v != want.get(k, SAME)}
    assert not wrong, "\n".join(f"{k}:\n  want {w}\n  got  {g}" for k, (w, g) in wrong.items())


def test_every_refusal_names_the_object_it_is_about() -> None:
    owners = ("node ", "pod ", "service ", "endpoints ", "namespace ", "kubectl ", "configmap")
    for name, result in json.loads(GOLDEN.read_text()).items():
        if result.startswith("refused: "):
            assert result.removeprefix("refused: ").startswith(owners), name
