"""Named waits (lab/common/waits.py): a bounded wait gives up on time and says what it saw,
retries only the listed errors and re-raises, sleeps its interval or backs off, and logs each
retry."""

from __future__ import annotations

import logging

import pytest

from lab.common import waits


def test_a_named_wait_gives_up_on_time_and_says_what_it_saw() -> None:
    clock = {"t": 0.0}
    policy = waits.Policy("the thing ready", timeout_s=5, interval_s=1)
    with pytest.raises(waits.WaitTimeout, match="the thing ready: not done after 5s; last saw 3"):
        waits.wait_until(
            policy, lambda: 3, lambda v: v > 3, sleep=lambda s: clock.update(t=clock["t"] + s)
        )


def test_retry_call_retries_only_the_listed_errors_and_reraises() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("mirror hiccup")
        return "ok"

    policy = waits.Policy("mirror", timeout_s=60, interval_s=0, max_attempts=5)
    assert waits.retry_call(policy, flaky, on=(ConnectionError,), sleep=lambda s: None) == "ok"
    with pytest.raises(KeyError):
        waits.retry_call(policy, lambda: {}["x"], on=(ConnectionError,), sleep=lambda s: None)
    policy2 = waits.Policy("mirror", timeout_s=60, interval_s=0, max_attempts=2)
    calls.clear()
    with pytest.raises(ConnectionError):
        waits.retry_call(policy2, flaky, on=(ConnectionError,), sleep=lambda s: None)
    assert len(calls) == 2


def test_a_fixed_wait_sleeps_its_interval_and_logs_each_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []
    values = iter([1, 2, 3])
    policy = waits.Policy("port open", timeout_s=60, interval_s=1.5)
    with caplog.at_level(logging.INFO, logger="lab.common.waits"):
        assert waits.wait_until(policy, lambda: next(values), lambda v: v == 3, slept.append) == 3
    assert slept == [1.5, 1.5]
    assert [r.getMessage() for r in caplog.records] == [
        "port open: attempt 1 not yet (got 1); retrying",
        "port open: attempt 2 not yet (got 2); retrying",
    ]


def test_a_backoff_wait_doubles_up_to_eight_intervals() -> None:
    slept: list[float] = []
    policy = waits.Policy("mirror", timeout_s=10_000, interval_s=2, max_attempts=7, backoff=True)
    with pytest.raises(ConnectionError):
        waits.retry_call(policy, _refuse, on=(ConnectionError,), sleep=slept.append)
    assert slept == [2, 4, 8, 16, 16, 16]


def _refuse() -> None:
    raise ConnectionError("refused\nsecond line")


def test_a_retried_exception_is_logged_by_type_and_first_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = waits.Policy("mirror", timeout_s=60, interval_s=0, max_attempts=2)
    with caplog.at_level(logging.INFO, logger="lab.common.waits"), pytest.raises(ConnectionError):
        waits.retry_call(policy, _refuse, on=(ConnectionError,), sleep=lambda s: None)
    assert [r.getMessage() for r in caplog.records] == [
        "mirror: attempt 1 not yet (ConnectionError: refused); retrying"
    ]


def test_an_exception_without_text_is_logged_by_its_type_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def silent() -> None:
        raise TimeoutError

    policy = waits.Policy("boot", timeout_s=60, interval_s=0, max_attempts=2)
    with caplog.at_level(logging.INFO, logger="lab.common.waits"), pytest.raises(TimeoutError):
        waits.retry_call(policy, silent, on=(TimeoutError,), sleep=lambda s: None)
    assert caplog.records[0].getMessage() == "boot: attempt 1 not yet (TimeoutError: ); retrying"


def test_a_long_result_is_logged_cut_to_200_and_reported_cut_to_300_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = waits.Policy("big", timeout_s=60, interval_s=0, max_attempts=2)
    with (
        caplog.at_level(logging.INFO, logger="lab.common.waits"),
        pytest.raises(waits.WaitTimeout) as e,
    ):
        waits.wait_until(policy, lambda: "x" * 500, lambda v: False, sleep=lambda s: None)
    logged = caplog.records[0].getMessage()
    assert logged == "big: attempt 1 not yet (" + ("got '" + "x" * 500)[:200] + "); retrying"
    assert str(e.value) == "big: not done after 60s; last saw '" + "x" * 299
