"""Guide steps that are the same on CentOS 7 and Debian 12 (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lab.common.commands import Command, Output, cmd
from lab.hosts import compat
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.hosts.os import OsProfile, profile_of
from lab.model.config import Lab, Node
from provision.model import Step, sysctl_file, write_file

# --- step 3: br_netfilter + the bridge sysctls (guide: 系统配置) -----------------------------

BRIDGE_SYSCTLS = {
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
}
K8S_SYSCTL_FILE = "/etc/sysctl.d/k8s.conf"
MODULES_FILE = "/etc/modules-load.d/k8s.conf"
MODULES_CONTENT = "br_netfilter\n"


@dataclass(frozen=True)
class BridgeFacts:
    module_loaded: bool
    modules_file: str | None
    sysctl_file: str | None
    live: tuple[str, ...]  # "key = value" as the kernel reports them now


def bridge_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "module_loaded": f.module_loaded("br_netfilter"),
        "modules_file": f.file_text(MODULES_FILE),
        "sysctl_file": f.file_text(K8S_SYSCTL_FILE),
        "live": f.sysctl_lines(tuple(BRIDGE_SYSCTLS)),
    }


def plan_bridge(lab: Lab, node: Node, facts: BridgeFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    if not facts.module_loaded:
        plan.append(cmd("modprobe", "br_netfilter"))
    if facts.modules_file != MODULES_CONTENT:
        plan.append(write_file(MODULES_FILE, MODULES_CONTENT))
    wanted = sysctl_file(BRIDGE_SYSCTLS)
    if facts.sysctl_file != wanted:
        plan.append(write_file(K8S_SYSCTL_FILE, wanted))
    if set(facts.live) != {line.strip() for line in wanted.splitlines()}:
        plan.append(cmd("sysctl", "-p", K8S_SYSCTL_FILE))
    return tuple(plan)


BRIDGE = Step(
    number="3",
    key="bridge-nf",
    title="bridge-nf sysctls",
    section="准备工作 / 系统配置 (br_netfilter + k8s.conf)",
    scope="all",
    facts_type=BridgeFacts,
    facts=bridge_facts,
    plan=plan_bridge,
    fresh=lambda lab, node: BridgeFacts(False, None, None, ()),
)


# --- step 4: ip_forward (guide: 开启路由转发), persisted so it survives a reboot -------------

FORWARD_FILE = "/etc/sysctl.d/k8s-ip-forward.conf"
FORWARD_CONTENT = sysctl_file({"net.ipv4.ip_forward": "1"})


@dataclass(frozen=True)
class ForwardFacts:
    live: str
    file: str | None


def forward_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "live": f.proc_value("/proc/sys/net/ipv4/ip_forward"),
        "file": f.file_text(FORWARD_FILE),
    }


def plan_forward(lab: Lab, node: Node, facts: ForwardFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    if facts.file != FORWARD_CONTENT:
        plan.append(write_file(FORWARD_FILE, FORWARD_CONTENT))
    if facts.live != "1":
        plan.append(cmd("sysctl", "-p", FORWARD_FILE))
    return tuple(plan)


FORWARD = Step(
    number="4",
    key="ip-forward",
    title="ip_forward",
    section="准备工作 / 开启路由转发",
    scope="all",
    facts_type=ForwardFacts,
    facts=forward_facts,
    plan=plan_forward,
    fresh=lambda lab, node: ForwardFacts("0", None),
)


# --- step 5: swap off, now and in fstab (guide: 关闭swap) ------------------------------------

FSTAB = "/etc/fstab"


@dataclass(frozen=True)
class SwapFacts:
    active: tuple[str, ...]  # devices/files from /proc/swaps
    fstab: str


def swap_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {"active": f.active_swaps(), "fstab": f.file_text_required(FSTAB)}


def _is_swap_line(line: str) -> bool:
    fields = line.split()
    return len(fields) >= 3 and not line.lstrip().startswith("#") and fields[2] == "swap"


def fstab_without_swap(fstab: str) -> str:
    """Comment out every active swap entry, as the guide does by hand."""
    return "".join(
        f"#{line}" if _is_swap_line(line) else line for line in fstab.splitlines(keepends=True)
    )


def plan_swap(lab: Lab, node: Node, facts: SwapFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    if facts.active:
        plan.append(cmd("swapoff", "-a"))
    fixed = fstab_without_swap(facts.fstab)
    if fixed != facts.fstab:
        plan.append(write_file(FSTAB, fixed))
    return tuple(plan)


def fresh_swap(lab: Lab) -> SwapFacts:
    """A box as it boots (its OS profile says what its fstab and swaps are)."""
    box = profile_of(lab).box
    return SwapFacts(box.swaps, box.fstab)


SWAP = Step(
    number="5",
    key="swap",
    title="swap off",
    section="准备工作 / 关闭swap (swapoff -a + /etc/fstab)",
    scope="all",
    facts_type=SwapFacts,
    facts=swap_facts,
    plan=plan_swap,
    fresh=lambda lab, node: fresh_swap(lab),
)


# --- step 7: hostname (guide: 修改主机名) + every node's name in /etc/hosts ------------------

HOSTS = "/etc/hosts"
HOSTS_BEGIN = "# BEGIN netlab nodes"
HOSTS_END = "# END netlab nodes"


@dataclass(frozen=True)
class HostnameFacts:
    hostname: str
    hosts: str


def hostname_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    # an unreadable /etc/hosts is an error: planning from an empty file would rewrite it
    # without its localhost lines
    return {"hostname": f.hostname(), "hosts": f.file_text_required(HOSTS)}


def hosts_with_nodes(hosts: str, lab: Lab) -> str:
    """/etc/hosts with one managed block naming every node by its private IP.

    `127.0.1.1` lines outside the block (Debian's `127.0.1.1 NAME` for the machine's own name)
    are dropped: kubelet and kubeadm must resolve the node's name to its private IP.
    """
    block = [HOSTS_BEGIN, *(f"{n.ip} {n.name}" for n in lab.nodes), HOSTS_END]
    kept = []
    inside = False
    for line in hosts.splitlines():
        if line.strip() == HOSTS_BEGIN:
            inside = True
        elif line.strip() == HOSTS_END:
            inside = False
        elif not inside and not re.match(r"^127\.0\.1\.1\s", line):
            kept.append(line)
    return "\n".join([*kept, *block]) + "\n"


def plan_hostname(lab: Lab, node: Node, facts: HostnameFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    if facts.hostname != node.name:
        plan.append(cmd("hostnamectl", "set-hostname", node.name))
    hosts = hosts_with_nodes(facts.hosts, lab)
    if hosts != facts.hosts:
        plan.append(write_file(HOSTS, hosts))
    return tuple(plan)


HOSTNAME = Step(
    number="7",
    key="hostname",
    title="hostname",
    section="准备工作 / 修改主机名 (DNS-1123, no underscores)",
    scope="all",
    facts_type=HostnameFacts,
    facts=hostname_facts,
    plan=plan_hostname,
    fresh=lambda lab, node: HostnameFacts("localhost.localdomain", "127.0.0.1 localhost\n"),
)


# --- steps 0 and 14: the tools and versions the harness relies on (lab/hosts/compat.py) -----------

# `command -v` through sudo: sudo's secure_path is where every command of the harness runs
# (or, without sudo, a narrower PATH the compatibility table checks separately)
FIND_TOOLS = 'for t do p=$(command -v "$t") || p=-; echo "$t $p"; done'


@dataclass(frozen=True)
class ToolsFacts:
    found: tuple[str, ...]  # "name path" ("name -" when missing)
    systemd: int


def parse_tool_paths(out: Output) -> tuple[str, ...]:
    lines = tuple(line.strip() for line in out.stdout.splitlines() if len(line.split()) == 2)
    if not out.ok or not lines:
        raise ValueError(f"cannot list the node's tools (exit {out.exit_code})")
    return lines


def parse_systemd_version(out: Output) -> int:
    m = re.match(r"systemd (\d+)", out.stdout)
    if not out.ok or m is None:
        raise ValueError(
            f"cannot read the systemd version (`systemctl --version` exit {out.exit_code})"
        )
    return int(m[1])


def _wanted(os_path: OsProfile, everything: bool) -> tuple[compat.Tool, ...]:
    tools = os_path.tools.values()
    return tuple(t for t in tools if everything or t.source == "box")


def plan_tools(
    os_path: OsProfile, everything: bool
) -> Callable[[Lab, Node, ToolsFacts], tuple[Command, ...]]:
    family = os_path.family

    def plan(lab: Lab, node: Node, facts: ToolsFacts) -> tuple[Command, ...]:
        found = dict(line.split() for line in facts.found)
        missing = [t for t in _wanted(os_path, everything) if found.get(t.name, "-") == "-"]
        problems = [
            f"{t.name} is missing (package {t.package}; used by {t.used_by})" for t in missing
        ]
        assumed = os_path.systemd
        if facts.systemd < assumed:
            problems.append(
                f"systemd {facts.systemd} is older than {assumed}, which the {family} commands "
                "assume (systemd-run, systemctl options)"
            )
        if problems:
            raise ValueError(
                f"{node.name} lacks what the harness relies on (lab/hosts/compat.py, {family} "
                "column): " + "; ".join(problems)
            )
        return ()

    return plan


def tools_step(os_path: OsProfile, everything: bool) -> Step[ToolsFacts]:
    """Step 0 (tools the box must have) or 14 (every tool, after provisioning installed its
    share): a check, it plans nothing and fails early, naming each missing tool."""
    names = tuple(t.name for t in _wanted(os_path, everything))

    def fresh(lab: Lab, node: Node) -> ToolsFacts:
        table = os_path.tools
        return ToolsFacts(tuple(f"{n} {table[n].path}" for n in names), os_path.systemd)

    return Step(
        number="14" if everything else "0",
        key="tools-needed" if everything else "tools-on-box",
        title="every tool the suite needs" if everything else "tools on the box",
        section="(harness) lab/hosts/compat.py: tools and versions its commands rely on",
        scope="all",
        facts_type=ToolsFacts,
        facts=lambda lab, node: {
            "found": f.Fact(
                "tool paths", cmd("sh", "-c", FIND_TOOLS, "netlab-tools", *names), parse_tool_paths
            ),
            "systemd": f.Fact(
                "systemd version", cmd("systemctl", "--version", sudo=False), parse_systemd_version
            ),
        },
        plan=plan_tools(os_path, everything),
        fresh=fresh,
        check=True,
    )
