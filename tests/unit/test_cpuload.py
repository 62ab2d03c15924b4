"""The host's CPU taken by other work during a stage (lab/hosts/cpuload.py), from /proc texts
of this machine's kind."""

from __future__ import annotations

import pytest

from lab.hosts.cpuload import CpuSample, others_share, parse_pid_cpu, parse_proc_stat_busy

PROC_STAT = """cpu  282512 151 23818 88383 1115 0 315 333 0 0
cpu0 140131 55 11345 45950 566 0 47 171 0 0
cpu1 142380 96 12473 42432 548 0 267 161 0 0
ctxt 11758082
"""
QEMU_STAT = (
    "1357 (qemu-system-x86) S 1 1356 1356 0 -1 1077936448 95000 0 12 0 3500 246 0 0 20 0 "
    "4 0 2000 3096428544 380266 18446744073709551615"
)


def test_the_host_is_busy_for_all_but_idle_and_iowait() -> None:
    assert parse_proc_stat_busy(PROC_STAT, 100) == pytest.approx(
        (282512 + 151 + 23818 + 0 + 315 + 333) / 100
    )
    with pytest.raises(ValueError, match=r"^no aggregate `cpu` line in /proc/stat$"):
        parse_proc_stat_busy("intr 1 2 3\n", 100)


def test_a_process_cpu_is_its_user_and_system_time_even_with_spaces_in_its_name() -> None:
    assert parse_pid_cpu(QEMU_STAT, 100) == pytest.approx(37.46)
    spaced = QEMU_STAT.replace("(qemu-system-x86)", "(a (b) c)")
    assert parse_pid_cpu(spaced, 100) == pytest.approx(37.46)


def sample(at: float, busy: float, own: float, guests: dict[int, float]) -> CpuSample:
    return CpuSample(at, busy, own, guests)


def test_others_share_is_what_neither_we_nor_our_guests_used() -> None:
    before = sample(0.0, 1000.0, 10.0, {1: 50.0, 2: 40.0})
    # 10 s on 2 CPUs (20 s of capacity): 14 s busy, 2 s ours, 3 + 3 s of guests: 6 s others
    after = sample(10.0, 1014.0, 12.0, {1: 53.0, 2: 43.0})
    assert others_share(before, after, cpus=2) == 0.3


def test_a_guest_started_meanwhile_counts_whole_and_the_share_stays_in_bounds() -> None:
    before = sample(0.0, 0.0, 0.0, {})
    after = sample(10.0, 8.0, 1.0, {7: 7.0})
    assert others_share(before, after, cpus=2) == 0.0
    assert others_share(before, sample(10.0, 50.0, 0.0, {}), cpus=2) == 1.0
    assert others_share(before, sample(0.5, 1.0, 0.0, {}), cpus=2) is None, "too short to say"


def test_the_interval_is_the_time_between_the_samples_not_since_boot() -> None:
    # monotonic clocks start anywhere: 1000 s to 1010 s is 10 s, on 1 CPU: 2.5 s of others'
    before = sample(1000.0, 500.0, 0.0, {})
    after = sample(1010.0, 502.5, 0.0, {})
    assert others_share(before, after, cpus=1) == 0.25


def test_one_second_on_one_cpu_is_enough_to_say() -> None:
    before = sample(0.0, 0.0, 0.0, {})
    assert others_share(before, sample(1.0, 0.5, 0.0, {}), cpus=1) == 0.5
    assert others_share(before, sample(1.5, 0.75, 0.0, {}), cpus=1) == 0.5
    assert others_share(before, sample(1.0, 0.5, 0.0, {}), cpus=0) is None, "no CPUs to share"


def test_the_share_is_rounded_to_three_decimals() -> None:
    before = sample(0.0, 0.0, 0.0, {})
    # 1 s of others' in 3 s on 1 CPU: 0.3333...
    assert others_share(before, sample(3.0, 1.0, 0.0, {}), cpus=1) == 0.333
