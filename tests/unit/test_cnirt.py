"""The CNI-direct runtime's shell, run for real here with stand-in plugins (no network is
touched: the plugins only report what they were given), and its output parsed back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from e2e import cnirt

PLUGIN = """#!/bin/sh
# a stand-in CNI plugin: answers what it was given; FAIL_AS=<name> makes that one fail
config=$(cat)
name=$(basename "$0")
case "$config" in *prevResult*) prev=true ;; *) prev=false ;; esac
if [ "$FAIL_AS" = "$name" ]; then
  printf '{"code": 11, "msg": "no more addresses"}\\n'
  exit 1
fi
[ "$CNI_COMMAND" = ADD ] || exit 0
printf '{"cniVersion": "0.4.0", "by": "%s", "had_prev": %s}\\n' "$name" "$prev"
"""


def plugins(tmp_path: Path, *names: str, fail: str = "") -> tuple[cnirt.Call, ...]:
    calls = []
    for name in names:
        path = tmp_path / name
        path.write_text(PLUGIN)
        path.chmod(0o755)
        env = (("CNI_COMMAND", "ADD"), ("FAIL_AS", fail))
        calls.append(cnirt.Call(str(path), env, {"type": name, "name": "netlab"}))
    return tuple(calls)


def sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script], check=False, capture_output=True, text=True, timeout=30
    )


def test_an_add_chain_passes_each_result_on_and_caches_the_last(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "pod.json"
    run = sh(cnirt.chain_script(plugins(tmp_path, "bridge", "portmap"), "''", str(cache)))
    assert run.returncode == 0, run.stderr
    outcome = cnirt.chain_outcome(run.stdout)
    assert outcome.failure is None
    assert outcome.result == {"cniVersion": "0.4.0", "by": "portmap", "had_prev": True}
    assert json.loads(cache.read_text()) == outcome.result
    assert oct(cache.stat().st_mode & 0o777) == "0o600"


def test_the_first_plugin_of_an_add_gets_no_prev_result(tmp_path: Path) -> None:
    run = sh(cnirt.chain_script(plugins(tmp_path, "bridge"), "''"))
    assert cnirt.chain_outcome(run.stdout).result == {
        "cniVersion": "0.4.0",
        "by": "bridge",
        "had_prev": False,
    }


def test_a_failing_plugin_stops_the_chain_with_its_answer_and_the_prev_result_it_had(
    tmp_path: Path,
) -> None:
    run = sh(cnirt.chain_script(plugins(tmp_path, "bridge", "portmap", fail="portmap"), "''"))
    assert run.returncode == 1
    outcome = cnirt.chain_outcome(run.stdout)
    assert outcome.failure is not None
    assert outcome.failure.plugin.endswith("/portmap")
    assert outcome.failure.exit_code == 1
    assert json.loads(outcome.failure.answer) == {"code": 11, "msg": "no more addresses"}
    assert json.loads(outcome.failure.prev)["by"] == "bridge"
    assert "portmap exited 1" in outcome.why()


def test_del_gives_every_plugin_the_cached_result(tmp_path: Path) -> None:
    calls = tuple(
        cnirt.Call(c.plugin, (("CNI_COMMAND", "DEL"), ("FAIL_AS", "")), c.config)
        for c in plugins(tmp_path, "portmap", "bridge")
    )
    prev = json.dumps({"cniVersion": "0.4.0", "ips": []})
    run = sh(cnirt.chain_script(calls, f"'{prev}'"))
    outcome = cnirt.chain_outcome(run.stdout)
    assert outcome.failure is None
    assert outcome.result == {"cniVersion": "0.4.0", "ips": []}, "DEL answers nothing"


def test_a_config_must_be_a_json_object() -> None:
    with pytest.raises(ValueError, match="non-empty JSON object"):
        cnirt.chain_script([cnirt.Call("/x", (), {})], "''")


SETUP_OUTPUT = """@@NETLAB-POD a
@@NETLAB-CNI-RESULT
{
  "cniVersion": "0.4.0",
  "ips": [{"address": "10.244.0.2/24", "interface": 2, "version": "4"}]
}
@@NETLAB-CNI-END
@@NETLAB-PIDS 1234 1240
@@NETLAB-EXIT a 0
@@NETLAB-POD b
Cannot create namespace file "/var/run/netns/b": File exists
@@NETLAB-EXIT b 1
@@NETLAB-POD c
@@NETLAB-CNI-FAIL /usr/lib/cni/bridge 1
{"code": 999, "msg": "no IP ranges specified"}
@@NETLAB-CNI-PREV

@@NETLAB-CNI-END
@@NETLAB-EXIT c 1
"""


def test_setup_output_gives_each_pods_result_pids_or_reason() -> None:
    pods = cnirt.parse_pods(SETUP_OUTPUT)
    assert pods["a"].ok
    assert pods["a"].result is not None
    assert pods["a"].result["ips"][0]["address"] == "10.244.0.2/24"
    assert pods["a"].pids == ("1234", "1240")
    assert not pods["b"].ok
    assert (
        pods["b"].why() == 'exited 1: Cannot create namespace file "/var/run/netns/b": File exists'
    )
    assert pods["c"].why() == (
        '/usr/lib/cni/bridge exited 1: {"code": 999, "msg": "no IP ranges specified"}'
    )
    assert cnirt.parse_pods("@@NETLAB-POD d\n")["d"].why().startswith("no outcome reported")


def test_teardown_output_gives_each_pods_del_and_sandbox_outcome() -> None:
    text = (
        "@@NETLAB-POD a\n@@NETLAB-CNI-RESULT\n\n@@NETLAB-CNI-END\n"
        "@@NETLAB-DEL a 0\n@@NETLAB-NETNS a 1\n"
    )
    (pod,) = cnirt.parse_pods(text).values()
    assert (pod.del_code, pod.netns_code) == (0, 1)


def test_the_setup_script_runs_each_pod_in_a_subshell_that_stops_at_its_first_failure() -> None:
    pod = cnirt.PodSetup(
        "nl-r1-a",
        (cnirt.Call("/usr/lib/cni/bridge", (("CNI_COMMAND", "ADD"),), {"type": "bridge"}),),
        "/var/lib/netlab/cni/nl-r1-a.json",
        (("systemd-run", "--unit=nl-r1-a-echo", "ip", "netns", "exec", "nl-r1-a", "socat"),),
        ("systemctl", "show", "-p", "MainPID", "--value", "nl-r1-a-echo"),
    )
    script = cnirt.setup_script([pod])
    lines = script.splitlines()
    assert lines[:5] == ["echo '@@NETLAB-POD nl-r1-a'", "(", "set -e", "ip netns add nl-r1-a",
                         "ip netns exec nl-r1-a ip link set lo up"]  # fmt: skip
    assert lines[-2:] == [")", 'echo "@@NETLAB-EXIT nl-r1-a $?"']
    assert "systemd-run --unit=nl-r1-a-echo ip netns exec nl-r1-a socat" in lines


def test_the_teardown_script_runs_every_part_of_every_pod_whatever_failed_before() -> None:
    dele = (cnirt.Call("/opt/cni/bin/bridge", (("CNI_COMMAND", "DEL"),), {"type": "bridge"}),)
    result = {"cniVersion": "0.4.0", "ips": []}
    given = cnirt.PodTeardown("nl-a", dele, "/var/lib/netlab/cni/nl-a.json", result, ("kill", "7"))
    cached = cnirt.PodTeardown("nl-b", dele, "/var/lib/netlab/cni/nl-b.json", None)
    assert cnirt.teardown_script([given, cached]).split("\n") == [
        "echo '@@NETLAB-POD nl-a'",
        "kill 7 >/dev/null 2>&1 || true",
        "(",
        *cnirt.chain_script(dele, """'{"cniVersion": "0.4.0", "ips": []}'""").split("\n"),
        ")",
        'echo "@@NETLAB-DEL nl-a $?"',
        "rm -f /var/lib/netlab/cni/nl-a.json",
        "ip netns delete nl-a 2>/dev/null",
        'echo "@@NETLAB-NETNS nl-a $?"',
        "echo '@@NETLAB-POD nl-b'",
        "(",
        *cnirt.chain_script(
            dele, '"$(cat /var/lib/netlab/cni/nl-b.json 2>/dev/null || true)"'
        ).split("\n"),
        ")",
        'echo "@@NETLAB-DEL nl-b $?"',
        "rm -f /var/lib/netlab/cni/nl-b.json",
        "ip netns delete nl-b 2>/dev/null",
        'echo "@@NETLAB-NETNS nl-b $?"',
    ]


def test_why_a_pod_failed_is_the_plugins_answer_or_the_last_400_characters_of_output() -> None:
    failure = cnirt.ChainFailure("/opt/cni/bin/bridge", 1, "  " + "a" * 500, "{}")
    assert cnirt.PodOutcome("p", 1, failure=failure).why() == (
        f"/opt/cni/bin/bridge exited 1: {'a' * 400}"
    )
    noisy = cnirt.PodOutcome("p", 2, output=["x" * 300, "  ", "y" * 200])
    assert noisy.why() == f"exited 2: {('x' * 300 + ' | ' + 'y' * 200)[-400:]}"
    assert cnirt.PodOutcome("p", 2, output=["first", "second"]).why() == (
        "exited 2: first | second"
    )
    assert cnirt.PodOutcome("p", 3, output=[" "]).why() == "exited 3: no output"
    assert cnirt.PodOutcome("p").why() == "no outcome reported (the script stopped before this pod)"


def test_the_setup_script_runs_the_add_chain_from_nothing_caching_its_result() -> None:
    add = (cnirt.Call("/opt/cni/bin/bridge", (("CNI_COMMAND", "ADD"),), {"type": "bridge"}),)
    pod = cnirt.PodSetup("nl-a", add, "/var/lib/netlab/cni/nl-a.json", (), ())
    chain = cnirt.chain_script(add, "''", "/var/lib/netlab/cni/nl-a.json")
    assert cnirt.setup_script([pod]).split("\n") == [
        "echo '@@NETLAB-POD nl-a'",
        "(",
        "set -e",
        "ip netns add nl-a",
        "ip netns exec nl-a ip link set lo up",
        *chain.split("\n"),
        ")",
        'echo "@@NETLAB-EXIT nl-a $?"',
    ]


MARKED = """stray line before any pod
@@NETLAB-POD a
@@NETLAB-POD b c
@@NETLAB-POD  x
some output
@@NETLAB-CNI-FAIL /opt/cni/bin/bridge x
{"code": 7,
 "msg": "no"}
@@NETLAB-CNI-PREV
{"ips": []}
@@NETLAB-CNI-END
@@NETLAB-EXIT a 1
@@NETLAB-EXIT a
@@NETLAB-DEL z zz
@@NETLAB-NETNS z 0
@@NETLAB-POD r
@@NETLAB-CNI-RESULT

@@NETLAB-CNI-END
@@NETLAB-POD s
@@NETLAB-CNI-RESULT
[1, 2]
@@NETLAB-CNI-END
@@NETLAB-POD t
@@NETLAB-CNI-RESULT
{not json
@@NETLAB-CNI-END
@@NETLAB-PIDS 10  11
@@NETLAB-POD u
@@NETLAB-CNI-FAIL /opt/cni/bin/portmap 2
half an answer
@@NETLAB-CNI-END
"""


def test_only_whole_markers_count_and_everything_else_is_the_current_pods_output() -> None:
    pods = cnirt.parse_pods(MARKED)
    assert pods == {
        # a marker with a word too many or too few (or two spaces) is output; a code that is
        # no number is -1; the plugin's multi-line answer and its prevResult are kept apart
        "a": cnirt.PodOutcome(
            "a",
            exit_code=1,
            failure=cnirt.ChainFailure(
                "/opt/cni/bin/bridge", -1, '{"code": 7,\n "msg": "no"}', '{"ips": []}'
            ),
            output=["@@NETLAB-POD b c", "@@NETLAB-POD  x", "some output", "@@NETLAB-EXIT a"],
        ),
        "z": cnirt.PodOutcome("z", del_code=-1, netns_code=0),  # reported, never announced
        "r": cnirt.PodOutcome("r"),  # an empty result is none
        "s": cnirt.PodOutcome("s"),  # a result that is no JSON object is none
        "t": cnirt.PodOutcome("t", pids=("10", "11")),  # nor is one that is no JSON
        "u": cnirt.PodOutcome("u"),  # a failure block cut short records no failure
    }


def test_a_bare_chains_outcome_passes_only_with_a_result_and_no_failure() -> None:
    ok = cnirt.chain_outcome('@@NETLAB-CNI-RESULT\n{"ips": []}\n@@NETLAB-CNI-END\n')
    assert (ok.exit_code, ok.result, ok.ok) == (0, {"ips": []}, True)
    nothing = cnirt.chain_outcome("")
    assert (nothing.name, nothing.exit_code, nothing.ok) == ("chain", 1, False)
    failed = cnirt.chain_outcome(
        "@@NETLAB-CNI-FAIL /p 1\nno\n@@NETLAB-CNI-PREV\n\n@@NETLAB-CNI-END\n"
        '@@NETLAB-CNI-RESULT\n{"ips": []}\n@@NETLAB-CNI-END\n'
    )
    assert (failed.exit_code, failed.failure is not None) == (1, True)


def test_a_plugins_config_is_fed_with_sorted_keys_and_its_closing_brace_last() -> None:
    call = cnirt.Call("/opt/cni/bin/bridge", (), {"type": "bridge", "name": "netlab"})
    script = cnirt.chain_script([call], "''")
    assert """printf '%s' '{"name": "netlab", "type": "bridge"'; """ in script


BRIDGE = cnirt.Call(
    "/opt/cni/bin/bridge",
    (("CNI_COMMAND", "ADD"), ("CNI_ARGS", "K8S_POD_NAME=a b")),
    {"type": "bridge", "name": "netlab"},
)
PORTMAP = cnirt.Call("/opt/cni/bin/portmap", (("CNI_COMMAND", "ADD"),), {"type": "portmap"})


def fed(config: str, env: str, plugin: str) -> str:
    """One plugin's line of a chain: its config and prevResult fed, its failure block."""
    return (
        f"out=$({{ printf '%s' '{config}'; [ -z \"$prev\" ] || printf ',\"prevResult\":%s' "
        f"\"$prev\"; printf '}}'; }} | env {env} {plugin}) || {{ rc=$?; printf "
        f"'@@NETLAB-CNI-FAIL %s %s\\n' {plugin} \"$rc\"; printf '%s\\n' \"$out\"; printf "
        "'@@NETLAB-CNI-PREV\\n%s\\n@@NETLAB-CNI-END\\n' \"$prev\"; exit 1; }"
    )


def test_a_chain_is_one_line_per_plugin_then_its_cache_and_its_result_exactly() -> None:
    script = cnirt.chain_script([BRIDGE, PORTMAP], "''", "/var/lib/netlab/cni/nl a.json")
    assert script.split("\n") == [
        "prev=''",
        fed(
            '{"name": "netlab", "type": "bridge"',
            "CNI_COMMAND=ADD 'CNI_ARGS=K8S_POD_NAME=a b'",
            "/opt/cni/bin/bridge",
        ),
        '[ -z "$out" ] || prev=$out',
        fed('{"type": "portmap"', "CNI_COMMAND=ADD", "/opt/cni/bin/portmap"),
        '[ -z "$out" ] || prev=$out',
        "mkdir -p /var/lib/netlab/cni && (umask 077 && printf '%s' \"$prev\" > "
        "'/var/lib/netlab/cni/nl a.json')",
        "printf '@@NETLAB-CNI-RESULT\\n%s\\n@@NETLAB-CNI-END\\n' \"$prev\"",
    ]


def test_the_setup_script_starts_the_containers_then_prints_their_pids_on_one_line() -> None:
    pod = cnirt.PodSetup("nl-a", (PORTMAP,), "/c/nl-a.json", (("sleep", "1"),), ("pgrep", "x"))
    lines = cnirt.setup_script([pod]).split("\n")
    assert lines[-4:] == [
        "sleep 1",
        "printf '@@NETLAB-PIDS %s\\n' \"$(pgrep x | tr '\\n' ' ')\"",
        ")",
        'echo "@@NETLAB-EXIT nl-a $?"',
    ]


def test_the_pids_line_of_a_real_setup_is_read_back(tmp_path: Path) -> None:
    pod = cnirt.PodSetup("nl-a", (), str(tmp_path / "c.json"), (), ("printf", "12\\n34\\n"))
    body = cnirt.setup_script([pod]).split("\n")
    runnable = "\n".join(line for line in body if "ip netns" not in line)
    outcome = cnirt.parse_pods(sh(runnable).stdout)["nl-a"]
    assert (outcome.exit_code, outcome.pids, outcome.result, outcome.output) == (
        0, ("12", "34"), None, []
    )  # fmt: skip
