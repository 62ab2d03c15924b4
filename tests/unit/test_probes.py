"""The probe answers' parsers (e2e/probes.py), on answers written out here."""

from __future__ import annotations

import pytest

from e2e import probes


def test_agnhost_with_one_answer_says_the_client_it_saw_and_not_who_it_is() -> None:
    one = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.0.5:41234"
    assert probes.parse_agnhost(one) == probes.Echo("10.244.0.5")
    assert probes.parse_agnhost("10.244.0.6:80\n") == probes.Echo("10.244.0.6")


def test_agnhost_asked_twice_says_its_pods_name_then_the_client() -> None:
    both = (
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nweb-0\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.0.5:41234"
    )
    assert probes.parse_agnhost(both) == probes.Echo("10.244.0.5", "web-0")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.244.0.5:41234", "10.244.0.5"),
        ("[fd00::5]:41234", "fd00::5"),
        ("web-X:8080", "web-X"),
        ("10.244.0.5", "10.244.0.5"),  # no port: the text as it is
        (":8080", ":8080"),  # no host
        ("10.244.0.5:http", "10.244.0.5:http"),  # no port number
        ("  \n", None),
    ],
)
def test_the_client_address_is_the_host_before_a_numeric_port(
    text: str, address: str | None
) -> None:
    assert probes.http_body_address(text) == address


def test_a_body_without_content_length_runs_to_the_end_whatever_other_numbers_say() -> None:
    answer = "HTTP/1.1 200 OK\r\nAge: 3\r\nX-Note: content-length: 2\r\n\r\n10.244.0.5:41234"
    assert probes.http_bodies(answer) == ["10.244.0.5:41234"]


def test_the_echo_servers_line_is_the_source_then_who_answered() -> None:
    assert probes.parse_echo("10.244.0.5 nl-a-p0 10.244.1.2\n") == probes.Echo(
        "10.244.0.5", "nl-a-p0", "10.244.1.2"
    )
    # a fourth word is no part of the identity; two words are not a whole one
    assert probes.parse_echo("10.244.0.5 nl-a-p0 10.244.1.2 extra\n") == probes.Echo(
        "10.244.0.5", "nl-a-p0", "10.244.1.2"
    )
    assert probes.parse_echo("10.244.0.5 nl-a-p0\n") == probes.Echo("10.244.0.5")
    assert probes.parse_echo("\n  \n") == probes.Echo(None)


def test_a_cell_is_sent_with_its_protocol_and_name_only_when_they_matter() -> None:
    tcp = probes.Cell("a->b", "10.244.1.2", 8080, "nl-a")
    assert tcp.as_json() == {
        "id": "a->b",
        "host": "10.244.1.2",
        "port": 8080,
        "netns": "nl-a",
        "send": "",
        "timeout": 5.0,
    }
    dns = probes.Cell("a->dns", "10.96.0.10", 53, None, proto="dns", name="web.ns.svc")
    assert dns.as_json() == {
        "id": "a->dns",
        "host": "10.96.0.10",
        "port": 53,
        "netns": None,
        "send": "",
        "timeout": 5.0,
        "proto": "dns",
        "name": "web.ns.svc",
    }


def test_a_probe_request_holds_each_cell_once() -> None:
    cells = [probes.Cell("a", "h", 1), probes.Cell("b", "h", 1), probes.Cell("a", "h", 2)]
    with pytest.raises(ValueError, match=r"^probe ids repeat: \['a', 'a'\]$"):
        probes.probe_request(cells)
    assert probes.probe_request(cells[:2], parallel=3) == {
        "op": "probe",
        "parallel": 3,
        "cells": [cells[0].as_json(), cells[1].as_json()],
    }


def test_the_agent_runs_as_python_reading_itself_from_stdin_with_a_sorted_request() -> None:
    command = probes.agent_command("python3", {"op": "probe", "cells": []})
    assert command.argv == ("python3", "-", '{"cells": [], "op": "probe"}')
    assert command.stdin == probes.agent_source()


def test_the_agents_answer_is_its_last_json_line_and_each_field_is_checked() -> None:
    answer = (
        '{"results": "an earlier document"}\n'
        '{"results": ['
        '"not an object", {"id": "stranger", "ok": true}, '
        '{"id": "a", "ok": true, "answer": "10.244.0.5\\n", "connect_s": 1, "total_s": 2, '
        '"retransmits": 0}, '
        '{"id": "b", "ok": 1, "error": "timed out", "total_s": "slow", "retransmits": 3}'
        "]}\n"
        "agent: done\n"
    )
    results = probes.parse_probe_answer(answer, ["a", "b", "c"], "")
    assert results == {
        "a": probes.CellResult(True, "10.244.0.5\n", "", 1.0, 2.0, 0),
        "b": probes.CellResult(False, "", "timed out", None, None, 3),  # ok must be true itself
        "c": probes.CellResult(False, error="the agent answered no result for it", unknown=True),
    }
    assert probes.parse_probe_answer("[1, 2]\n", ["a"], "ssh failed") == {
        "a": probes.CellResult(False, error="ssh failed", unknown=True)
    }


def test_a_jobs_failure_is_its_error_or_its_first_failed_step() -> None:
    ok = probes.StepResult(0, "fine", "")
    bad = probes.StepResult(2, "", " " + "e" * 500)
    worse = probes.StepResult(3, "out", "err")
    assert (
        probes.JobResult("j", False, (ok, bad, worse)).failure() == f"step 2 exited 2: {'e' * 400}"
    )
    assert probes.JobResult("j", False, (worse,)).failure() == "step 1 exited 3: out"
    assert probes.JobResult("j", True, (ok,)).failure() == ""
    assert probes.JobResult("j", False, (bad,), error="no answer").failure() == "no answer"


def test_each_asked_job_is_read_with_its_steps_or_the_calls_failure() -> None:
    doc = {
        "jobs": [
            "not an object",
            {"id": "stranger", "ok": True},
            {
                "id": "a",
                "ok": True,
                "steps": [
                    {"exit": 0, "stdout": "made", "stderr": None},
                    {"exit": "1"},  # no integer exit: no step
                    "junk",
                    {"exit": 124, "stderr": "slow", "timed_out": True},
                ],
            },
            {"id": "b", "ok": 1},
        ]
    }
    assert probes.jobs_from(doc, ["a", "b", "c"], "") == {
        "a": probes.JobResult(
            "a",
            True,
            (probes.StepResult(0, "made", ""), probes.StepResult(124, "", "slow", True)),
        ),
        "b": probes.JobResult("b", False),  # ok must be true itself
        "c": probes.JobResult("c", False, error="the agent answered no result for it"),
    }
    assert probes.jobs_from({"jobs": "none"}, ["a"], "ssh failed") == {
        "a": probes.JobResult("a", False, error="ssh failed")
    }


def test_jobs_are_run_one_at_a_time_unless_asked() -> None:
    job = probes.Job("j", (probes.Step(("true",)),))
    assert probes.steps_request([job]) == {
        "op": "steps",
        "parallel": 1,
        "jobs": [
            {
                "id": "j",
                "keep_going": job.keep_going,
                "steps": [{"argv": ["true"], "stdin": None, "timeout": 60}],
            }
        ],
    }


def test_a_udp_cell_from_a_fixed_port_is_sent_with_its_protocol_and_port() -> None:
    udp = probes.Cell("a->b/udp", "10.244.1.2", 8081, "nl-a", "hi\n", 2.5, "udp", sport=5353)
    assert udp.as_json() == {
        "id": "a->b/udp",
        "host": "10.244.1.2",
        "port": 8081,
        "netns": "nl-a",
        "send": "hi\n",
        "timeout": 2.5,
        "proto": "udp",
        "sport": 5353,
    }


def test_a_probe_request_runs_eight_cells_at_once_unless_asked() -> None:
    cell = probes.Cell("a", "h", 1)
    assert probes.probe_request([cell]) == {"op": "probe", "parallel": 8, "cells": [cell.as_json()]}
    assert probes.probe_request([]) == {"op": "probe", "parallel": 8, "cells": []}


@pytest.mark.parametrize(
    "stdout",
    ["", "\n  \n", "agent: crashed\n", '{"results": []}\n[1]\n', '{"results": [\n'],
    ids=["empty", "blank", "no json", "last json no object", "cut short"],
)
def test_an_answer_without_a_last_json_object_leaves_every_cell_unknown(stdout: str) -> None:
    assert probes.parse_probe_answer(stdout, ["a", "b"], "") == {
        i: probes.CellResult(False, error="the agent answered no result for it", unknown=True)
        for i in ("a", "b")
    }


def test_a_cells_odd_figures_read_as_none_and_negative_retransmits_as_zero() -> None:
    answer = (
        '{"results": [{"id": "a", "ok": true, "answer": null, "error": null, "connect_s": "1", '
        '"total_s": 0.25, "retransmits": -2}, {"id": "b", "ok": false, "error": "refused", '
        '"connect_s": 0.5, "retransmits": 1}]}\n'
    )
    assert probes.parse_probe_answer(answer, ["a", "b"], "ssh failed") == {
        "a": probes.CellResult(True, "", "", None, 0.25, 0),
        "b": probes.CellResult(False, "", "refused", 0.5, None, 1),
    }


def test_the_raw_echo_servers_client_address_is_the_first_word_of_its_first_line() -> None:
    assert probes.first_line("\n  10.244.0.5 41234\nsecond line\n") == "10.244.0.5"
    assert probes.first_line("10.244.0.5") == "10.244.0.5"
    assert probes.first_line(" \n\n") is None


def test_pipelined_bodies_are_cut_at_their_content_length_in_any_case() -> None:
    answer = (
        "HTTP/1.1 200 OK\r\ncontent-LENGTH:  5 \r\n\r\nweb-0"
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef"
    )
    assert probes.http_bodies(answer) == ["web-0", "abc"]
    assert probes.http_bodies("no head at all") == []
    assert probes.http_body_address("no head at all") == "no head at all"


def test_agnhost_whose_hostname_body_is_blank_names_nobody() -> None:
    both = (
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n \n"
        "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.0.5:41234"
    )
    assert probes.parse_agnhost(both) == probes.Echo("10.244.0.5", None)


def test_a_step_is_sent_with_its_stdin_and_bound() -> None:
    step = probes.Step(("kubectl", "apply", "-f", "-"), "kind: Pod\n", 30)
    assert step.as_json() == {
        "argv": ["kubectl", "apply", "-f", "-"],
        "stdin": "kind: Pod\n",
        "timeout": 30,
    }
    job = probes.Job("down", (step,), keep_going=True)
    assert probes.steps_request([job], parallel=4) == {
        "op": "steps",
        "parallel": 4,
        "jobs": [{"id": "down", "keep_going": True, "steps": [step.as_json()]}],
    }


def test_a_steps_answer_is_read_from_the_agents_last_json_line() -> None:
    stdout = (
        "agent: starting\n"
        '{"jobs": [{"id": "a", "ok": true, "steps": [{"exit": 0, "stdout": null, '
        '"stderr": "warn", "timed_out": 1}]}]}\n'
    )
    assert probes.parse_steps_answer(stdout, ["a", "b"], "") == {
        "a": probes.JobResult("a", True, (probes.StepResult(0, "", "warn", False),)),
        "b": probes.JobResult("b", False, error="the agent answered no result for it"),
    }
    assert probes.parse_steps_answer("", ["a"], "kubectl exec failed") == {
        "a": probes.JobResult("a", False, error="kubectl exec failed")
    }


def test_a_failed_step_with_blank_output_is_named_by_its_stderr() -> None:
    steps = (probes.StepResult(0, "", ""), probes.StepResult(1, "  \n", " no such pod \n"))
    assert probes.JobResult("j", False, steps).failure() == "step 2 exited 1: no such pod"
    assert probes.StepResult(0, "", "").ok
    assert not probes.StepResult(1, "", "").ok
