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
from lab.model.strict import DecodeError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "k8s"
GOLDEN = ROOT / "tests" / "golden" / "k8s-fields.json"

PARSERS: dict[str, Callable[[Any], Any]] = {
    "nodes.json": k8s.parse_nodes,
    "pods-kube-system.json": k8s.parse_pods,
    "e2e-pod-running.json": k8s.parse_pods,
    "pods-kube-system-crashloop.json": k8s.parse_pods,
    "pods-all-dual-stack.json": k8s.parse_pods,
    "nodes-dual-stack.json": k8s.parse_nodes,
    "services.json#1": k8s.parse_services,  # kube-dns: a selector, UDP and TCP ports
    "services.json": k8s.parse_services,
    "endpoints.json": k8s.parse_endpoints,
    "namespaces-e2e.json": k8s.parse_namespaces,
    "configmap-kube-flannel-cfg.json": k8s.parse_flannel_netconf,
    "configmap-kubeadm-config.json": k8s.parse_kubeadm_networking,
}
Path_ = tuple[str | int, ...]
SAME = "parsed; same"  # a field the parser does not read


def leaves(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Every field under `value` (every entry of a list), parents before children."""
    if path:
        yield path
    if isinstance(value, dict):
        for key in value:
            yield from leaves(value[key], (*path, key))
    elif isinstance(value, list):
        for i, entry in enumerate(value):
            yield from leaves(entry, (*path, i))


def wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, str):
        return 7
    if isinstance(value, int):
        return "7x"
    return "x"


def nth(result: Any, i: int) -> Any:
    return result[i] if isinstance(result, tuple) else result


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


def outcome(parse: Callable[[Any], Any], doc: dict[str, Any], baseline: Any, i: int) -> str:
    try:
        return "parsed; " + changes(baseline, nth(parse(json.dumps(doc)), i))
    except DecodeError as e:
        return f"refused: {e}"


def outcomes() -> dict[str, str]:
    return dict(_outcomes())


def _outcomes() -> Iterator[tuple[str, str]]:
    for name, parse in PARSERS.items():
        file, _, index = name.partition("#")
        doc = json.loads((DATA / file).read_text())
        parsed = parse(json.dumps(doc))
        i, root, item = root_of(doc, int(index or 0))
        single = alone(doc, i)
        yield from broken_fields(
            name, parse, single, nth(parsed, i), 0, root[:1] + (0,) * len(root[1:]), item
        )


def root_of(doc: dict[str, Any], index: int) -> tuple[int, Path_, Any]:
    """(index, path, object) of the object broken: the document, or item `index` of a list."""
    if "items" not in doc:
        return 0, (), doc
    return index, ("items", index), doc["items"][index]


def alone(doc: dict[str, Any], index: int) -> dict[str, Any]:
    """The document with only item `index` in its list (a parse is then about that item)."""
    return {**doc, "items": [doc["items"][index]]} if "items" in doc else doc


def broken_fields(
    file: str,
    parse: Callable[[Any], Any],
    doc: dict[str, Any],
    baseline: Any,
    i: int,
    root: Path_,
    item: Any,
) -> Iterator[tuple[str, str]]:
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
            yield name, outcome(parse, broken, baseline, i)


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
