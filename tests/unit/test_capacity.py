"""The host-capacity check (lab/hosts/capacity.py) to the letter: the cgroup's memory room in
whole MiB, a lab that exactly fits accepted, and every figure a refusal gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lab.hosts.capacity import HostResources, check_capacity, parse_cgroup_memory_room_mib
from lab.model.labfile import load_lab
from lab.model.problems import Problem

ROOT = Path(__file__).resolve().parents[2]

CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")  # 2 nodes x 1 vCPU x 1024 MiB


def test_cgroup_room_rounds_down_to_whole_mib_and_is_never_negative() -> None:
    assert parse_cgroup_memory_room_mib("3145728\n", "1048577") == 1
    assert parse_cgroup_memory_room_mib("1048576", "2097152") == 0
    assert parse_cgroup_memory_room_mib("max", "1") is None


def test_a_lab_that_exactly_fits_the_host_is_accepted() -> None:
    assert check_capacity(CI, HostResources(1, 2048)) == []
    assert check_capacity(CI, HostResources(1, None)) == []


def test_a_host_short_of_cpus_or_memory_gets_the_figures() -> None:
    assert check_capacity(CI, HostResources(1, 2047, "a test host")) == [
        Problem(
            "vm.memory_mib",
            2048,
            "the lab's 2 VMs need 2048 MiB together (node1 1024, node2 1024), but this host "
            "has 2047 MiB available (a test host)",
            "lower the memory, free some on the host, or use a bigger host",
        )
    ]
    two = dataclasses.replace(CI, vm=dataclasses.replace(CI.vm, cpus=2))
    assert check_capacity(two, HostResources(1, None)) == [
        Problem(
            "vm.cpus",
            2,
            "node1, node2 would each get 2 vCPUs, but this host has 1 CPU(s)",
            "lower it to at most 1",
        )
    ]


def test_a_node_that_overrides_cpus_or_memory_is_named_itself() -> None:
    nodes = (
        dataclasses.replace(CI.nodes[0], cpus=2, memory_mib=512),
        dataclasses.replace(CI.nodes[1], cpus=1),
    )
    lab = dataclasses.replace(CI, nodes=nodes, vm=dataclasses.replace(CI.vm, cpus=4))
    assert check_capacity(lab, HostResources(1, 1535)) == [
        Problem(
            "nodes[0].cpus",
            2,
            "node1 would get 2 vCPUs, but this host has 1 CPU(s)",
            "lower it to at most 1",
        ),
        Problem(
            "nodes[*].memory_mib",
            1536,
            "the lab's 2 VMs need 1536 MiB together (node1 512, node2 1024), but this host has "
            "1535 MiB available (MemAvailable in /proc/meminfo)",
            "lower the memory, free some on the host, or use a bigger host",
        ),
    ]
    assert check_capacity(lab, HostResources(2, 1536)) == []
