"""The CNI-direct runtime as POSIX shell (pure): what the suite, playing the container runtime,
runs on a node to set pods up and tear them down, in one `sh -c` per node, with no interpreter
needed there; and the parsers of what those scripts print.

A plugin chain follows the CNI spec: plugins in order (reverse for DEL), each given its config
plus the list's name and cniVersion; for ADD each plugin's result becomes the next one's
`prevResult`, for CHECK and DEL every plugin gets the cached ADD result. The scripts mark their
output with `@@NETLAB-...` lines so each pod's outcome, a failing plugin's answer and the exact
config it was given come back apart."""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MARK = "@@NETLAB"


@dataclass(frozen=True)
class Call:
    """One plugin call: its binary, its CNI_* environment, its config (without prevResult)."""

    plugin: str
    env: tuple[tuple[str, str], ...]
    config: Mapping[str, Any]


def _config_prefix(config: Mapping[str, Any]) -> str:
    """The config's JSON without its closing brace: the script appends prevResult, then '}'."""
    text = json.dumps(dict(config), sort_keys=True)
    if not (text.startswith("{") and text.endswith("}")) or text == "{}":
        raise ValueError(f"a plugin config must be a non-empty JSON object, got {text[:80]}")
    return text[:-1]


def chain_script(calls: Sequence[Call], prev: str, cache: str | None = None) -> str:
    """Shell that calls every plugin of `calls` in order. `prev` is a shell word giving the
    first prevResult ("''" for none, a quoted JSON, or "$(cat FILE)"). ADD: each answer becomes
    the next prevResult; CHECK/DEL answer nothing and prevResult stays. On a failure: a
    `@@NETLAB-CNI-FAIL plugin exit` block with the plugin's answer and the prevResult it had,
    then exit 1. On success the final prevResult is kept in `cache` (mode 0600) if given and
    printed between `@@NETLAB-CNI-RESULT` and `@@NETLAB-CNI-END`."""
    lines = [f"prev={prev}"]
    for call in calls:
        env = " ".join(shlex.quote(f"{k}={v}") for k, v in call.env)
        feed = (
            f"{{ printf '%s' {shlex.quote(_config_prefix(call.config))}; "
            '[ -z "$prev" ] || printf \',"prevResult":%s\' "$prev"; printf \'}\'; }'
        )
        fail = (
            f"{{ rc=$?; printf '{MARK}-CNI-FAIL %s %s\\n' {shlex.quote(call.plugin)} \"$rc\"; "
            f"printf '%s\\n' \"$out\"; printf '{MARK}-CNI-PREV\\n%s\\n{MARK}-CNI-END\\n' "
            '"$prev"; exit 1; }'
        )
        lines.append(f"out=$({feed} | env {env} {shlex.quote(call.plugin)}) || {fail}")
        lines.append('[ -z "$out" ] || prev=$out')
    if cache is not None:
        directory = shlex.quote(posixpath.dirname(cache))
        lines.append(
            f"mkdir -p {directory} && (umask 077 && printf '%s' \"$prev\" > {shlex.quote(cache)})"
        )
    lines.append(f"printf '{MARK}-CNI-RESULT\\n%s\\n{MARK}-CNI-END\\n' \"$prev\"")
    return "\n".join(lines)


@dataclass(frozen=True)
class PodSetup:
    name: str  # also the sandbox (network namespace) and container id
    calls: tuple[Call, ...]  # ADD, in order
    cache: str  # where the ADD result is kept
    starts: tuple[tuple[str, ...], ...] = ()  # one argv per container
    pids: tuple[str, ...] = ()  # argv printing the containers' PIDs, one per line


@dataclass(frozen=True)
class PodTeardown:
    name: str
    calls: tuple[Call, ...]  # DEL, in reverse order
    cache: str
    result: Mapping[str, Any] | None  # the ADD result when known; else the cached one is read
    stop: tuple[str, ...] = ()  # argv stopping the containers


def setup_script(pods: Sequence[PodSetup]) -> str:
    """Every pod of one node, one after the other; each in a subshell that stops at its first
    failure and reports `@@NETLAB-EXIT name code`."""
    parts = []
    for pod in pods:
        name = shlex.quote(pod.name)
        body = [
            "set -e",
            f"ip netns add {name}",
            f"ip netns exec {name} ip link set lo up",
            chain_script(pod.calls, "''", pod.cache),
            *(shlex.join(argv) for argv in pod.starts),
        ]
        if pod.pids:
            body.append(f"printf '{MARK}-PIDS %s\\n' \"$({shlex.join(pod.pids)} | tr '\\n' ' ')\"")
        parts += [
            f"echo '{MARK}-POD {pod.name}'",
            "(",
            *body,
            ")",
            f'echo "{MARK}-EXIT {pod.name} $?"',
        ]
    return "\n".join(parts)


def teardown_script(pods: Sequence[PodTeardown]) -> str:
    """Every part of every pod runs whatever failed before: stop the containers, DEL with the
    ADD result (given, else the cached one), drop the cache, delete the sandbox. Reports
    `@@NETLAB-DEL name code` (0: DEL passed) and `@@NETLAB-NETNS name code`."""
    parts = []
    for pod in pods:
        name = shlex.quote(pod.name)
        cache = shlex.quote(pod.cache)
        prev = (
            shlex.quote(json.dumps(dict(pod.result)))
            if pod.result is not None
            else f'"$(cat {cache} 2>/dev/null || true)"'
        )
        parts += [f"echo '{MARK}-POD {pod.name}'"]
        if pod.stop:
            parts.append(f"{shlex.join(pod.stop)} >/dev/null 2>&1 || true")
        parts += [
            "(",
            chain_script(pod.calls, prev),
            ")",
            f'echo "{MARK}-DEL {pod.name} $?"',
            f"rm -f {cache}",
            f"ip netns delete {name} 2>/dev/null",
            f'echo "{MARK}-NETNS {pod.name} $?"',
        ]
    return "\n".join(parts)


# --- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainFailure:
    plugin: str
    exit_code: int
    answer: str  # what the plugin printed (a CNI error JSON, normally)
    prev: str  # the prevResult it was given ("" for none)


@dataclass
class PodOutcome:
    name: str
    exit_code: int | None = None  # setup: the subshell's; None when never reported
    result: dict[str, Any] | None = None
    failure: ChainFailure | None = None
    pids: tuple[str, ...] = ()
    del_code: int | None = None  # teardown
    netns_code: int | None = None
    output: list[str] = field(default_factory=list)  # lines outside the markers

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def why(self) -> str:
        if self.failure is not None:
            return (
                f"{self.failure.plugin} exited {self.failure.exit_code}: "
                f"{self.failure.answer.strip()[:400]}"
            )
        tail = " | ".join(line for line in self.output if line.strip())[-400:]
        if self.exit_code is None:
            return "no outcome reported (the script stopped before this pod)"
        return f"exited {self.exit_code}: {tail or 'no output'}"


def parse_pods(text: str) -> dict[str, PodOutcome]:
    """setup_script's or teardown_script's output -> one outcome per pod it reported."""
    pods: dict[str, PodOutcome] = {}
    current: PodOutcome | None = None
    block: str | None = None  # "result", "fail", "prev"
    buffer: list[str] = []
    failure_head: tuple[str, int] | None = None
    fail_answer = ""
    for line in text.splitlines():
        words = line.split(" ")
        if block is not None:
            if line == f"{MARK}-CNI-PREV" and block == "fail":
                fail_answer, buffer, block = "\n".join(buffer), [], "prev"
                continue
            if line == f"{MARK}-CNI-END":
                body = "\n".join(buffer)
                if current is not None and block == "result":
                    try:
                        parsed = json.loads(body) if body.strip() else None
                    except ValueError:
                        parsed = None
                    current.result = parsed if isinstance(parsed, dict) else None
                elif current is not None and block == "prev" and failure_head is not None:
                    current.failure = ChainFailure(*failure_head, fail_answer, body)
                block, buffer = None, []
                continue
            buffer.append(line)
            continue
        if words[0] == f"{MARK}-POD" and len(words) == 2:
            current = pods.setdefault(words[1], PodOutcome(words[1]))
        elif line == f"{MARK}-CNI-RESULT":
            block, buffer = "result", []
        elif words[0] == f"{MARK}-CNI-FAIL" and len(words) == 3:
            code = int(words[2]) if words[2].isdigit() else -1
            failure_head, block, buffer = (words[1], code), "fail", []
        elif words[0] == f"{MARK}-PIDS" and current is not None:
            current.pids = tuple(w for w in words[1:] if w)
        elif words[0] in (f"{MARK}-EXIT", f"{MARK}-DEL", f"{MARK}-NETNS") and len(words) == 3:
            pod = pods.setdefault(words[1], PodOutcome(words[1]))
            code = int(words[2]) if words[2].isdigit() else -1
            if words[0] == f"{MARK}-EXIT":
                pod.exit_code = code
            elif words[0] == f"{MARK}-DEL":
                pod.del_code = code
            else:
                pod.netns_code = code
        elif current is not None:
            current.output.append(line)
    return pods


def chain_outcome(text: str) -> PodOutcome:
    """A bare chain_script's output (no pod markers): its result or its failure."""
    outcome = parse_pods(f"{MARK}-POD chain\n{text}").get("chain", PodOutcome("chain"))
    outcome.exit_code = 0 if outcome.failure is None and outcome.result is not None else 1
    return outcome
