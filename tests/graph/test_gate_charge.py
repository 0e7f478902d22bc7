"""Calls charged to the app alone (business discovery): they use the app's budget and never the
account's, and a closed account still refuses them."""

from __future__ import annotations

import pytest
from fake_time import FakeTime

from harvester.config import LimitSettings
from harvester.graph.errors import TokenInvalid
from harvester.graph.gate import APP_SCOPE, RateGate
from harvester.graph.usage import Usage

pytestmark = pytest.mark.anyio


def make_gate() -> tuple[RateGate, FakeTime]:
    time = FakeTime()
    settings = LimitSettings(probe_seconds=5.0, probe_max_seconds=30.0)
    return RateGate(settings, clock=time.clock, sleep=time.sleep), time


async def test_app_charged_calls_count_on_the_app_scope_only() -> None:
    gate, time = make_gate()
    for _ in range(5):
        async with gate.slot("A", charge="app"):
            pass
    assert (gate.calls_in_window(APP_SCOPE), gate.calls_in_window("A")) == (5, 0)
    async with gate.slot("A"):
        pass
    async with gate.slot("A", cost=3):
        pass
    assert (gate.calls_in_window(APP_SCOPE), gate.calls_in_window("A")) == (9, 4)
    assert time.sleeps == []


async def test_a_full_account_does_not_hold_app_charged_calls() -> None:
    gate, time = make_gate()
    gate.observe(Usage(app_pct=None, account_pct={"A": 100}, regain_seconds={"A": 0.0}))
    async with gate.slot("A", charge="app"):
        assert time.now == 0.0
    async with gate.slot("A"):  # an account-charged call waits for the full account's probe
        assert time.now == 5.0


async def test_an_app_block_holds_app_charged_calls() -> None:
    gate, time = make_gate()
    gate.block(APP_SCOPE, 7.0)
    async with gate.slot("A", charge="app"):
        assert time.now == 7.0


async def test_an_account_block_does_not_hold_app_charged_calls() -> None:
    gate, time = make_gate()
    gate.block("A", 60.0)
    async with gate.slot("A", charge="app"):
        assert time.now == 0.0


async def test_a_closed_account_refuses_app_charged_calls() -> None:
    gate, _ = make_gate()
    gate.close("A", TokenInvalid("expired", code=190))
    with pytest.raises(TokenInvalid):
        async with gate.slot("A", charge="app"):
            pass
