"""Where an e2e run waited on its nodes: the `commands-<worker>.tsv` files a run leaves in its
artifacts directory (one line per node command: test, seconds, node, command), summed per test
and per kind of command.

    python bench/profile_e2e.py .artifacts/ci-debian12/<run>
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

SKIP = {"sudo", "-n", "sh", "-c", "-ec", "env"}


def kind(command: str) -> str:
    """The command's first meaningful words: `sudo -n python3 - {...}` -> `python3 -`."""
    words = [w for w in command.split() if w not in SKIP and not w.startswith("'")]
    return " ".join(words[:2]) if words else command[:40]


def top(seconds: dict[str, float], n: int = 15) -> list[tuple[str, float]]:
    return sorted(seconds.items(), key=lambda kv: -kv[1])[:n]


def main(artifacts: Path) -> None:
    per_test: dict[str, float] = defaultdict(float)
    per_kind: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for path in sorted(artifacts.glob("commands-*.tsv")):
        for line in path.read_text().splitlines():
            test, seconds, _node, command = [*line.split("\t", 3), "", "", ""][:4]
            per_test[test.split("::")[-1]] += float(seconds)
            per_kind[kind(command)] += float(seconds)
            calls[kind(command)] += 1
    total = sum(per_test.values())
    print(f"node command time, all workers: {total:.1f} s in {sum(calls.values())} commands")
    print("\nper test:")
    for test, spent in top(per_test):
        print(f"  {spent:7.1f} s  {test}")
    print("\nper kind of command:")
    for name, spent in top(per_kind):
        print(f"  {spent:7.1f} s  {calls[name]:4d} x  {spent / calls[name]:5.2f} s  {name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
