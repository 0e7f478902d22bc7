"""The app budget shared in leases, with an injected clock and no Ray: grants, waits, returns,
Meta's word on the app, and the RateGate taking its app permits from a lease."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from fake_time import FakeTime

from harvester.config import LimitSettings
from harvester.graph.gate import APP_SCOPE, RateGate
from harvester.graph.leases import AppBudget, LeasedPermits, LeaseGrant
from harvester.graph.usage import Usage

pytestmark = pytest.mark.anyio

# 100 calls per 100 s window: a lease lives 5 s, a permit counts until 5 + 101 s after its grant.
CAPACITY, WINDOW, TTL, COUNTED = 100, 100.0, 5.0, 106.0


def budget(time: FakeTime, capacity: int | None = CAPACITY, lease_size: int = 30) -> AppBudget:
    return AppBudget(
        capacity, WINDOW, lease_size=lease_size, slow_down_at_pct=75.0, clock=time.clock
    )


def test_leases_fill_the_window_then_wait_for_the_oldest_to_leave_it() -> None:
    time = FakeTime()
    gate = budget(time)
    grants = [gate.lease(1) for _ in range(4)]
    assert [g.permits for g in grants] == [30, 30, 30, 10]  # the last one gets what is left
    assert [g.ttl for g in grants] == [TTL] * 4
    time.now = 50.0
    assert gate.lease(1) == LeaseGrant(0, 0, 0.0, COUNTED - 50.0)
    time.now = COUNTED
    assert gate.lease(1).permits == 30


def test_a_call_dearer_than_the_room_waits_for_enough_leases_to_leave() -> None:
    time = FakeTime()
    gate = budget(time)
    gate.lease(30)
    time.now = 10.0
    gate.lease(30)
    gate.lease(30)
    # 10 left: the lease granted at 0 frees 30, not enough; the two granted now must leave too.
    assert gate.lease(50).wait == COUNTED
    # A call costing more than the whole budget gets the whole budget, never more.
    time.now = 200.0
    assert gate.lease(500).permits == CAPACITY


def test_unspent_permits_come_back_with_the_next_request() -> None:
    time = FakeTime()
    gate = budget(time)
    first = gate.lease(1)
    for _ in range(2):
        gate.lease(1)
    assert gate.lease(20).permits == 0
    back = gate.lease(20, returned=(first.lease_id, 25))
    assert back.permits == 30  # 25 came back: room for a full lease again
    stats = gate.statistics()
    assert (stats.granted, stats.returned, stats.refusals) == (120, 25, 1)
    # A return for a lease that has left the window changes nothing.
    time.now = 1000.0
    gate.lease(0, returned=(first.lease_id, 5))
    assert gate.statistics().returned == 25


def test_meta_saying_the_app_is_hot_or_throttled_reaches_every_lease() -> None:
    time = FakeTime()
    gate = budget(time, capacity=None)  # no known budget: Meta's word alone limits leases
    assert gate.lease(1).permits == 30
    gate.observe(80.0)
    assert gate.lease(1).permits == 1  # hot: each call asks, so all shards pace call by call
    gate.observe(10.0)
    gate.block(60.0)
    time.now = 20.0
    assert gate.lease(1) == LeaseGrant(0, 0, 0.0, 40.0)
    time.now = 60.0
    assert gate.lease(1).permits == 30
    assert gate.statistics().blocks == 1


def leased(time: FakeTime, gate: AppBudget) -> tuple[LeasedPermits, list[int], list[float]]:
    asked: list[int] = []
    seen: list[float] = []

    async def lease(want: int, returned: tuple[int, int] | None) -> LeaseGrant:
        asked.append(want)
        await anyio.lowlevel.checkpoint()
        return gate.lease(want, returned=returned)

    permits = LeasedPermits(lease, seen.append, gate.block, clock=time.clock, sleep=time.sleep)
    return permits, asked, seen


async def test_a_shard_spends_its_lease_locally_and_asks_again_when_it_expires() -> None:
    time = FakeTime()
    gate = budget(time)
    permits, asked, _ = leased(time, gate)
    for _ in range(30):
        await permits.acquire(1)
    assert asked == [1]  # one request to the shared gate for 30 calls
    await permits.acquire(1)
    assert asked == [1, 1]
    time.now = TTL  # the second lease expired with 29 permits unspent: they go back
    await permits.acquire(1)
    assert gate.statistics().returned == 29
    await permits.release()
    assert gate.statistics().returned == 29 + 29


async def test_a_shard_waits_when_the_budget_is_spent() -> None:
    time = FakeTime()
    gate = budget(time)
    for _ in range(4):
        gate.lease(1)  # other shards took the whole window at t=0
    permits, _, _ = leased(time, gate)
    await permits.acquire(5)
    assert time.sleeps == [COUNTED]


async def test_concurrent_callers_share_one_lease() -> None:
    time = FakeTime()
    gate = budget(time)
    permits, asked, _ = leased(time, gate)
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(permits.acquire, 3)
    assert asked == [3]
    assert gate.statistics().granted == 30


async def test_the_rate_gate_takes_app_permits_and_passes_on_metas_word() -> None:
    time = FakeTime()
    gate = budget(time, capacity=None)
    permits, asked, seen = leased(time, gate)
    settings = LimitSettings(app_calls_per_hour=1)  # the static bucket yields to the lease
    rate_gate = RateGate(settings, clock=time.clock, sleep=time.sleep, app_permits=permits)
    async with rate_gate.slot("A", cost=7):
        pass
    async with rate_gate.slot("A"):
        pass
    assert asked == [7]
    assert time.now == 0.0
    for pct in (12.0, 12.0, 13.0):
        rate_gate.observe(Usage(app_pct=pct, account_pct={}, regain_seconds={}))
    assert seen == [12.0, 13.0]  # only news travels to the shared gate
    rate_gate.block(APP_SCOPE, 30.0)
    rate_gate.block("A", 99.0)  # an account's block stays with the shard that owns it
    assert gate.statistics().blocks == 1
    assert gate.lease(1).wait == 30.0
