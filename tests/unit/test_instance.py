"""Lab instances (lab/model/instance.py) and the lab's libvirt names: an instance has its own
name and ranges, free on the host and off every lab file's; every object of a lab is selected
by a prefix that no other lab's names extend."""

from __future__ import annotations

import itertools
import json
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from lab.hosts.vagrantfile import management_network_name, private_networks
from lab.model import instance
from lab.model.config import Lab, validate_lab
from lab.model.labfile import load_lab
from lab.model.underlay import machine_names

ROOT = Path(__file__).resolve().parents[2]
LABS = {p.stem: load_lab(p) for p in sorted((ROOT / "labs").glob("*.yaml"))}
CI = LABS["ci-debian12"]


def object_names(lab: Lab) -> list[str]:
    """Every libvirt object vagrant-libvirt makes for the lab: domains (the router's too),
    their disks, the management network and the private ones (one per segment)."""
    domains = [f"{lab.prefix}{n}" for n in machine_names(lab)]
    return [
        *domains,
        *(f"{d}.img" for d in domains),
        management_network_name(lab),
        *(name for name, _ in private_networks(lab)),
    ]


# files of one lab name are variants of one lab (guide-centos7-global is guide-centos7 through
# other mirrors): the same objects by design
PAIRS = [(a, b) for a, b in itertools.permutations(sorted(LABS), 2) if LABS[a].name != LABS[b].name]


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=str)
def test_no_object_of_one_shipped_lab_is_selected_by_anothers_prefix(a: str, b: str) -> None:
    assert [n for n in object_names(LABS[a]) if n.startswith(LABS[b].prefix)] == []
    assert all(n.startswith(LABS[a].prefix) for n in object_names(LABS[a]))


def test_an_instance_name_keeps_the_lab_name_and_its_limit() -> None:
    assert instance.instance_name(CI, "r1a2b3") == "ci-debian12-r1a2b3"
    long = CI.__class__(**{**CI.__dict__, "name": "a" * 38 + "-b"})
    assert instance.instance_name(long, "n123456") == "a" * 32 + "-n123456"
    assert len(instance.instance_name(long, "n123456")) == 40


def test_an_instance_moves_its_ranges_off_what_is_taken_and_keeps_node_offsets() -> None:
    private, management = CI.network.private, CI.network.management
    step = private.num_addresses
    next_private = IPv4Network((int(private.network_address) + step, private.prefixlen))
    next_management = IPv4Network((int(management.network_address) + 256, 24))
    taken = [next_private, next_management]  # the next ranges are held: the one after them
    made = instance.derive_instance(CI, "ci-debian12-t1", taken)
    assert made.name == "ci-debian12-t1"
    assert made.definition == "ci-debian12"
    want = IPv4Network((int(private.network_address) + 2 * step, private.prefixlen))
    assert made.network.private == want
    assert made.network.management == IPv4Network((int(management.network_address) + 512, 24))
    offsets = [int(n.ip) - int(private.network_address) for n in CI.nodes]
    assert [int(n.ip) - int(want.network_address) for n in made.nodes] == offsets
    assert made.prefix == "netlab-ci-debian12-t1_"
    assert made.pod_network == CI.pod_network
    assert validate_lab(made) == []


def test_an_instance_never_takes_the_lab_files_own_ranges_even_when_free() -> None:
    made = instance.derive_instance(CI, "ci-debian12-t2", [])
    assert not made.network.private.overlaps(CI.network.private)
    assert not made.network.management.overlaps(CI.network.management)


def test_a_range_wraps_inside_its_private_block_and_gives_up_when_full() -> None:
    net = IPv4Network("192.168.255.0/24")
    assert instance.free_network(net, []) == IPv4Network("192.168.0.0/24")
    everything = [IPv4Network("192.168.0.0/16")]
    assert instance.free_network(net, everything) is None
    assert instance.free_network(IPv4Network("8.8.8.0/24"), []) is None, "no private block"
    full = f"no free range the size of {CI.network.private} for instance x"
    with pytest.raises(ValueError, match=full):
        instance.derive_instance(CI, "x", [IPv4Network("10.0.0.0/8")])


def test_an_instance_is_made_again_from_its_record() -> None:
    made = instance.derive_instance(CI, "ci-debian12-t3", [])
    record = instance.parse_record(instance.render_record(made, maker=4242))
    assert record["maker"] == 4242
    assert instance.from_record(CI, record) == made
    with pytest.raises(ValueError, match="not an instance record"):
        instance.parse_record(json.dumps({"name": "x"}))


def test_only_instances_whose_maker_is_gone_are_stale() -> None:
    records = {
        "kept": {"maker": 0},
        "running": {"maker": 100},
        "killed": {"maker": 200},
        "old-style": {},
    }
    assert instance.stale(records, alive=lambda pid: pid == 100) == ["killed"]
