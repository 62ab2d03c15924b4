"""Which programs one suite run costs inside the guests, in one run: the kernel's process
accounting (acct(2), one record per process when it exits) is turned on in every node, the
suite runs, and each node's CPU seconds and runs per command name are printed, most first.
Long-lived processes that outlive the run (containerd, sshd's listener) are not in it; see
bench/guest_cpu.py for the cgroups. Needs a running, provisioned lab; leaves accounting off.

    .venv/bin/python bench/guest_procs.py [LAB] [WORKERS] [TOP]   (default: ci-debian12 4 15)
"""

from __future__ import annotations

import base64
import sys

from _common import prepared, timed
from bench_e2e import pytest_e2e

from lab.common.commands import cmd
from lab.hosts.parse import parse_acct_v3

ACCT_FILE = "/var/tmp/netlab-bench.acct"


def acct(path: str | None) -> tuple[str, ...]:
    """acct(2) through python3 on the node (no acct package needed): on to `path`, or off."""
    arg = repr(path.encode()) if path else "None"
    return ("python3", "-c", f"import ctypes; ctypes.CDLL(None).acct({arg})")


def main() -> None:
    lab = sys.argv[1] if len(sys.argv) > 1 else "ci-debian12"
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    channels = prepared(lab).channels()
    for node in channels.values():
        node.run(cmd("sh", "-c", f"rm -f {ACCT_FILE} && touch {ACCT_FILE}"))
        node.run(cmd(*acct(ACCT_FILE)))
    records: dict[str, bytes] = {}
    try:
        wall = timed(f"pytest e2e -n {workers} --lab {lab}", lambda: pytest_e2e(lab, workers))
    finally:  # accounting off and its file gone, whether the run passed or not
        for name, node in sorted(channels.items()):
            node.run(cmd(*acct(None)))
            records[name] = base64.b64decode(node.run(cmd("base64", "-w0", ACCT_FILE)).stdout)
            node.run(cmd("rm", "-f", ACCT_FILE))
    for name, data in records.items():
        rows = parse_acct_v3(data)
        total = sum(r.seconds for r in rows)
        print(f"{name}: {total:.1f} s of CPU in {sum(r.runs for r in rows)} processes that ended")
        for r in rows[:top]:
            each = r.seconds / r.runs * 1000
            print(f"  {r.comm:18} {r.seconds:7.2f} s  {r.runs:5} runs  {each:7.1f} ms each")
    print(f"(wall {wall:.1f} s)")


if __name__ == "__main__":
    main()
