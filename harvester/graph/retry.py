"""Retry policy: whether and when to repeat a failed Graph call.

Only `Retriable` errors are repeated, at most `max_attempts` calls per request and `run_budget`
retries per run, so a dead API ends the run with a report instead of an endless loop. Delays use
full jitter (uniform between zero and the capped exponential), which spreads thousands of
concurrent retries instead of synchronising them; a delay the server names (Retry-After, regain
time) wins.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar

import anyio

from harvester.config import RetrySettings as RetryPolicy
from harvester.graph.errors import GraphError, Retriable, Throttled

__all__ = [
    "RetryBudget",
    "RetryBudgetStatistics",
    "RetryPolicy",
    "backoff_delay",
    "next_delay",
    "retrying",
]

T = TypeVar("T")

# 2**62 seconds is already far past any delay cap; the bound keeps the float arithmetic finite.
_MAX_EXPONENT = 62


class RetryBudgetStatistics(NamedTuple):
    used: int
    remaining: int
    exhausted: bool


class RetryBudget:
    """Retries left for the whole run, shared by every task (anyio tasks run on one thread)."""

    def __init__(self, total: int | RetryPolicy) -> None:
        """`total` retries, or the `run_budget` of a policy."""
        if isinstance(total, RetryPolicy):
            total = total.run_budget
        if total < 0:
            raise ValueError(f"retry budget must not be negative, got {total}")
        self._total = total
        self._used = 0

    def take(self) -> bool:
        """Spend one retry; False when none are left (the caller then gives up)."""
        if self._used >= self._total:
            return False
        self._used += 1
        return True

    def statistics(self) -> RetryBudgetStatistics:
        remaining = self._total - self._used
        return RetryBudgetStatistics(used=self._used, remaining=remaining, exhausted=remaining == 0)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(max_delay, base_delay * 2**attempt)); attempt counts from 0.

    The policy is the `[retry]` config table itself: its knobs are declared once, there."""
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    ceiling = min(policy.max_delay_seconds, policy.base_delay_seconds * 2.0**exponent)
    return rng.uniform(0.0, ceiling)


def next_delay(
    policy: RetryPolicy, attempt: int, error: GraphError, rng: random.Random
) -> float | None:
    """Seconds to wait before the next try after failed attempt `attempt` (0 = the first call).

    None means give up: the error is not Retriable, or `max_attempts` calls have been made. A
    server delay is used as given, even beyond `max_delay_seconds`: an early call extends Meta's
    block.
    """
    if not isinstance(error, Retriable) or attempt + 1 >= policy.max_attempts:
        return None
    if isinstance(error, Throttled) and error.retry_after is not None:
        return error.retry_after
    return backoff_delay(policy, attempt, rng)


async def retrying(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    budget: RetryBudget,
    rng: random.Random,
    *,
    sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
    on_retry: Callable[[GraphError, int, float], None] | None = None,
) -> T:
    """Await `call()` until it succeeds or the policy or the run budget says stop.

    The last GraphError is raised when giving up; other exceptions (including cancellation) pass
    through untouched. `on_retry(error, attempt, delay)` runs before each wait, e.g. to count
    retries or to tell the rate gate about a throttle.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except GraphError as error:
            delay = next_delay(policy, attempt, error, rng)
            if delay is None or not budget.take():
                raise
            if on_retry is not None:
                on_retry(error, attempt, delay)
        # Sleep outside the except block so the error's traceback is not chained to later failures.
        await sleep(delay)
        attempt += 1
