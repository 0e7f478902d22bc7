"""Budgets: blocking, Meta-format usage headers, and blocks extended by calls while blocked."""

from __future__ import annotations

import orjson
import pytest

from harvester.simulator import LimitSettings
from harvester.simulator.ratelimit import RateLimiter
from harvester.simulator.replies import GraphError

from .helpers import serve

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rejected(
    limiter: RateLimiter, account: str | None = "A", token: str | None = "t"
) -> int | None:
    try:
        limiter.charge(account, token)
    except GraphError as err:
        return err.code
    return None


def test_account_budget_blocks_then_recovers() -> None:
    clock = FakeClock()
    limits = LimitSettings(account_budget=3, window_seconds=10.0, minute_seconds=1.0)
    limiter = RateLimiter(limits, clock)
    assert [rejected(limiter) for _ in range(4)] == [None, None, None, 80002]
    buc = orjson.loads(limiter.business_usage("A"))
    assert buc["A"][0]["estimated_time_to_regain_access"] == 10
    assert buc["A"][0]["call_count"] >= 100
    clock.now += 10.0
    assert rejected(limiter) is None
    assert rejected(limiter, account="B") is None


def test_calls_while_blocked_extend_the_block() -> None:
    clock = FakeClock()
    limits = LimitSettings(account_budget=1, window_seconds=5.0, minute_seconds=1.0)
    limiter = RateLimiter(limits, clock)
    assert rejected(limiter) is None
    assert rejected(limiter) == 80002
    end = limiter.account_blocked_until("A")
    assert rejected(limiter) == 80002
    assert limiter.account_blocked_until("A") == end + 1.0
    clock.now = end + 0.5
    assert rejected(limiter) == 80002  # the extension still holds
    clock.now = limiter.account_blocked_until("A")
    assert rejected(limiter) is None
    assert limiter.blocked_rejections == 2  # the call that started the block is not counted


def test_app_and_token_budgets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(LimitSettings(app_budget=2, window_seconds=5.0), clock)
    assert [rejected(limiter, account=None) for _ in range(3)] == [None, None, 4]
    assert orjson.loads(limiter.app_usage())["call_count"] >= 100
    limiter = RateLimiter(LimitSettings(token_budget=1, window_seconds=5.0), clock)
    assert [rejected(limiter), rejected(limiter), rejected(limiter, token="u")] == [None, 17, None]


def test_usage_headers_are_percentages() -> None:
    clock = FakeClock()
    limiter = RateLimiter(LimitSettings(account_budget=4, app_budget=10), clock)
    limiter.charge("A", None)
    assert orjson.loads(limiter.app_usage()) == {
        "call_count": 10,
        "total_cputime": 3,
        "total_time": 5,
    }
    assert orjson.loads(limiter.business_usage("A")) == {
        "A": [
            {
                "type": "instagram",
                "call_count": 25,
                "total_cputime": 8,
                "total_time": 12,
                "estimated_time_to_regain_access": 0,
            }
        ]
    }


async def test_over_http_block_headers_and_stats() -> None:
    limits = LimitSettings(account_budget=3, window_seconds=600.0, minute_seconds=0.5)
    async with serve(limits=limits) as c:
        acc = c.sim.world.accounts[0]
        statuses = []
        for _ in range(5):
            status, headers, body = await c.get(f"/v25.0/{acc.id}", access_token=acc.token)
            statuses.append(status)
            assert "X-App-Usage" in headers
            buc = orjson.loads(headers["X-Business-Use-Case-Usage"])
            assert buc[acc.id][0]["type"] == "instagram"
        assert statuses == [200, 200, 200, 400, 400]
        assert body["error"] == {
            "message": "There have been too many calls to this Instagram account. Wait a bit and "
            "try again.",
            "type": "OAuthException",
            "code": 80002,
            "is_transient": True,
            "fbtrace_id": body["error"]["fbtrace_id"],
        }
        assert buc[acc.id][0]["estimated_time_to_regain_access"] > 0
        other = c.sim.world.accounts[1]
        status, _, _ = await c.get(f"/v25.0/{other.id}", access_token=other.token)
        assert status == 200
        assert c.sim.stats()["rejected_while_blocked"] == 1  # the 5th call, not the 4th


async def test_batch_ops_count_against_the_budget() -> None:
    limits = LimitSettings(account_budget=2, window_seconds=600.0)
    async with serve(limits=limits) as c:
        acc = c.sim.world.accounts[0]
        batch = orjson.dumps(
            [{"method": "GET", "relative_url": f"{acc.id}?fields=id"}] * 3
        ).decode()
        _, _, body = await c.post("/v25.0/", {"access_token": acc.token, "batch": batch})
        assert [e["code"] for e in body] == [200, 200, 400]
