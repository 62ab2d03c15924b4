"""Strict access to decoded `kubectl -o json` output (pure): every accessor names the object
and the field it could not read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any


def document(raw: str | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what}: output is not JSON ({exc}): {raw[:120]!r}") from None
    else:
        doc = raw
    if not isinstance(doc, Mapping):
        raise ValueError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    return doc


def items_of(raw: str | Mapping[str, Any], what: str, kind: str) -> list[Mapping[str, Any]]:
    """The objects of a `kubectl get KIND -o json` answer: a List/KINDList, or one KIND."""
    doc = document(raw, what)
    doc_kind = doc.get("kind")
    if doc_kind == kind:
        items: Any = [doc]
    elif doc_kind in ("List", f"{kind}List"):
        items = doc.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ValueError(f"{what}: field items must be a list, got {type(items).__name__}")
    else:
        raise ValueError(f"{what}: expected kind {kind}, {kind}List or List, got {doc_kind!r}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"{what}: items[{i}] must be an object")
        item_kind = item.get("kind")
        if item_kind not in (None, kind):
            raise ValueError(f"{what}: items[{i}] is a {item_kind}, expected {kind}")
        out.append(item)
    return out


def at(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when any part is absent or null."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def get_str(obj: Mapping[str, Any], path: str, owner: str, required: bool = False) -> str:
    value = at(obj, path)
    if value is None:
        if required:
            raise ValueError(f"{owner}: field {path} is missing")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{owner}: field {path} must be a string, got {value!r}")
    return value


def get_list(obj: Mapping[str, Any], path: str, owner: str) -> list[Any]:
    value = at(obj, path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{owner}: field {path} must be a list, got {value!r}")
    return value


def get_objects(
    obj: Mapping[str, Any], path: str, owner: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """The list at `path` whose entries must be objects, each with its indexed field path."""
    out = []
    for j, entry in enumerate(get_list(obj, path, owner)):
        field = f"{path}[{j}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{owner}: field {field} must be an object, got {entry!r}")
        out.append((field, entry))
    return out


def get_map(obj: Mapping[str, Any], path: str, owner: str) -> Mapping[str, Any]:
    value = at(obj, path)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{owner}: field {path} must be an object, got {value!r}")
    return value


def get_int(obj: Mapping[str, Any], path: str, owner: str, default: int | None = None) -> int:
    value = at(obj, path)
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{owner}: field {path} must be an integer, got {value!r}")
    return value


def get_bool(obj: Mapping[str, Any], path: str, owner: str) -> bool:
    value = at(obj, path)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: field {path} must be true or false, got {value!r}")
    return value


def get_labels(obj: Mapping[str, Any], path: str, owner: str) -> tuple[tuple[str, str], ...]:
    labels = get_map(obj, path, owner)
    for key, value in labels.items():
        if not isinstance(value, str):
            raise ValueError(f"{owner}: field {path}.{key} must be a string, got {value!r}")
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def ipv4(value: object, owner: str, field: str) -> IPv4Address:
    try:
        address = ip_address(str(value)) if isinstance(value, str) else None
    except ValueError:
        address = None
    if not isinstance(address, IPv4Address):
        raise ValueError(f"{owner}: field {field} = {value!r} is not an IPv4 address")
    return address


def ipv4_network(value: object, owner: str, field: str) -> IPv4Network:
    try:
        network = ip_network(value) if isinstance(value, str) else None
    except ValueError as exc:
        raise ValueError(
            f"{owner}: field {field} = {value!r} is not an IPv4 CIDR ({exc})"
        ) from None
    if not isinstance(network, IPv4Network):
        raise ValueError(f"{owner}: field {field} = {value!r} is not an IPv4 CIDR")
    return network


def name_of(item: Mapping[str, Any], what: str, index: int, namespaced: bool) -> tuple[str, str]:
    where = f"{what}: items[{index}]"
    name = get_str(item, "metadata.name", where, required=True)
    namespace = get_str(item, "metadata.namespace", f"{where} ({name})", required=namespaced)
    return name, namespace
