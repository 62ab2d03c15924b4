"""Wall time of `up`, in one run, starting from a libvirt as fresh as this machine allows:

- the first `up` after libvirtd starts vs a later one (libvirtd stopped, its QEMU capabilities
  cache deleted and the box's volume removed from the pool first, as on a machine where
  libvirtd never ran): each is what `python -m lab up` does, libvirt preparation included;
- a 2-node `up` vs a 1-node one (the same lab with its first node only, in a temp dir);
- the nodes in parallel vs one after the other (skip with --no-serial).

Per `up` it prints when each node's domain was created, started and ready (domains must be
created side by side, not one after the other) and how many QEMU capabilities cache files
libvirt rewrote (each a QEMU re-probe); the ratios come last. Uses VMs and restarts libvirtd:
run it under the machine's VM lock (`flock /tmp/netlab-vm.lock ...`).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from _common import timed

from lab.adapters import sandbox
from lab.adapters.host import probe_caps_cache
from lab.hosts import box
from lab.hosts.hypervisor import caps_cache_rewrites
from lab.hosts.machines import LabMachines
from lab.hosts.parse import UP_LINE
from lab.model import paths
from lab.model.config import Lab
from lab.model.labfile import load_lab

EVENTS = {"Creating domain": "created", "Starting domain": "started", "Machine booted": "ready"}
TARGET = 1.3


@dataclass
class Timeline:
    """When each node reached each vagrant-libvirt event, from the start of an `up`."""

    start: float = field(default_factory=time.monotonic)
    seen: dict[str, dict[str, float]] = field(default_factory=dict)

    def reset(self) -> None:
        self.start, self.seen = time.monotonic(), {}

    def __call__(self, line: str) -> None:
        m = UP_LINE.match(line)
        if not m:
            return
        for prefix, event in EVENTS.items():
            if m["msg"].startswith(prefix):
                events = self.seen.setdefault(m["node"], {})
                events.setdefault(event, time.monotonic() - self.start)

    def created_side_by_side(self) -> bool:
        """Every domain was being created before any was started (vagrant-libvirt's
        "Creating domain" -> "Starting domain"), i.e. libvirt did not create them in turn."""
        created = [e.get("created") for e in self.seen.values()]
        started = [e.get("started") for e in self.seen.values()]
        if not created or None in created or None in started:
            return False
        return max(c for c in created if c is not None) < min(s for s in started if s is not None)

    def report(self) -> str:
        return "\n".join(
            f"    {node}: " + ", ".join(f"{event} {t:5.1f} s" for event, t in events.items())
            for node, events in sorted(self.seen.items())
        )


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def guest_pids(prefix: str) -> list[int]:
    """The QEMU processes of the lab's domains (libvirt names them `-name guest=<domain>`)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if f"guest={prefix}".encode() in cmdline and cmdline.startswith(b"/usr/bin/qemu"):
            pids.append(int(entry))
    return pids


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


class CpuUse:
    """Host CPU seconds an `up` cost, by who spent them: the guests (QEMU), vagrant and what it
    ran (ssh ...), libvirtd, this process. Wall time x 2 cores is what there was to spend."""

    def __init__(self) -> None:
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.me = resource.getrusage(resource.RUSAGE_SELF)
        self.libvirtd = sandbox.libvirtd_pid()
        self.libvirtd_cpu = cpu_seconds(self.libvirtd) if self.libvirtd else 0.0
        self.machine = machine_cpu()

    def report(self, prefix: str, wall: float) -> str:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        used = {
            "guests": sum(cpu_seconds(pid) for pid in guest_pids(prefix)),
            "vagrant & co": children.ru_utime
            + children.ru_stime
            - self.children.ru_utime
            - self.children.ru_stime,
            "libvirtd": cpu_seconds(self.libvirtd) - self.libvirtd_cpu if self.libvirtd else 0.0,
            "this process": me.ru_utime + me.ru_stime - self.me.ru_utime - self.me.ru_stime,
        }
        busy, steal = (now - then for now, then in zip(machine_cpu(), self.machine, strict=True))
        parts = ", ".join(f"{who} {s:.1f}" for who, s in used.items())
        return (
            f"    host CPU s: {parts}; whole machine busy {busy:.1f}, stolen {steal:.1f} "
            f"(of {wall * (os.cpu_count() or 1):.0f} in {wall:.1f} s)"
        )


def one_node_lab(lab_file: Path, tmp: Path) -> Lab:
    raw = yaml.safe_load(lab_file.read_text())
    raw["name"] = f"one-{raw['name']}"
    raw["description"] = f"{raw.get('description', '')} (first node only, for bench_up)"
    raw["nodes"] = raw["nodes"][:1]
    path = tmp / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_lab(path)


def timed_up(label: str, machines: LabMachines, timeline: Timeline, parallel: bool = True) -> float:
    """prepare + up, as `python -m lab up` does; prints the node timeline and cache rewrites."""
    before = probe_caps_cache() or ()
    cpu: list[CpuUse] = []

    def prepare_and_up() -> None:
        machines.prepare()
        timeline.reset()
        cpu.append(CpuUse())  # libvirtd is running now
        machines.up(parallel=parallel)

    seconds = timed(label, prepare_and_up)
    print(timeline.report())
    print(cpu[0].report(machines.lab.prefix, time.monotonic() - timeline.start))
    rewritten = caps_cache_rewrites(before, probe_caps_cache() or ())
    print(f"    QEMU capabilities cache files rewritten meanwhile: {len(rewritten)}", flush=True)
    machines.destroy()
    return seconds


def make_fresh(machines: LabMachines, lab: Lab) -> None:
    """No lab VMs, no uploaded box volume, libvirtd stopped, its QEMU cache gone."""
    machines.destroy()
    if lab.vm.box_build:
        box.remove_uploaded_volumes(lab.vm.box)
    sandbox.stop_libvirtd()
    sandbox.forget_qemu_capabilities()
    print(
        "fresh: libvirtd stopped, /var/cache/libvirt/qemu deleted, box volume removed",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lab", nargs="?", default="ci-debian12")
    parser.add_argument("--no-serial", action="store_true", help="skip the serial `up`")
    args = parser.parse_args()
    lab_file = paths.resolve_lab_path(args.lab)
    lab = load_lab(lab_file)
    n = len(lab.nodes)
    timeline = Timeline()
    machines = LabMachines(lab, on_line=timeline)
    machines.prepare()  # builds the box if needed: not part of any `up` measured below
    with tempfile.TemporaryDirectory() as tmp:
        one = LabMachines(one_node_lab(lab_file, Path(tmp)), on_line=timeline)
        one.destroy()
        make_fresh(machines, lab)
        first = timed_up(f"first up after libvirtd starts, {n} nodes", machines, timeline)
        parallel_sides = timeline.created_side_by_side()
        later = timed_up(f"later up, {n} nodes", machines, timeline)
        parallel_sides = parallel_sides and timeline.created_side_by_side()
        single = timed_up("later up, 1 node", one, timeline)
    serial = None
    if not args.no_serial:
        serial = timed_up(f"up {n} nodes one after the other", machines, timeline, parallel=False)
    print(f"domains created side by side: {'yes' if parallel_sides else 'NO'}")
    if serial is not None:
        print(f"serial / parallel ({n} nodes) = {serial / later:.2f}")
    print(f"first / later up ({n} nodes) = {first / later:.2f} (target <= {TARGET})")
    print(f"{n} nodes / 1 node = {later / single:.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
