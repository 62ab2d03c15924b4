"""What the box's TCG settings buy inside a running guest, in one run: a fork+exec loop (what
the suite does all the time: sudo, sh, ip, nsenter, runc, the CNI plugins) with the kernel's
address-space randomisation on and off, alternated, and the cost of one clock read on the
guest's clocksource. Under QEMU software emulation translated code is found again by its
virtual address, so a process whose code lands somewhere new each time is translated anew.
Needs a running lab; leaves randomisation as it found it.

    .venv/bin/python bench/bench_tcg.py [LAB] [ROUNDS]   (default: ci-debian12 3)
"""

from __future__ import annotations

import statistics
import sys

from _common import prepared

from lab.adapters.ssh import SshChannel
from lab.common.commands import cmd

SYSCTL = "/proc/sys/kernel/randomize_va_space"
EXECS = 200
# EXECS fork+execs of /bin/true, then 100k clock reads in python3; milliseconds of each
LOOP = (
    "s=$(date +%s%N); i=0; while [ $i -lt " + str(EXECS) + " ]; do /bin/true; i=$((i+1)); done;"
    " echo $(( ($(date +%s%N) - s) / 1000000 ));"
    " python3 -c 'import time; s=time.perf_counter();"
    " [time.monotonic() for _ in range(100000)]; print(round((time.perf_counter()-s)*1000))';"
    " cat /sys/devices/system/clocksource/clocksource0/current_clocksource"
)


def one(node: SshChannel, aslr: str) -> tuple[float, float, str]:
    node.run(cmd("sysctl", "-q", f"kernel.randomize_va_space={aslr}"))
    execs_ms, clock_ms, source = node.run(cmd("sh", "-c", LOOP, sudo=False)).stdout.split()
    return float(execs_ms) / EXECS, float(clock_ms) / 100, source


def main() -> None:
    lab = sys.argv[1] if len(sys.argv) > 1 else "ci-debian12"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    channels = prepared(lab).channels()
    for name, node in sorted(channels.items()):
        before = node.run(cmd("cat", SYSCTL, sudo=False)).stdout.strip()
        per_exec: dict[str, list[float]] = {"2": [], "0": []}
        clock: list[float] = []
        try:
            for _ in range(rounds):
                for aslr in ("2", "0"):
                    exec_ms, clock_us, source = one(node, aslr)
                    per_exec[aslr].append(exec_ms)
                    clock.append(clock_us)
        finally:
            node.run(cmd("sysctl", "-q", f"kernel.randomize_va_space={before}"))
        on, off = statistics.median(per_exec["2"]), statistics.median(per_exec["0"])
        for label, value, unit in (
            ("fork+exec of /bin/true, randomisation on", on, "ms"),
            ("fork+exec of /bin/true, randomisation off", off, "ms"),
            (f"one clock read ({source})", statistics.median(clock), "us"),
        ):
            print(f"{name}: {label:44} {value:7.2f} {unit} (median)")
        print(f"{name}: on / off = {on / off:.2f}  (randomisation was {before}, left so)")


if __name__ == "__main__":
    main()
