"""Lab instances (pure). A lab file defines a lab; an instance is one copy of it on this host
with a name of its own (so its libvirt domains, volumes and networks and its state under
.lab/<name>/ are its own) and private and management networks of its own, free on this host,
its nodes (and the segments of a routed underlay, cut from the private block) at the same
offsets in them. The tests and the nightly bring up instances, so that a person's running
lab (the lab file's own name and ranges) is never swept, and two runs of one lab can stand
side by side. An instance is recorded beside its vagrant state (instance.json)
so that `status`, `destroy` and `sweep` can name it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from lab.model.config import PRIVATE_RANGES, Lab

RECORD = "instance.json"
MAX_NAME = 40  # a lab name's limit (lab/model/config.py)


def instance_name(lab: Lab, tag: str) -> str:
    """`ci-debian12` + `r1a2b3` -> `ci-debian12-r1a2b3` (cut to a lab name's length)."""
    keep = MAX_NAME - len(tag) - 1
    return f"{lab.name[:keep].rstrip('-')}-{tag}"


def _block(net: IPv4Network) -> IPv4Network | None:
    """The private (or documented test) range `net` lies in."""
    return next((r for r in PRIVATE_RANGES if net.subnet_of(r)), None)


def free_network(
    net: IPv4Network, taken: Iterable[IPv4Network], start: int = 1
) -> IPv4Network | None:
    """The first network of `net`'s size after it (`start` steps on, wrapping around inside
    its private range) that overlaps nothing `taken`; None when the range has no such room."""
    block = _block(net)
    if block is None:
        return None
    held = tuple(taken)
    size = net.num_addresses
    slots = block.num_addresses // size
    first = (int(net.network_address) - int(block.network_address)) // size
    for step in range(start, slots + start):
        slot = (first + step) % slots
        candidate = IPv4Network((int(block.network_address) + slot * size, net.prefixlen))
        if not any(candidate.overlaps(h) for h in held):
            return candidate
    return None


def _moved(address: IPv4Address, old: IPv4Network, new: IPv4Network) -> IPv4Address:
    return new.network_address + (int(address) - int(old.network_address))


def derive_instance(lab: Lab, name: str, taken: Iterable[IPv4Network]) -> Lab:
    """The lab as an instance called `name`: private and management networks moved to ranges
    of the same size that overlap nothing `taken` (the host's interfaces and libvirt networks)
    nor the lab's own networks, never the lab file's own ranges (a person's lab holds or will
    hold them); node addresses at the same offsets. ValueError when no such range is left."""
    own = [lab.pod_network.cidr, lab.network.private, lab.network.management]
    if lab.kubernetes is not None:
        own.append(lab.kubernetes.service_cidr)
    held = [*taken, *own]
    private = free_network(lab.network.private, held)
    if private is None:
        raise ValueError(f"no free range the size of {lab.network.private} for instance {name}")
    management = free_network(lab.network.management, [*held, private])
    if management is None:
        raise ValueError(f"no free range the size of {lab.network.management} for instance {name}")
    return _with(lab, name, private, management)


def _with(lab: Lab, name: str, private: IPv4Network, management: IPv4Network) -> Lab:
    """The lab moved: every node address and every segment of a routed underlay at the same
    offset in the new private block as in the old (the router's addresses follow them)."""
    old = lab.network.private
    nodes = tuple(dataclasses.replace(n, ip=_moved(n.ip, old, private)) for n in lab.nodes)
    segments = tuple(
        dataclasses.replace(
            s, cidr=IPv4Network((_moved(s.cidr.network_address, old, private), s.cidr.prefixlen))
        )
        for s in lab.network.segments
    )
    network = dataclasses.replace(
        lab.network, private=private, management=management, segments=segments
    )
    return dataclasses.replace(
        lab,
        name=name,
        nodes=nodes,
        network=network,
        definition=lab.definition or lab.name,
    )


def render_record(instance: Lab, maker: int = 0) -> str:
    """instance.json: what makes the instance again from its lab file; `maker`: the pid of
    the run that made it for itself and removes it at its end (0: kept until destroyed)."""
    record = {
        "name": instance.name,
        "definition": instance.definition,
        "source": instance.source,
        "private": str(instance.network.private),
        "management": str(instance.network.management),
        "maker": maker,
    }
    return json.dumps(record, indent=2) + "\n"


def parse_record(text: str) -> Mapping[str, Any]:
    record = json.loads(text)
    if not isinstance(record, dict) or not {"name", "definition", "private", "management"} <= set(
        record
    ):
        raise ValueError("not an instance record (name, definition, private, management)")
    return record


def stale(records: Mapping[str, Mapping[str, Any]], alive: Callable[[int], bool]) -> list[str]:
    """Instances a run made for itself whose run is gone (killed before it could remove
    them): their names, from name -> record. A kept instance (maker 0) is never stale."""
    return sorted(
        name
        for name, record in records.items()
        if int(record.get("maker", 0) or 0) > 0 and not alive(int(record["maker"]))
    )


def from_record(definition: Lab, record: Mapping[str, Any]) -> Lab:
    """The instance a record describes, from its (freshly read) lab file."""
    return _with(
        definition,
        str(record["name"]),
        IPv4Network(record["private"]),
        IPv4Network(record["management"]),
    )
