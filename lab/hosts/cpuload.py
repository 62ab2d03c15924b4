"""How busy the host was with work that is not ours (pure): a nightly stage's times mean little
when other processes took the CPUs meanwhile, so each stage records the share of the host's
CPU time that went to everything but the nightly itself and the lab's guests. Parsers of
/proc/stat and /proc/PID/stat (Linux), and the arithmetic; reading the files is an adapter's
(lab/adapters/host.py: probe_cpu_sample)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# /proc/stat's first line: cpu user nice system idle iowait irq softirq steal guest guest_nice
IDLE_FIELDS = (3, 4)  # idle, iowait (0-based among the numbers)
BUSY_UNTIL = 8  # guest and guest_nice are already counted in user and nice


def parse_proc_stat_busy(text: str, ticks: int) -> float:
    """The host's CPU seconds spent busy (all CPUs), from /proc/stat."""
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "cpu":
            values = [int(v) for v in words[1:]]
            busy = sum(v for i, v in enumerate(values[:BUSY_UNTIL]) if i not in IDLE_FIELDS)
            return busy / ticks
    raise ValueError("no aggregate `cpu` line in /proc/stat")


def parse_pid_cpu(text: str, ticks: int) -> float:
    """A process's own CPU seconds (utime + stime), from /proc/PID/stat (its name, in
    parentheses, may hold spaces: the fields are counted after the last ')')."""
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass(frozen=True)
class CpuSample:
    at: float  # monotonic seconds
    host_busy_s: float  # every CPU of the host, busy
    own_s: float  # this process and its reaped children
    guests_s: Mapping[int, float]  # the lab's QEMU processes: pid -> CPU seconds


def others_share(before: CpuSample, after: CpuSample, cpus: int) -> float | None:
    """The share (0..1) of the host's CPU capacity that went, between two samples, to neither
    this process tree nor the lab's guests: other people's work. A guest that ended between
    the samples takes its last seconds with it (counted as others'), a new one counts whole.
    None when the interval is too short to say."""
    wall = after.at - before.at
    if wall < 1.0 or cpus < 1:
        return None
    guests = sum(s - before.guests_s.get(pid, 0.0) for pid, s in after.guests_s.items())
    others = (after.host_busy_s - before.host_busy_s) - (after.own_s - before.own_s) - guests
    return round(min(max(others / (cpus * wall), 0.0), 1.0), 3)
