"""Named, bounded waits (tenacity): every wait has a name, a deadline and reraises.

Retries are for things outside the lab (mirrors, downloads, a machine still booting); never wrap
a network-invariant check in one of these.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

log = logging.getLogger("lab.common.waits")
T = TypeVar("T")


class WaitTimeout(Exception):
    """A named wait ran out of time; says what was awaited and for how long."""


@dataclass(frozen=True)
class Policy:
    name: str
    timeout_s: float
    interval_s: float = 1.0
    max_attempts: int = 10_000
    backoff: bool = False

    def retrying(
        self, retry: Any, sleep: Callable[[float], None] = time.sleep
    ) -> tenacity.Retrying:
        wait = (
            tenacity.wait_exponential(multiplier=self.interval_s, max=self.interval_s * 8)
            if self.backoff
            else tenacity.wait_fixed(self.interval_s)
        )
        return tenacity.Retrying(
            stop=tenacity.stop_after_delay(self.timeout_s)
            | tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=retry,
            reraise=True,
            sleep=sleep,
            before_sleep=lambda state: log.info(
                "%s: attempt %d not yet (%s); retrying",
                self.name,
                state.attempt_number,
                _outcome(state),
            ),
        )


def _outcome(state: tenacity.RetryCallState) -> str:
    if state.outcome is None:
        return "?"
    if state.outcome.failed:
        exc = state.outcome.exception()
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return f"got {state.outcome.result()!r}"[:200]


def wait_until(
    policy: Policy,
    probe: Callable[[], T],
    ok: Callable[[T], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `probe` until `ok(result)`; raise WaitTimeout naming the policy and last result."""
    last: list[T] = []

    def attempt() -> T:
        value = probe()
        last[:] = [value]
        return value

    try:
        return policy.retrying(tenacity.retry_if_result(lambda v: not ok(v)), sleep)(attempt)
    except tenacity.RetryError:
        pass
    seen = repr(last[0])[:300] if last else "nothing"
    raise WaitTimeout(f"{policy.name}: not done after {policy.timeout_s:.0f}s; last saw {seen}")


def retry_call(
    policy: Policy,
    fn: Callable[[], T],
    on: tuple[type[BaseException], ...],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Retry `fn` on the given exceptions (downloads, mirrors) within the policy's bounds."""
    return policy.retrying(tenacity.retry_if_exception_type(on), sleep)(fn)


# The lab's named policies
DOWNLOAD = Policy(
    "download from a mirror", timeout_s=300, interval_s=2, max_attempts=5, backoff=True
)
PACKAGE_MIRROR = Policy("package mirror", timeout_s=900, interval_s=5, max_attempts=4, backoff=True)
# provisioning's last step: kubeadm's nodes Ready and kube-system Running (kube-proxy, flannel,
# coredns start after the workers join; on a KVM host within a few minutes)
CLUSTER_SETTLED = Policy(
    "cluster settled (every node Ready, every kube-system pod Running)", timeout_s=600, interval_s=5
)
