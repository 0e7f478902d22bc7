"""Retry policy: jittered backoff, server delays, attempt limits and the per-run budget."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.graph.errors import (
    GraphError,
    InvalidRequest,
    MetricUnsupported,
    Throttled,
    TokenInvalid,
    TransientServer,
    TransportError,
)
from harvester.graph.retry import (
    RetryBudget,
    RetryBudgetStatistics,
    RetryPolicy,
    backoff_delay,
    next_delay,
    retrying,
)

POLICY = RetryPolicy(max_attempts=4, base_delay_seconds=1.0, max_delay_seconds=5.0, run_budget=100)


class Recorder:
    """Stands in for anyio.sleep: remembers the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Flaky:
    """A call that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: GraphError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@settings(max_examples=200)
@given(attempt=st.integers(-3, 10_000), seed=st.integers(0, 2**32))
def test_backoff_is_full_jitter_under_the_cap(attempt: int, seed: int) -> None:
    ceiling = min(
        POLICY.max_delay_seconds, POLICY.base_delay_seconds * 2 ** min(max(attempt, 0), 62)
    )
    delay = backoff_delay(POLICY, attempt, random.Random(seed))
    assert 0.0 <= delay <= ceiling


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    first = [backoff_delay(POLICY, a, random.Random(7)) for a in range(6)]
    again = [backoff_delay(POLICY, a, random.Random(7)) for a in range(6)]
    expected = [random.Random(7).uniform(0, min(5.0, 2.0**a)) for a in range(6)]
    assert first == again == expected


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("bad"),
        MetricUnsupported("no", metric="plays"),
        TokenInvalid("expired"),
        GraphError("base"),
    ],
)
def test_next_delay_gives_up_on_non_retriable(error: GraphError) -> None:
    assert next_delay(POLICY, 0, error, random.Random(1)) is None


def test_next_delay_gives_up_after_max_attempts() -> None:
    error = TransientServer("down")
    assert next_delay(POLICY, 2, error, random.Random(1)) is not None
    assert next_delay(POLICY, 3, error, random.Random(1)) is None


def test_server_delay_beats_backoff_even_above_max_delay() -> None:
    error = Throttled("limit", scope="account", retry_after=600.0)
    assert next_delay(POLICY, 0, error, random.Random(1)) == 600.0
    unknown = Throttled("limit", scope="app")
    assert next_delay(POLICY, 1, unknown, random.Random(1)) == random.Random(1).uniform(0, 2.0)


@pytest.mark.anyio
async def test_retrying_succeeds_after_transient_failures() -> None:
    sleep = Recorder()
    seen: list[tuple[str, int, float]] = []
    call = Flaky(TransientServer("502"), TransportError("reset"))
    budget = RetryBudget(10)
    result = await retrying(
        call,
        POLICY,
        budget,
        random.Random(3),
        sleep=sleep,
        on_retry=lambda e, attempt, delay: seen.append((type(e).__name__, attempt, delay)),
    )
    rng = random.Random(3)
    expected = [rng.uniform(0, 1.0), rng.uniform(0, 2.0)]
    assert result == "ok"
    assert call.calls == 3
    assert sleep.delays == expected
    assert seen == [("TransientServer", 0, expected[0]), ("TransportError", 1, expected[1])]
    assert budget.statistics() == RetryBudgetStatistics(used=2, remaining=8, exhausted=False)


@pytest.mark.anyio
async def test_retrying_uses_the_server_delay() -> None:
    sleep = Recorder()
    call = Flaky(Throttled("limit", scope="account", retry_after=42.0))
    assert await retrying(call, POLICY, RetryBudget(10), random.Random(0), sleep=sleep) == "ok"
    assert sleep.delays == [42.0]


@pytest.mark.anyio
async def test_retrying_raises_the_last_error_when_attempts_run_out() -> None:
    sleep = Recorder()
    errors = [TransientServer(f"failure {i}") for i in range(5)]
    call = Flaky(*errors)
    with pytest.raises(TransientServer) as caught:
        await retrying(call, POLICY, RetryBudget(10), random.Random(0), sleep=sleep)
    assert caught.value is errors[3]
    assert call.calls == POLICY.max_attempts
    assert len(sleep.delays) == POLICY.max_attempts - 1


@pytest.mark.anyio
async def test_retrying_raises_the_last_error_when_the_budget_is_spent() -> None:
    sleep = Recorder()
    budget = RetryBudget(1)
    first, second = TransientServer("a"), TransientServer("b")
    with pytest.raises(TransientServer) as caught:
        await retrying(Flaky(first, second), POLICY, budget, random.Random(0), sleep=sleep)
    assert caught.value is second
    assert len(sleep.delays) == 1
    assert budget.statistics() == RetryBudgetStatistics(used=1, remaining=0, exhausted=True)
    third = TransientServer("c")
    with pytest.raises(TransientServer) as caught:
        await retrying(Flaky(third), POLICY, budget, random.Random(0), sleep=sleep)
    assert caught.value is third
    assert len(sleep.delays) == 1


@pytest.mark.anyio
async def test_retrying_does_not_retry_skippable_or_fatal_errors() -> None:
    sleep = Recorder()
    budget = RetryBudget(10)
    for error in (MetricUnsupported("no", metric="plays"), TokenInvalid("expired")):
        call = Flaky(error)
        with pytest.raises(type(error)):
            await retrying(call, POLICY, budget, random.Random(0), sleep=sleep)
        assert call.calls == 1
    assert sleep.delays == []
    assert budget.statistics().used == 0


@pytest.mark.anyio
async def test_retrying_lets_other_exceptions_through() -> None:
    async def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await retrying(broken, POLICY, RetryBudget(10), random.Random(0), sleep=Recorder())


def test_budget_from_a_policy() -> None:
    budget = RetryBudget(RetryPolicy(run_budget=2))
    assert [budget.take(), budget.take(), budget.take()] == [True, True, False]
    assert budget.statistics() == RetryBudgetStatistics(used=2, remaining=0, exhausted=True)
    assert RetryBudget(0).statistics().exhausted


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay_seconds": -1.0},
        {"max_delay_seconds": -0.1},
        {"run_budget": -1},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
