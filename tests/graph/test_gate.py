"""RateGate with an injected clock: per-scope blocks, hot scopes, probes, closed accounts."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from fake_time import FakeTime

from harvester.config import LimitSettings
from harvester.graph.errors import TokenInvalid
from harvester.graph.gate import APP_SCOPE, RateGate
from harvester.graph.usage import Usage


def make_gate(**overrides: float) -> tuple[RateGate, FakeTime]:
    time = FakeTime()
    settings = LimitSettings(probe_seconds=5.0, probe_max_seconds=30.0, **overrides)  # type: ignore[arg-type]
    return RateGate(settings, clock=time.clock, sleep=time.sleep), time


def usage(account: str, pct: float, regain: float = 0.0) -> Usage:
    return Usage(app_pct=None, account_pct={account: pct}, regain_seconds={account: regain})


pytestmark = pytest.mark.anyio


async def test_a_blocked_account_waits_and_the_others_do_not() -> None:
    gate, time = make_gate()
    gate.block("A", 10.0)
    async with gate.slot("B"):
        assert time.now == 0.0
    async with gate.slot("A"):
        assert time.now == 10.0
    assert time.sleeps == [10.0]


async def test_regain_time_from_the_usage_header_blocks_that_long() -> None:
    gate, time = make_gate()
    gate.observe(usage("A", 100, regain=120.0))
    assert gate.blocked_until("A") == 120.0
    async with gate.slot("A"):
        assert time.now == 120.0


async def test_an_app_block_holds_every_account() -> None:
    gate, time = make_gate()
    gate.block(APP_SCOPE, 3.0)
    async with gate.slot("A"):
        assert time.now == 3.0
    async with gate.slot("B"):
        assert time.now == 3.0


async def test_a_block_without_a_time_waits_a_doubling_probe() -> None:
    gate, time = make_gate()
    for _ in range(4):
        gate.block("A", None)
        async with gate.slot("A"):
            pass
    assert time.sleeps == [5.0, 10.0, 20.0, 30.0]


async def test_at_the_stop_mark_each_call_probes_until_usage_falls() -> None:
    gate, time = make_gate()
    for pct in (96, 97, 99, 50, 50):
        async with gate.slot("A"):
            gate.observe(usage("A", pct))
    # Calls 2-4 waited 5, 10, 20 s; usage fell to 50 % on call 4, so call 5 went at once.
    assert time.sleeps == [5.0, 10.0, 20.0]


async def test_a_hot_account_has_one_call_in_flight() -> None:
    gate, _ = make_gate()
    gate.observe(usage("A", 80))
    events: list[str] = []

    async def call(name: str) -> None:
        async with gate.slot("A"):
            events.append(f"{name} in")
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
            events.append(f"{name} out")

    async with anyio.create_task_group() as tg:
        for name in ("x", "y", "z"):
            tg.start_soon(call, name)
    assert events == ["x in", "x out", "y in", "y out", "z in", "z out"]


async def test_a_cool_account_calls_concurrently() -> None:
    gate, _ = make_gate()
    gate.observe(usage("A", 10))
    inside = 0
    most = 0

    async def call() -> None:
        nonlocal inside, most
        async with gate.slot("A"):
            inside += 1
            most = max(most, inside)
            await anyio.lowlevel.checkpoint()
            inside -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(call)
    assert most == 5


async def test_a_closed_account_raises_for_queued_calls_and_sends_nothing() -> None:
    gate, _ = make_gate()
    expired = TokenInvalid("Error validating access token", status=400, code=190, subcode=463)
    gate.block("A", 5.0)
    sent = 0

    async def queued() -> None:
        nonlocal sent
        with pytest.raises(TokenInvalid):
            async with gate.slot("A"):
                sent += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(queued)
        await anyio.lowlevel.checkpoint()
        gate.close("A", expired)
    assert sent == 0
    assert gate.closed("A") is expired
    assert gate.statistics().closed_accounts == 1


async def test_a_full_account_waits_for_its_oldest_call_to_leave_the_window() -> None:
    gate, time = make_gate(account_window_seconds=100.0)
    # One call a second, Meta counting a budget of 60 in a 100 s window: floor(100 n / 60) %.
    for n in range(1, 60):
        async with gate.slot("A"):
            gate.observe(usage("A", 100 * n // 60))
        time.now += 1.0
    assert time.sleeps == []
    # At 57 calls (95 %) the budget is estimated at 100 * 57 / 96 = 59, safely at or below the
    # truth, so the 60th call waits until the first one (answered at t=0) surely left Meta's
    # window, at t=100.
    async with gate.slot("A"):
        assert time.now == 100.0
    assert time.sleeps == [41.0]
