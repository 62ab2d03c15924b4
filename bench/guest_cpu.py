"""Where one suite run's CPU goes, in one run: each node's guest CPU per cgroup (what systemd
and containerd account: containerd and its shims and runc, sshd with everything the node agents
run, the pods, udev, ...), the QEMU processes' CPU on this host and the host's total, next to
the wall time. On a TCG host the guests' CPU is the suite's cost: what this prints is what
an optimisation has to shrink.

    .venv/bin/python bench/guest_cpu.py [LAB] [WORKERS]   (default: ci-debian12 4, i.e. -n 4)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from _common import prepared
from bench_e2e import pytest_e2e

from lab.common.commands import cmd
from lab.hosts.machines import LabMachines
from lab.hosts.parse import cpu_deltas, parse_cgroup_cpu

# every cgroup three levels down, with its usage_usec (what parse_cgroup_cpu reads)
CGROUP_CPU = cmd(
    "sh",
    "-c",
    "cd /sys/fs/cgroup && for f in cpu.stat */cpu.stat */*/cpu.stat; do "
    '[ -f "$f" ] && echo "$f $(sed -n "s/^usage_usec //p" "$f")"; done',
)
SHOWN_AT_LEAST_S = 0.5
TICKS = os.sysconf("SC_CLK_TCK")


def guests(machines: LabMachines) -> dict[str, dict[str, float]]:
    channels = machines.channels()
    return {n: parse_cgroup_cpu(ch.run(CGROUP_CPU).stdout) for n, ch in sorted(channels.items())}


def host() -> dict[str, float]:
    """This host's busy CPU seconds and the QEMU processes' (user + system)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])  # idle + iowait
    qemu = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if comm.startswith("qemu-system"):
            parts = rest.split()
            qemu += int(parts[11]) + int(parts[12])  # utime, stime (fields 14 and 15)
    return {"host (busy)": (sum(map(int, fields)) - idle) / TICKS, "qemu processes": qemu / TICKS}


def main() -> None:
    lab = sys.argv[1] if len(sys.argv) > 1 else "ci-debian12"
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    machines = prepared(lab)
    machines.expect_running()
    before, host_before = guests(machines), host()
    start = time.monotonic()
    pytest_e2e(lab, workers)
    wall = time.monotonic() - start
    after, host_after = guests(machines), host()
    print(f"pytest e2e -n {workers} --lab {lab}: {wall:.1f} s wall")
    for name, grown in cpu_deltas(host_before, host_after):
        print(f"  {name:40} {grown:7.1f} CPU-s  ({grown / wall:.2f} cores)")
    for node in after:
        total = after[node].get("/", 0.0) - before.get(node, {}).get("/", 0.0)
        print(f"{node}: {total:.1f} s of guest CPU ({total / wall:.0%} of the wall time)")
        for group, grown in cpu_deltas(before.get(node, {}), after[node], SHOWN_AT_LEAST_S):
            if group != "/":
                print(f"  {group:52} {grown:6.1f} s")


if __name__ == "__main__":
    main()
