"""Strict access to decoded `kubectl -o json` output (pure), on the shared strict decoder
(`lab.model.strict`): every accessor names the object and the field it could not read, and raises
`strict.DecodeError` (a ValueError) carrying that Problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from lab.model import strict
from lab.model.problems import ABSENT, Problem


def fail(where: str, message: str, value: object = ABSENT, fix: str = "") -> strict.DecodeError:
    return strict.DecodeError(Problem(where, value, message, fix))


def too_long(exc: ValueError) -> str:
    """json.loads's one ValueError that is no JSONDecodeError: an integer with more digits
    than Python converts (`sys.get_int_max_str_digits()`, 4300 by default), named without
    Python's advice to raise that limit (no kubectl field holds such a number)."""
    return f"a number too long to read ({str(exc).partition('; use ')[0]})"


def document(raw: str | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise fail(what, f"output is not JSON ({exc})", raw) from None
        except ValueError as exc:
            raise fail(what, f"output holds {too_long(exc)}", raw) from None
    else:
        doc = raw
    if not isinstance(doc, Mapping):
        raise fail(what, f"expected a JSON object, got {strict.kind_of(doc)}", doc)
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
        strict.sequence(items, f"{what}: field items")
    else:
        raise fail(what, f"expected kind {kind}, {kind}List or List, got {doc_kind!r}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise fail(f"{what}: items[{i}]", "must be an object", item)
        item_kind = item.get("kind")
        if item_kind not in (None, kind):
            raise fail(f"{what}: items[{i}]", f"is a {item_kind}, expected {kind}")
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


def _where(owner: str, path: str) -> str:
    return f"{owner}: field {path}"


def get_str(obj: Mapping[str, Any], path: str, owner: str, required: bool = False) -> str:
    value = at(obj, path)
    if value is None:
        if required:
            raise fail(_where(owner, path), "is missing")
        return ""
    return strict.text(value, _where(owner, path))


def get_list(obj: Mapping[str, Any], path: str, owner: str) -> list[Any]:
    value = at(obj, path)
    return [] if value is None else strict.sequence(value, _where(owner, path))


def get_objects(
    obj: Mapping[str, Any], path: str, owner: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """The list at `path` whose entries must be objects, each with its indexed field path."""
    out = []
    for j, entry in enumerate(get_list(obj, path, owner)):
        field = f"{path}[{j}]"
        if not isinstance(entry, Mapping):
            raise fail(_where(owner, field), "must be an object", entry)
        out.append((field, entry))
    return out


def get_map(obj: Mapping[str, Any], path: str, owner: str) -> Mapping[str, Any]:
    value = at(obj, path)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(_where(owner, path), "must be an object", value)
    return value


def get_int(obj: Mapping[str, Any], path: str, owner: str, default: int | None = None) -> int:
    value = at(obj, path)
    if value is None and default is not None:
        return default
    return strict.integer(value, _where(owner, path))


def get_bool(obj: Mapping[str, Any], path: str, owner: str) -> bool:
    value = at(obj, path)
    return False if value is None else strict.boolean(value, _where(owner, path))


def get_labels(obj: Mapping[str, Any], path: str, owner: str) -> tuple[tuple[str, str], ...]:
    labels = get_map(obj, path, owner)
    for key, value in labels.items():
        strict.text(value, _where(owner, f"{path}.{key}"))
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def ipv4(value: object, owner: str, field: str) -> IPv4Address:
    return strict.ipv4_address(value, _where(owner, field))


def ipv4_network(value: object, owner: str, field: str) -> IPv4Network:
    return strict.ipv4_network(value, _where(owner, field))


def any_ip(value: object, owner: str, field: str) -> IPv4Address | IPv6Address:
    return strict.any_address(value, _where(owner, field))


def any_network(value: object, owner: str, field: str) -> IPv4Network | IPv6Network:
    return strict.any_network(value, _where(owner, field))


def by_family(
    values: list[tuple[str, object]], owner: str
) -> tuple[list[IPv4Address], list[IPv6Address]]:
    """Addresses of a dual-stack list (field, value), split into IPv4 and IPv6, in order."""
    v4: list[IPv4Address] = []
    v6: list[IPv6Address] = []
    for field, value in values:
        address = any_ip(value, owner, field)
        if isinstance(address, IPv4Address):
            v4.append(address)
        else:
            v6.append(address)
    return v4, v6


def name_of(item: Mapping[str, Any], what: str, index: int, namespaced: bool) -> tuple[str, str]:
    where = f"{what}: items[{index}]"
    name = get_str(item, "metadata.name", where, required=True)
    namespace = get_str(item, "metadata.namespace", f"{where} ({name})", required=namespaced)
    return name, namespace
